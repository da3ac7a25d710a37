"""The store contract: every stage reads and writes its data through this module.

A store is a Zarr v3 group, on disk as a directory (``*.zarr``) or a zip file
(``*.zarr.zip``). Its root attributes hold one namespaced, versioned record::

    attrs["vscr"] = {
        "schema": "vscr-store/1",
        "kind": "edges" | "cam" | "motion" | "pred" | ...,
        "created_by": {"version": "0.1.0", "argv": [...]},
        "params": {...},          # the stage's parameters
        "inputs": {...},          # sources and stores it was made from
        "label_space": "a2d",     # ids are A2D actor-action ids (see vscr_cli.labels)
        "videos": [...],          # ids of the video groups that are complete, in write order
        "skipped": [{"video": ..., "reason": ...}],
    }

Each video is a subgroup keyed by its video id, holding a ``frame_index`` (T,) int64
array of 0-based frame numbers and the kind's arrays, all with a leading T axis and
chunked one frame per chunk.

Writes are atomic: a :class:`StoreWriter` builds the store in a hidden sibling
directory (``.NAME.partial``) and moves it into place only when every video is done,
so a half-written store is never visible under the final name. The partial
directory survives a crash, which is what ``--resume`` continues from: video groups
listed in ``videos`` are kept, any other group (interrupted mid-write) is dropped.
``--resume`` compares the parameters as the record holds them (after a JSON round trip) and
continues only from the same inputs: every finished video must be among the run's, made from
the footage whose sha256 its group records. A zip output is packed into a new file beside the
target (``tempfile.mkstemp``) and renamed over it; an output of ``None`` streams the zip bytes to
stdout. An input of ``"-"`` reads zip bytes from stdin (none at all is refused as such).

No file vscr keeps beside an output (``.NAME.partial``, ``.NAME.lock``, temporaries) is opened
through a symlink: a planted one is refused with one line. An output file gets the mode any new
file gets (``0o666`` less the umask), temporaries renamed into place too. An OS error of writing
(a full disk, a read-only folder) is one line naming the output (:func:`writing`).

Reading checks what it reads (:class:`Store`): every array's leading length must be its
``frame_index``'s, every chunk must be there, and metadata or a chunk that cannot be decoded is
one line naming the store, video and array; a writer completes a video only when all its frames
are written, so no writer makes a store its reader rejects.

One run writes an output at a time: a :class:`StoreWriter` holds an exclusive lock on
``.NAME.lock`` beside the target (:class:`OutputLock`) for its whole life. Video groups may
also be written by other processes (Dask workers) straight into the partial directory with
:func:`write_video_group`; the writer then records them with :meth:`StoreWriter.complete`.

Output ownership (:func:`check_output`, one rule for every command): an output's parent folder
must exist; an existing output is replaced (``--overwrite``) or continued (``--resume``) only
when its record says vscr made it: a store's ``attrs["vscr"]``, the ``vscr-output.json``
record of a folder output (a model folder, a synth root), or the record inside a single file
(a JSON report's ``"vscr_output"``, a PNG's tEXt chunk, an MP4's comment). Anything else is left
untouched. :func:`folder_output` and :func:`file_output` write any other output under this rule.
Video ids name groups, so they are checked (:func:`check_video_id`) wherever they enter.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import zarr
import zarr.storage

from vscr_cli import __version__
from vscr_cli.errors import StoreError

NAMESPACE = "vscr"
SCHEMA = "vscr-store/2"
KNOWN_SCHEMAS = ("vscr-store/1", SCHEMA)
FRAME_INDEX = "frame_index"
SOURCE_DIGEST = "source_sha256"  # a video group's attribute: sha256 of the footage it was made from
OUTPUT_RECORD = "vscr-output.json"
OUTPUT_SCHEMA = "vscr-output/1"
#: Where a single file vscr wrote carries its output record: a JSON file's top-level key, a PNG's
#: tEXt key, an MP4's metadata key.
JSON_RECORD_KEY = "vscr_output"
PNG_RECORD_KEY = "vscr-output"
MP4_RECORD_KEY = "comment"
STORE = "store"
log = logging.getLogger("vscr")
# vscr-store/2 stores every chunk, all-zero ones too, so that a missing chunk means damage rather
# than "zeros"; zarr keeps this setting per process, not in the array metadata
zarr.config.set({"array.write_empty_chunks": True})


def check_video_id(video_id: str, where: str) -> str:
    """``video_id`` if it can name a group (and so a folder) safely, else :class:`StoreError`.

    Refused: empty, ``/``, ``\\``, a NUL or control character, a leading ``.`` (``..``, hidden
    names), and ``zarr.json``: such an id would escape the store or clash with its metadata.
    """
    if (
        not video_id
        or any(c in video_id for c in "/\\")
        or any(ord(c) < 32 for c in video_id)
        or video_id.startswith(".")
        or video_id == "zarr.json"
    ):
        raise StoreError(f"{where}: unsafe video id {video_id!r} (ids may not be empty, contain '/' or '\\', or start with '.')")
    return video_id


@dataclass
class StoreRecord:
    """The ``attrs["vscr"]`` record of a store."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    created_by: dict[str, Any] = field(default_factory=dict)
    label_space: str = "a2d"
    videos: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    schema: str = SCHEMA

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> StoreRecord:
        schema = data.get("schema")
        if schema not in KNOWN_SCHEMAS:
            raise StoreError(
                f"{where}: unknown store schema {schema!r} (this vscr {__version__} reads {', '.join(KNOWN_SCHEMAS)})"
            )
        try:
            record = cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})
        except TypeError as exc:  # a required field is missing
            raise StoreError(f"{where}: malformed vscr record ({exc})") from exc
        for video_id in record.videos:
            check_video_id(video_id, where)
        return record

    @property
    def frame_height(self) -> int | None:
        """The height the stage resized its frames to (``params.selection.height``; None: as decoded)."""
        return self.params.get("selection", {}).get("height")

    @property
    def complete_chunks(self) -> bool:
        """Whether every chunk of every array is stored (vscr-store/2), so a missing one means damage."""
        return self.schema != "vscr-store/1"


@dataclass(frozen=True)
class ArraySpec:
    """One array every video group of a kind holds: ``shape`` per video (T first), ``dtype``."""

    name: str
    shape: str  # e.g. "(T, H, W)"
    dtype: str  # a NumPy dtype name
    meaning: str
    optional: bool = False  # written only when asked for

    @property
    def ndim(self) -> int:
        return self.shape.count(",") + 1


@dataclass(frozen=True)
class StoreSchema:
    """A kind of store: its name in the record, the stage that writes it and its arrays."""

    kind: str
    writer: str  # the command (or stage) that writes it
    arrays: tuple[ArraySpec, ...]

    def __getitem__(self, name: str) -> ArraySpec:
        return next(spec for spec in self.arrays if spec.name == name)

    def check(self, location: str, video_id: str, name: str, array: Any) -> None:
        """A StoreError unless ``array`` (of video ``video_id``) has the dtype and rank of array ``name``."""
        spec = self[name]
        if np.dtype(array.dtype) != np.dtype(spec.dtype) or array.ndim != spec.ndim:
            raise StoreError(f"{location}: video {video_id!r}: {name!r} must be {spec.shape} {spec.dtype}, not {array.dtype} {array.shape}")


def schemas_markdown(schemas: Iterable[StoreSchema]) -> str:
    """The table of kinds and arrays docs/store.md holds (a test keeps the two alike)."""
    rows = ["| kind | written by | array | shape | dtype | meaning |", "| --- | --- | --- | --- | --- | --- |"]
    for schema in schemas:
        for spec in schema.arrays:
            optional = " (optional)" if spec.optional else ""
            rows.append(f"| `{schema.kind}` | {schema.writer} | `{spec.name}`{optional} | {spec.shape} | {spec.dtype} | {spec.meaning} |")
    return "\n".join(rows) + "\n"


def recorded(value: Any) -> Any:
    """``value`` as a record holds it once read back: through a JSON round trip (a tuple becomes a list)."""
    return json.loads(json.dumps(value))


def changed_keys(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """The sorted keys whose values differ between two parameter records (absent counts as None)."""
    return sorted(key for key in first.keys() | second.keys() if first.get(key) != second.get(key))


def is_zip(location: str | Path) -> bool:
    return str(location).endswith(".zip")


def staging_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def _finished_videos(partial: Path) -> int:
    """How many complete videos the partial store of an interrupted run holds (0 when none is there)."""
    record = _store_record_json(partial) if partial.is_dir() else None
    return len(record.get("videos") or []) if isinstance(record, dict) else 0


def pack_zip(directory: Path, destination: Path | BinaryIO) -> None:
    """Pack a directory store into a zip store (entries stored, chunks are already compressed)."""
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())


def replace_output(source: Path, target: Path) -> None:
    """Move ``source`` (a file or directory) to ``target``, replacing what is there (an output
    that :func:`check_output` found vscr made): the old one is moved aside, then removed."""
    if not (target.is_dir() or (source.is_dir() and target.exists())):
        os.replace(source, target)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    target.rename(trash / "old")
    source.rename(target)
    shutil.rmtree(trash, ignore_errors=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _store_record_json(path: Path) -> Any:
    """The ``attrs["vscr"]`` of the store at ``path`` read as plain JSON (None when it has none)."""
    if path.is_dir():
        metadata = _read_json(path / "zarr.json")
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                metadata = json.loads(archive.read("zarr.json"))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            metadata = None
    else:
        return None
    attributes = metadata.get("attributes") if isinstance(metadata, dict) else None
    return attributes.get(NAMESPACE) if isinstance(attributes, dict) else None


def output_record(kind: str) -> dict[str, str]:
    """The record that marks an output as vscr's ``kind`` (see :func:`output_kind`)."""
    return {"schema": OUTPUT_SCHEMA, "kind": kind, "version": __version__}


def output_record_text(kind: str) -> str:
    """:func:`output_record` as the JSON text a PNG's tEXt chunk or an MP4's comment holds."""
    return json.dumps(output_record(kind), sort_keys=True)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECORDED_FILE_BYTES = 256 * 2**20  # a JSON output larger than this is not read to look for its record


def _owner_kind(record: Any) -> str | None:
    """The kind an output record names (None unless it is one)."""
    return str(record.get("kind")) if isinstance(record, dict) and record.get("schema") == OUTPUT_SCHEMA else None


def _file_kind(path: Path) -> str | None:
    """The kind recorded inside a single file vscr wrote: a JSON file's top-level ``"vscr_output"``,
    a PNG's tEXt chunk ``"vscr-output"``, an MP4's ``"comment"`` metadata (None for any other file)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
            size = os.fstat(handle.fileno()).st_size
    except OSError:
        return None
    if head.startswith(PNG_SIGNATURE):
        import PIL.Image

        try:
            with PIL.Image.open(path) as image:
                text = image.info.get(PNG_RECORD_KEY)
        except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):  # a huge picture is no sheet of ours
            return None
        return _owner_kind(_json_or_none(text))
    if head[4:8] == b"ftyp":
        import av

        try:
            with av.open(str(path)) as container:
                text = container.metadata.get(MP4_RECORD_KEY)
        except (OSError, ValueError, av.FFmpegError):
            return None
        return _owner_kind(_json_or_none(text))
    if head.lstrip()[:1] == b"{" and size <= RECORDED_FILE_BYTES:
        document = _read_json(path)
        return _owner_kind(document.get(JSON_RECORD_KEY)) if isinstance(document, dict) else None
    return None


def _json_or_none(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, (str, bytes)) else None
    except ValueError:
        return None


def output_kind(path: Path) -> str | None:
    """What vscr output lives at ``path`` by its record: ``"store"``, the kind in a folder's
    ``vscr-output.json`` (``"model"``, ``"synth"``), the kind recorded inside a single file
    (``"scores"``, ``"sheet"``, ``"video"``: see :func:`_file_kind`), or None when vscr did not make it."""
    record = _store_record_json(path)
    if isinstance(record, dict) and record.get("schema") in KNOWN_SCHEMAS:
        return STORE
    if path.is_file():
        return _file_kind(path)
    if path.is_dir():
        if kind := _owner_kind(_read_json(path / OUTPUT_RECORD)):
            return kind
        model = _read_json(path / "config.json")  # a model folder written before vscr-output.json existed
        if isinstance(model, dict) and str(model.get("format", "")).startswith("vscr-model/"):
            return "model"
    return None


def mark_output(folder: Path, kind: str) -> None:
    """Record in ``folder`` that vscr made it as a ``kind`` output (see :func:`output_kind`)."""
    (folder / OUTPUT_RECORD).write_text(json.dumps(output_record(kind)) + "\n")


def _described(kind: str) -> str:
    return {
        STORE: "a vscr store",
        "model": "a vscr model folder",
        "synth": "a vscr synth dataset",
        "scores": "a vscr score report",
        "sheet": "a vscr contact sheet",
        "video": "a vscr video",
    }.get(kind, f"a vscr {kind} output")


def check_parent(target: Path) -> None:
    """Refuse (one line) an output whose parent folder is missing or not a folder: no command makes parents."""
    parent = target.parent
    if not parent.is_dir():
        raise StoreError(f"{target}: parent folder {parent} does not exist" if not parent.exists() else f"{target}: {parent} is not a folder")


def check_output(target: Path, kind: str = STORE, overwrite: bool = False, resume: bool = False, resumable: bool = True) -> Path:
    """The output rule, checked before any work (and again under the writer's lock).

    The parent folder must exist. An existing ``target`` needs ``--overwrite`` or ``--resume``,
    and either applies only to an empty folder or an output of ``kind`` that vscr made
    (:func:`output_kind`): a folder or file of anything else is refused and left untouched. Returns ``target`` with
    ``.``/``..`` resolved. ``resumable``: whether the command has ``--resume`` (for the hint).
    Raises :class:`StoreError` with one line.
    """
    if target.name in ("", ".", ".."):
        target = target.resolve()
    check_parent(target)
    if not (target.exists() or target.is_symlink()):
        return target
    if not (overwrite or resume):
        raise StoreError(f"{target}: output exists (pass --overwrite to replace it{' or --resume to extend it' if resumable else ''})")
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        return target  # an empty folder: nothing to lose
    found = output_kind(target) if not target.is_symlink() else None
    if found != kind:
        what = _described(found) if found else ("a folder" if target.is_dir() else "a file") + " that vscr did not make"
        raise StoreError(f"{target}: is {what}, not {_described(kind)}: refusing to replace it (remove it yourself or pick another output)")
    return target


class OutputLock:
    """An exclusive, non-blocking ``flock`` on ``.NAME.lock`` beside an output, held while a run writes it.

    The kernel drops the lock when its process dies (even by SIGKILL), so a stale file never
    blocks a later run; a clean release removes the file.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = target.with_name(f".{target.name}.lock")
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        while self._fd is None:
            fd = _open_beside(self.target, self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreError(f"{self.target}: another vscr run is writing this output (lock {self.path})") from None
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                self._fd = fd
            else:  # the previous holder removed the file while we opened it: lock the new one
                os.close(fd)
        return self

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


#: The errors of writing an output, whatever file the OS names (often none): a full disk, a quota, read-only.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def output_error(target: Path, error: OSError) -> StoreError | None:
    """An OS error of writing the output ``target`` (:data:`WRITE_ERRNOS`, or one in a file of vscr's
    beside it: ``.NAME.*``) as one line naming ``target``; None for any other error (it names its own file)."""
    named = error.filename
    inside = isinstance(named, (str, os.PathLike)) and os.path.abspath(named).startswith(os.path.abspath(target.with_name(f".{target.name}.")))
    if error.errno in WRITE_ERRNOS or inside:
        return StoreError(f"{target}: cannot write this output ({error.strerror or _brief(error)})")
    return None


@contextlib.contextmanager
def writing(target: Path) -> Iterator[None]:
    """Run a block that writes the output ``target``: its OS errors become :func:`output_error`'s line."""
    try:
        yield
    except OSError as error:
        if (named := output_error(target, error)) is None:
            raise
        raise named from error


def _open_beside(target: Path, path: Path, flags: int) -> int:
    """``os.open`` of vscr's own file ``path`` beside the output ``target``, never through a symlink
    (a planted one is refused); a failure is one line naming ``target``."""
    with writing(target):
        try:
            return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _planted_link(target, path) from None
            raise


def _planted_link(target: Path, path: Path) -> StoreError:
    """The one line refusing a symbolic link where vscr keeps a file of its own beside ``target``."""
    return StoreError(f"{target}: {path.name} beside it is a symbolic link that vscr did not make: refusing to follow it (remove it)")


def output_file_mode() -> int:
    """The mode of a new output file: ``0o666`` less the umask, as ``open()`` would make it
    (the umask is read by setting it, and put back at once)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _write_beside(target: Path, write: Callable[[BinaryIO], None]) -> Path:
    """A new file beside ``target`` (``tempfile.mkstemp``: O_EXCL, never through a symlink) filled by
    ``write``, flushed, fsynced and given :func:`output_file_mode`; removed again on any error."""
    with writing(target):
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        temporary = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
                os.fchmod(handle.fileno(), output_file_mode())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return temporary


def file_output(target: Path, kind: str, data: bytes, overwrite: bool = False) -> Path:
    """Write the single-file output ``target`` of ``kind`` atomically under the output rule:
    the rule and the lock as above, the bytes written to a new file beside it (tempfile.mkstemp
    in the same folder: O_EXCL, never through a symlink), flushed and fsynced, chmod to
    0o666 & ~umask like any other output, then os.replace over the target. An existing target
    is replaced only with overwrite and only when vscr made it as this kind: output_kind()
    recognises vscr's single files by a record inside them (a JSON file's top-level
    "vscr_output": {"schema": "vscr-output/1", "kind": ...}; a PNG's tEXt chunk "vscr-output"
    holding the same JSON; an MP4's "comment" metadata holding it). Returns the target."""
    target = check_output(target, kind, overwrite, resumable=False)
    with OutputLock(target):
        check_output(target, kind, overwrite, resumable=False)  # again, now that we hold the lock
        temporary = _write_beside(target, lambda handle: handle.write(data))
        try:
            with writing(target):
                os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return target


def check_staging(target: Path, staging: Path, kind: str) -> None:
    """Refuse (one line) a staging folder beside ``target`` that vscr did not make: a symlink, a file,
    or a folder that is neither empty nor marked as a ``kind`` output (an earlier run's)."""
    if staging.is_symlink():
        raise _planted_link(target, staging)
    if not staging.exists():
        return
    if not staging.is_dir() or (any(staging.iterdir()) and output_kind(staging) != kind):
        raise StoreError(f"{target}: {staging.name} beside it is not a staging folder vscr made: refusing to use or remove it (remove it yourself)")


@contextlib.contextmanager
def folder_output(target: Path, kind: str, overwrite: bool = False) -> Iterator[Path]:
    """Build the folder output ``target`` of ``kind`` atomically under the output rule.

    Checks the rule (check_output: parent exists; an existing target only with overwrite and only
    when vscr made it as this kind), holds the OutputLock for the whole block, yields a fresh
    staging folder beside the target (created with os.mkdir, never following a planted symlink, a
    stale one of an earlier crashed run removed only if it is a real folder vscr made, and one
    holding that run's work, e.g. an interrupted ``vscr train``'s checkpoint, only with overwrite), marks it
    (mark_output(staging, kind)) and moves it into place with replace_output when the block ends
    without error; on error the staging folder is removed and the target is untouched.

    The staging folder is marked as soon as it is made (it holds only ``vscr-output.json`` when
    yielded), so that a crashed run's one is known as vscr's; it is marked again at the end.
    """
    target = check_output(target, kind, overwrite, resumable=False)
    with OutputLock(target):
        check_output(target, kind, overwrite, resumable=False)  # again, now that we hold the lock
        staging = staging_path(target)
        check_staging(target, staging, kind)
        if staging.exists():  # an earlier, crashed run's
            if not overwrite and any(entry.name != OUTPUT_RECORD for entry in staging.iterdir()):
                raise StoreError(f"{target}: an interrupted run left its work in {staging} (e.g. a training checkpoint): pass --overwrite to discard it")
            shutil.rmtree(staging)
        with writing(target):
            os.mkdir(staging)
        try:
            with writing(target):
                mark_output(staging, kind)
                yield staging
                mark_output(staging, kind)
                replace_output(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _new_video_group(
    location: Path,
    video_id: str,
    frame_index: Iterable[int],
    arrays: Mapping[str, tuple[tuple[int, ...], np.dtype | str]],
    attrs: Mapping[str, Any] | None,
) -> zarr.Group:
    """Create (or re-create) the group of one video in the directory store at ``location``.

    The group is opened at its own path, so the root's metadata (the record, which only the
    writing run touches) is never read or written here.
    """
    index = np.asarray(list(frame_index), dtype=np.int64)
    group = zarr.open_group(zarr.storage.LocalStore(location / video_id), mode="w", attributes=dict(attrs or {}))
    group.create_array(FRAME_INDEX, data=index, chunks=(max(len(index), 1),))
    for name, (frame_shape, dtype) in arrays.items():
        group.create_array(name, shape=(len(index), *frame_shape), dtype=dtype, chunks=(1, *frame_shape), fill_value=0)
    return group


def write_video_group(
    location: Path,
    video_id: str,
    frame_index: Iterable[int],
    data: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write a whole video's group into the directory store at ``location`` (e.g. a writer's
    ``partial``, from a Dask worker); it counts as complete once :meth:`StoreWriter.complete` records it."""
    group = _new_video_group(location, video_id, frame_index, {name: (a.shape[1:], a.dtype) for name, a in data.items()}, attrs)
    for name, array in data.items():
        group[name][:] = array


class VideoWriter:
    """Writes the arrays of one video group; obtained from :meth:`StoreWriter.video`."""

    def __init__(self, group: zarr.Group) -> None:
        self.group = group

    def write(self, name: str, start: int, data: np.ndarray) -> None:
        """Write frames ``start .. start + len(data)`` of array ``name``: data is (n, *frame_shape)."""
        self.group[name][start : start + len(data)] = data


class StoreWriter:
    """Builds a store atomically; use as a context manager.

    ``target`` is the output path (``*.zarr`` directory or ``*.zarr.zip``), or ``None``
    to stream a zip store to ``stream`` (stdout by default) when the block ends.
    """

    def __init__(
        self,
        target: str | Path | None,
        *,
        kind: str,
        params: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        resume: bool = False,
        argv: list[str] | None = None,
        stream: BinaryIO | None = None,
    ) -> None:
        self.target = Path(target) if target is not None else None
        self.stream = stream
        self.record = StoreRecord(  # in recorded form, so that --resume compares like with like
            kind=kind,
            params=recorded(dict(params or {})),
            inputs=recorded(dict(inputs or {})),
            created_by={"version": __version__, "argv": list(sys.argv if argv is None else argv)},
        )
        self.overwrite = overwrite
        self.resume = resume
        self._tempdir: Path | None = None
        self._group: zarr.Group | None = None
        self._lock: OutputLock | None = None
        self._earlier = (0, 0)  # how many videos and skips an earlier (resumed) run recorded
        self._interrupted = False  # whether this run continues the partial store an interrupted run left
        self.partial: Path

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> StoreWriter:
        if self.target is None:
            self._tempdir = Path(tempfile.mkdtemp(prefix="vscr-"))
            self.partial = self._tempdir / "store.zarr"
            self._create()
            return self
        self.target = check_output(self.target, STORE, self.overwrite, self.resume)
        self._lock = OutputLock(self.target).__enter__()
        try:
            with writing(self.target):
                self._open_partial()
        except BaseException:
            self._release()
            raise
        return self

    def _open_partial(self) -> None:
        assert self.target is not None
        check_output(self.target, STORE, self.overwrite, self.resume)  # again, now that we hold the lock
        self.partial = staging_path(self.target)
        if self.resume and (self.partial.exists() or self.partial.is_symlink()):
            check_staging(self.target, self.partial, STORE)
            self._interrupted = True
            self._reopen()
        elif self.resume and output_kind(self.target) == STORE:
            self._unpack_final()
            self._reopen()
        else:
            check_staging(self.target, self.partial, STORE)
            if finished := _finished_videos(self.partial):
                if not self.overwrite:
                    raise StoreError(
                        f"{self.target}: an interrupted run left {finished} finished videos in {self.partial} "
                        "(pass --resume to keep them, or --overwrite to start again)"
                    )
                log.warning("discarding %d finished videos of an interrupted run in %s (--resume would keep them)", finished, self.partial)
            if self.partial.exists():
                shutil.rmtree(self.partial)
            self._create()

    def __exit__(self, exc_type: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        try:
            with writing(self.target or self.partial):
                if exc_type is None:
                    self._finish()
                elif self._tempdir is not None:
                    shutil.rmtree(self._tempdir, ignore_errors=True)
                elif self._group is not None and len(self.record.videos) > self._earlier[0]:  # --resume continues from the partial
                    log.warning("kept %d finished videos in %s: rerun with --resume to continue", len(self.record.videos), self.partial)
                elif self._group is not None and not self._interrupted:  # nothing new, nothing of an interrupted run to keep
                    shutil.rmtree(self.partial, ignore_errors=True)
        finally:
            self._release()
        if isinstance(error, OSError) and (named := output_error(self.target or self.partial, error)) is not None:
            raise named from error

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.__exit__()
            self._lock = None

    def _create(self) -> None:
        os.mkdir(self.partial)  # never through a planted symlink
        self._group = zarr.open_group(
            zarr.storage.LocalStore(self.partial), mode="w", attributes={NAMESPACE: self.record.to_json()}
        )

    def _reopen(self) -> None:
        try:
            group = zarr.open_group(zarr.storage.LocalStore(self.partial), mode="r+")
        except (FileNotFoundError, ValueError, KeyError, TypeError) as error:
            raise StoreError(f"{self.target}: the partial store {self.partial} of an interrupted run is damaged ({_brief(error)}); pass --overwrite to start again") from error
        previous = StoreRecord.from_json(group.attrs.get(NAMESPACE, {}), str(self.target))
        if previous.kind != self.record.kind:
            raise StoreError(f"{self.target}: cannot resume {_article(previous.kind)} {previous.kind} store as {self.record.kind}")
        if changed := changed_keys(previous.params, self.record.params):
            raise StoreError(f"{self.target}: cannot resume with different parameters ({', '.join(changed)})")
        for name in list(group.group_keys()):
            if name not in previous.videos:  # interrupted mid-write
                del group[name]
        self.record.videos = list(previous.videos)
        self.record.skipped = list(previous.skipped)
        self._earlier = (len(previous.videos), len(previous.skipped))
        self._group = group

    def _unpack_final(self) -> None:
        """Unpack (or copy) the finished store into the partial directory to continue it: built in a
        new folder beside it and renamed into place whole, so that a failure (a full disk) leaves none."""
        assert self.target is not None
        unpacking = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.unpacking-", dir=self.target.parent))
        try:
            if is_zip(self.target):
                with zipfile.ZipFile(self.target) as archive:
                    archive.extractall(unpacking / STORE)
            else:
                shutil.copytree(self.target, unpacking / STORE, symlinks=True)
            os.rename(unpacking / STORE, self.partial)
        except shutil.Error as error:  # copytree's list of (source, destination, reason), one per failed file
            failures = error.args[0]
            reason = failures[0][2] if isinstance(failures[0], tuple) else failures[-1]
            raise StoreError(f"{self.target}: cannot unpack it to resume ({reason}; {len(failures)} files failed)") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as error:
            raise StoreError(f"{self.target}: cannot unpack it to resume ({_brief(error)})") from error
        finally:
            shutil.rmtree(unpacking, ignore_errors=True)

    def _save_record(self) -> None:
        assert self._group is not None
        self._group.attrs[NAMESPACE] = self.record.to_json()

    def _finish(self) -> None:
        self._save_record()
        if self.target is None:
            assert self._tempdir is not None
            stream = self.stream or sys.stdout.buffer
            archive = self._tempdir / "store.zarr.zip"
            pack_zip(self.partial, archive)
            with archive.open("rb") as handle:
                shutil.copyfileobj(handle, stream)
            stream.flush()
            shutil.rmtree(self._tempdir, ignore_errors=True)
        elif is_zip(self.target):
            packed = _write_beside(self.target, lambda handle: pack_zip(self.partial, handle))
            try:
                replace_output(packed, self.target)
            except BaseException:
                packed.unlink(missing_ok=True)
                raise
            shutil.rmtree(self.partial)
        else:
            replace_output(self.partial, self.target)

    def check_resumed(self, sources: Mapping[str, tuple[str, Callable[[], str | None]]]) -> None:
        """Refuse (one line) to continue a store from other inputs: each video it already holds must be
        among ``sources`` (video id -> (where this run finds it, a function giving its footage's
        sha256)) and, where the store records a digest, made from that very footage."""
        assert self._group is not None, "use StoreWriter as a context manager"
        again = "pass the inputs it was made from, or --overwrite to start again"
        for video_id in self.record.videos:
            if video_id not in sources:
                raise StoreError(f"{self.target}: cannot resume: its video {video_id!r} is not among this run's inputs ({again})")
            where, digest = sources[video_id]
            recorded_digest = self._group[video_id].attrs.get(SOURCE_DIGEST)
            if recorded_digest is not None and recorded_digest != digest():
                raise StoreError(f"{self.target}: cannot resume: its video {video_id!r} was made from other footage than {where} ({again})")

    # -- content -----------------------------------------------------------------------------
    @property
    def completed(self) -> frozenset[str]:
        """Ids of the video groups already complete (non-empty only when resuming)."""
        return frozenset(self.record.videos)

    def video(
        self,
        video_id: str,
        frame_index: Iterable[int],
        arrays: Mapping[str, tuple[tuple[int, ...], np.dtype | str]],
        attrs: Mapping[str, Any] | None = None,
    ) -> VideoWriter:
        """Create the group of one video: ``arrays`` maps a name to (frame_shape, dtype).

        Every array gets shape (T, *frame_shape) with one frame per chunk. Call
        :meth:`complete` once all frames are written.
        """
        assert self._group is not None, "use StoreWriter as a context manager"
        if video_id in self.record.videos:
            raise StoreError(f"video {video_id!r} is already in the store")
        return VideoWriter(_new_video_group(self.partial, video_id, frame_index, arrays, attrs))

    def complete(self, video_id: str) -> None:
        """Mark a video group as fully written (recorded in the attrs, so --resume skips it); refused
        unless every array holds every frame, so that no store is written that its reader rejects."""
        group = zarr.open_group(zarr.storage.LocalStore(self.partial / video_id), mode="r")
        frames = group[FRAME_INDEX].shape[0]
        for name, array in group.arrays():
            if array.shape[0] != frames or array.nchunks_initialized != array.nchunks:
                raise StoreError(f"{self.target or '<stdout>'}: video {video_id!r}: array {name!r} is not fully written ({array.nchunks_initialized} of {array.nchunks} chunks, {array.shape[0]} of {frames} frames)")
        self.record.videos.append(video_id)
        self._save_record()

    def write_video(
        self,
        video_id: str,
        frame_index: Iterable[int],
        data: Mapping[str, np.ndarray],
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Write a whole video at once: ``data`` maps a name to a (T, ...) array."""
        if video_id in self.record.videos:
            raise StoreError(f"video {video_id!r} is already in the store")
        write_video_group(self.partial, video_id, frame_index, data, attrs)
        self.complete(video_id)

    def skip(self, video_id: str, reason: str) -> None:
        """Record a video that was left out (e.g. ``--skip-bad``) and why."""
        self.record.skipped.append({"video": video_id, "reason": reason})
        self._save_record()

    def order(self, video_ids: Sequence[str]) -> None:
        """List the videos (and skips) of this run in the order of ``video_ids`` (the input order),
        after those an earlier, resumed run recorded: what a run that finished them one by one records."""
        position = {video_id: i for i, video_id in enumerate(video_ids)}
        videos, skipped = self._earlier
        self.record.videos[videos:] = sorted(self.record.videos[videos:], key=position.__getitem__)
        self.record.skipped[skipped:] = sorted(self.record.skipped[skipped:], key=lambda s: position[s["video"]])
        self._save_record()


class StoredArray:
    """A (T, ...) array of a stored video, read lazily by indexing; a chunk that cannot be read or
    decoded (a truncated file) is one :class:`StoreError` line naming the store, video and array."""

    def __init__(self, array: zarr.Array, where: str) -> None:
        self._array = array
        self._where = where

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def chunks(self) -> tuple[int, ...]:
        return self._array.chunks

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self._array[key])
        except (RuntimeError, ValueError, OSError, zipfile.BadZipFile) as error:  # a codec's or the zip's complaint
            raise StoreError(f"{self._where} is damaged ({_brief(error)})") from error

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self[...], dtype=dtype)


class Store:
    """A store opened for reading; use :func:`open_store`."""

    def __init__(self, group: zarr.Group, record: StoreRecord, location: str, cleanup: Path | None = None) -> None:
        self.group = group
        self.record = record
        self.location = location
        self._cleanup = cleanup

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        store = self.group.store
        if isinstance(store, zarr.storage.ZipStore):
            store.close()
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def videos(self) -> list[str]:
        return list(self.record.videos)

    def _video_group(self, video_id: str) -> zarr.Group:
        if video_id not in self.record.videos:
            raise StoreError(f"{self.location}: no video {video_id!r} in this {self.kind} store")
        try:
            return self.group[video_id]
        except (KeyError, ValueError, TypeError) as error:  # missing or unreadable zarr.json
            raise self._damaged_group(video_id, error) from error

    def _damaged_group(self, video_id: str, error: BaseException) -> StoreError:
        return StoreError(f"{self.location}: the group of video {video_id!r} is damaged ({_brief(error)})")

    def _checked(self, video_id: str, name: str) -> StoredArray:
        """Array ``name`` of a video, refused when it is damaged: unreadable metadata, a missing chunk
        (a damaged store reads as zeros), or a leading length other than its ``frame_index``'s."""
        group = self._video_group(video_id)
        where = f"{self.location}: array {name!r} of video {video_id!r}"
        try:
            array = group[name]
        except (KeyError, ValueError, TypeError) as error:
            raise StoreError(f"{where} is damaged ({_brief(error)})") from error
        if not isinstance(array, zarr.Array) or array.ndim == 0:
            raise StoreError(f"{where} is damaged (not an array with a leading frame axis)")
        if self.record.complete_chunks and array.nchunks_initialized != array.nchunks:
            raise StoreError(f"{where} is damaged ({array.nchunks - array.nchunks_initialized} of {array.nchunks} chunks missing)")
        frames = array.shape[0] if name == FRAME_INDEX else self._checked(video_id, FRAME_INDEX).shape[0]
        if array.shape[0] != frames:
            raise StoreError(f"{where} is damaged (it holds {array.shape[0]} frames, its frame_index {frames})")
        return StoredArray(array, where)

    def frame_index(self, video_id: str) -> np.ndarray:
        """(T,) int64 0-based frame numbers of a video."""
        return self._checked(video_id, FRAME_INDEX)[:]

    def _array_names(self, video_id: str) -> list[str]:
        try:
            return list(self._video_group(video_id).array_keys())
        except (KeyError, ValueError, TypeError) as error:  # an array's zarr.json is unreadable
            raise self._damaged_group(video_id, error) from error

    def arrays(self, video_id: str) -> list[str]:
        return sorted(name for name in self._array_names(video_id) if name != FRAME_INDEX)

    def array(self, video_id: str, name: str) -> StoredArray:
        """The lazy (T, ...) array ``name`` of a video."""
        if name not in self._array_names(video_id):
            raise StoreError(f"{self.location}: video {video_id!r} has no array {name!r}")
        return self._checked(video_id, name)

    def read(self, video_id: str, name: str) -> np.ndarray:
        return self.array(video_id, name)[:]

    def video_attrs(self, video_id: str) -> dict[str, Any]:
        return dict(self._video_group(video_id).attrs)

    def footage(self, video_id: str) -> str | None:
        """The sha256 of the footage a video was made from, as its group records it (None: not recorded)."""
        return self.video_attrs(video_id).get(SOURCE_DIGEST)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _brief(error: BaseException) -> str:
    """An exception as a short one-line reason."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _spool_stdin() -> Path:
    if sys.stdin is None or sys.stdin.isatty():
        raise StoreError("-: expected a zip store on standard input (pipe one in, or give a path)")
    directory = Path(tempfile.mkdtemp(prefix="vscr-stdin-"))
    path = directory / "stdin.zarr.zip"
    with path.open("wb") as handle:
        shutil.copyfileobj(sys.stdin.buffer, handle)
    if not path.stat().st_size:
        shutil.rmtree(directory)
        raise StoreError("-: no input on stdin (did the command before the pipe fail?)")
    return path


def check_store_path(location: str | Path) -> None:
    """Refuse (one line) a store input that is not there, before reading it (``-``, stdin, is read as it comes)."""
    if str(location) != "-" and not Path(location).exists():
        raise StoreError(f"{location}: no such store")


def open_store(location: str | Path, kind: str | Iterable[str] | None = None) -> Store:
    """Open a store for reading and check its record.

    ``location`` is a directory, a ``.zip`` file, or ``"-"`` for zip bytes on stdin;
    ``kind`` restricts the accepted kinds. Raises :class:`StoreError` with one clear line.
    """
    cleanup = None
    where = str(location)
    if where == "-":
        path = _spool_stdin()
        cleanup = path.parent
        where = "<stdin>"
    else:
        check_store_path(location)
        path = Path(location)
    try:
        if path.is_dir():
            store: zarr.abc.store.Store = zarr.storage.LocalStore(path, read_only=True)
        elif zipfile.is_zipfile(path):
            store = zarr.storage.ZipStore(path, mode="r")
        else:
            raise StoreError(f"{where}: not a store (expected a .zarr directory or a .zarr.zip file)")
        try:
            group = zarr.open_group(store, mode="r")
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise StoreError(f"{where}: not a Zarr v3 group ({exc})") from exc
        if NAMESPACE not in group.attrs:
            raise StoreError(f"{where}: not a vscr store (no {NAMESPACE!r} record in its attributes)")
        record = StoreRecord.from_json(group.attrs[NAMESPACE], where)
        accepted = (kind,) if isinstance(kind, str) else tuple(kind or ())
        if accepted and record.kind not in accepted:
            raise StoreError(f"{where}: is {_article(record.kind)} {record.kind} store, expected {' or '.join(accepted)}")
    except BaseException:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise
    return Store(group, record, where, cleanup)


def check_same_frames(first: Store, second: Store) -> None:
    """Raise :class:`StoreError` unless two stores hold the same videos with the same frame indices,
    made from the same footage (where both record its digest)."""
    a, b = set(first.videos), set(second.videos)
    if a != b:
        only_a, only_b = sorted(a - b), sorted(b - a)
        detail = "; ".join(
            part
            for part in (
                f"only in {first.location}: {', '.join(only_a[:5])}" if only_a else "",
                f"only in {second.location}: {', '.join(only_b[:5])}" if only_b else "",
            )
            if part
        )
        raise StoreError(f"{first.location} and {second.location} hold different videos ({detail})")
    for video_id in first.videos:
        if not np.array_equal(first.frame_index(video_id), second.frame_index(video_id)):
            raise StoreError(
                f"{first.location} and {second.location} disagree on the frames of video {video_id!r}"
            )
        digests = {store.video_attrs(video_id).get(SOURCE_DIGEST) for store in (first, second)}
        if len(digests) > 1 and None not in digests:
            raise StoreError(f"{first.location} and {second.location} were made from different footage of video {video_id!r}")


def describe(location: str) -> dict[str, Any]:
    """A store's record and, per video, its frames and arrays (shape, dtype), as plain data (``vscr info``)."""
    with open_store(location) as store:
        videos = []
        for video_id in store.videos:
            videos.append(
                {
                    "video": video_id,
                    "frames": int(len(store.frame_index(video_id))),
                    "arrays": {
                        name: {"shape": list(store.array(video_id, name).shape), "dtype": str(store.array(video_id, name).dtype)}
                        for name in store.arrays(video_id)
                    },
                }
            )
        return {"location": store.location, **store.record.to_json(), "videos": videos}
