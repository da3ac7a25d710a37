"""Video decoding: every stage reads frames through this module (the only one that decodes media).

A video is a file (mp4/avi/mkv/webm/mov via PyAV) or a folder of frame images (one folder =
one video). Frames are (H, W, 3) uint8 RGB; frame numbers are 0-based; every frame of a video
has the size the video declares (its stream's, or its first image's). Finding the videos a
source argument names is :mod:`vscr_cli.sources`.

Input limit: a frame may declare at most :func:`max_pixels` pixels (width x height), checked from
the header before anything is decoded, so a decompression bomb (a tiny file declaring a huge
image) is one error line rather than gigabytes of memory. The limit is
:data:`DEFAULT_MAX_PIXELS` unless ``$VSCR_MAX_PIXELS`` (or :func:`set_max_pixels`, which sets it) says otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import av
import cv2
import numpy as np
import PIL.Image

from vscr_cli.errors import SourceError
from vscr_cli.store import check_video_id

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

#: The most pixels a frame may declare: 40 megapixels, almost five 4K UHD frames (3840x2160 is 8.3).
DEFAULT_MAX_PIXELS = 40_000_000
MAX_PIXELS_ENV = "VSCR_MAX_PIXELS"
PIL.Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check only warns below 179 MP: max_pixels() decides


def set_max_pixels(limit: int) -> None:
    """Let frames declare up to ``limit`` pixels, in this process and the workers it starts
    (it sets ``$VSCR_MAX_PIXELS``, which they inherit)."""
    if limit < 1:
        raise SourceError(f"the pixel limit must be at least 1, got {limit}")
    os.environ[MAX_PIXELS_ENV] = str(limit)


def max_pixels() -> int:
    """The most pixels a frame may declare: ``$VSCR_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdecimal() or int(text) < 1:
        raise SourceError(f"{MAX_PIXELS_ENV}={text!r}: expected a whole number of pixels of at least 1")
    return int(text)


def check_pixels(where: Path, width: int, height: int) -> None:
    """A :class:`SourceError` naming ``where`` unless a ``width`` x ``height`` frame is within :func:`max_pixels`."""
    limit = max_pixels()
    if width * height > limit:
        raise SourceError(
            f"{where}: declares {width}x{height} pixels, more than the limit of {limit} "
            f"(a decompression bomb? to read it, raise the limit: vscr --max-pixels N or {MAX_PIXELS_ENV}=N)"
        )


def _size_mismatch(where: str, size: tuple[int, int], expected: tuple[int, int]) -> SourceError:
    """The error for a frame of ``size`` (H, W) in a video whose frames are ``expected`` (H, W)."""
    return SourceError(
        f"{where} is {size[1]}x{size[0]} pixels where the video's frames are {expected[1]}x{expected[0]} "
        "(every frame of a video must have one size)"
    )


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a video a stage reads, and at what size.

    ``every``: keep every Nth frame; ``max_frames``: at most this many (evenly spread after
    ``every``); ``annotated_only``: only frames with ground truth (A2D);
    ``height``: resize to this height keeping the aspect ratio (width rounded to even).
    """

    every: int = 1
    max_frames: int | None = None
    annotated_only: bool = False
    height: int | None = None

    def to_json(self) -> dict[str, int | bool | None]:
        """The selection as recorded in a store's params (stages that must agree compare it)."""
        return {"every": self.every, "max_frames": self.max_frames, "annotated_only": self.annotated_only, "height": self.height}

    def __post_init__(self) -> None:
        if self.every < 1:
            raise SourceError(f"--every must be at least 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 1:
            raise SourceError(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.height is not None and self.height < 8:
            raise SourceError(f"--height must be at least 8 pixels, got {self.height}")


@dataclass(frozen=True)
class VideoSource:
    """One video: a file decoded with PyAV or a folder of frame images.

    ``annotated`` lists the 0-based frame numbers that have ground truth, when known (A2D).
    """

    video_id: str
    path: Path
    annotated: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_video_id(self.video_id, str(self.path))

    def digest(self) -> str:
        """sha256 of the footage: the video file's bytes, or the frame images' bytes in order."""
        hasher = hashlib.sha256()
        for path in self._image_files() if self.is_folder else [self.path]:
            with path.open("rb") as handle:
                hashlib.file_digest(handle, lambda: hasher)
        return hasher.hexdigest()

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    def _image_files(self) -> list[Path]:
        return sorted(p for p in visible(self.path) if p.suffix.lower() in IMAGE_SUFFIXES)

    @cached_property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame: the first image's, or the video stream's (read from headers, within :func:`max_pixels`)."""
        if self.is_folder:
            files = self._image_files()
            if not files:
                raise SourceError(f"{self.path}: video has no frames")
            return image_size(files[0])
        with self._open() as container:
            stream = container.streams.video[0]
            return stream.height, stream.width

    def _open(self) -> av.container.InputContainer:
        """The container, its first video stream's declared size checked against :func:`max_pixels`."""
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"{self.path}: cannot open video ({_reason(exc)})") from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.path}: no video stream")
        stream = container.streams.video[0]
        try:
            check_pixels(self.path, stream.width, stream.height)
        except SourceError:
            container.close()
            raise
        return container

    def count_frames(self) -> int:
        """Number of frames (decodes the file when the container does not say)."""
        if self.is_folder:
            return len(self._image_files())
        with self._open() as container:
            stream = container.streams.video[0]
            if stream.frames > 0:
                return int(stream.frames)
        return sum(1 for _ in self._decode(None))

    def select(self, selection: FrameSelection) -> list[int]:
        """0-based frame numbers chosen by ``selection``; raises if the video has no frames or none is chosen."""
        total = self.count_frames()
        if total == 0:
            raise SourceError(f"{self.path}: video has no frames")
        if selection.annotated_only:
            if self.annotated is None:
                raise SourceError(f"{self.path}: --annotated-only needs an A2D source (no annotations known)")
            indices = [i for i in self.annotated if i < total]
        else:
            indices = list(range(0, total, selection.every))
        if selection.max_frames is not None and len(indices) > selection.max_frames:
            picks = np.linspace(0, len(indices) - 1, selection.max_frames).round().astype(int)
            indices = [indices[i] for i in picks]
        if not indices:
            raise SourceError(f"{self.path}: no frame selected (its annotated frames lie beyond its {total} frames)")
        return indices

    def _decode(self, wanted: set[int] | None) -> Iterator[tuple[int, np.ndarray]]:
        last = max(wanted) if wanted else None
        expected = self.frame_size
        with self._open() as container:
            try:
                for number, frame in enumerate(container.decode(video=0)):
                    if wanted is None or number in wanted:
                        if (frame.height, frame.width) != expected:
                            raise _size_mismatch(f"{self.path}: frame {number}", (frame.height, frame.width), expected)
                        yield number, frame.to_ndarray(format="rgb24")
                    if last is not None and number >= last:
                        return
            except av.error.FFmpegError as exc:
                raise SourceError(f"{self.path}: cannot decode video ({_reason(exc)})") from exc

    def read(self, indices: Sequence[int], height: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame number, (H, W, 3) uint8 RGB frame) for ``indices`` in increasing order."""
        wanted = set(indices)
        if self.is_folder:
            files = self._image_files()
            frames: Iterable[tuple[int, np.ndarray]] = (
                (i, read_image(files[i], size=self.frame_size)) for i in sorted(wanted) if i < len(files)
            )
        else:
            frames = self._decode(wanted)
        found = 0
        for number, frame in frames:
            found += 1
            yield number, resize_to_height(frame, height)
        if found < len(wanted):
            raise SourceError(f"{self.path}: expected {len(wanted)} frames, could read only {found}")


def _reason(error: Exception) -> str:
    """Why a file could not be read, without FFmpeg's raw error number."""
    return getattr(error, "strerror", None) or str(error)


@contextlib.contextmanager
def _opened_image(path: Path) -> Iterator[PIL.Image.Image]:
    """An image file opened with Pillow (only its header read), its size checked against
    :func:`max_pixels`; a file Pillow cannot read is a :class:`SourceError`."""
    try:
        with PIL.Image.open(path) as image:
            check_pixels(path, *image.size)
            yield image
    except (OSError, ValueError) as error:
        raise SourceError(f"{path}: cannot read image ({_reason(error)})") from error


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) an image file declares, read from its header and checked against :func:`max_pixels`."""
    with _opened_image(path) as image:
        return image.height, image.width


def read_image(path: Path, mode: str | None = "RGB", size: tuple[int, int] | None = None) -> np.ndarray:
    """An image file through Pillow, the one image reader: ``mode`` ``"RGB"`` gives (H, W, 3) uint8,
    ``"L"`` (H, W) uint8 grey, None the values as stored (a label map's ids).

    Before any pixel is decoded the header's size is checked against :func:`max_pixels` and, when
    given, against ``size`` (H, W: the video's). A damaged file is an error rather than a half-grey
    frame, and libjpeg's warnings stay off stderr (OpenCV prints them).
    """
    with _opened_image(path) as image:
        if size is not None and (image.height, image.width) != size:
            raise _size_mismatch(f"{path}: frame", (image.height, image.width), size)
        return np.asarray(image if mode is None else image.convert(mode))


def size_at_height(size: tuple[int, int], height: int | None) -> tuple[int, int]:
    """The (H, W) of a frame of ``size`` (H, W) resized to ``height`` rows by :func:`resize_to_height`."""
    if height is None or size[0] == height:
        return size
    return height, max(2, round(size[1] * height / size[0] / 2) * 2)


def shrunk_to_height(size: tuple[int, int], height: int | None) -> tuple[int, int]:
    """``size`` (H, W) at ``height`` rows where it has more (:func:`size_at_height`), else itself (also
    for a ``height`` of None or 0)."""
    return size if not height or height >= size[0] else size_at_height(size, height)


def resize_to_height(frame: np.ndarray, height: int | None) -> np.ndarray:
    """Resize an (H, W, C) frame to ``height`` rows keeping the aspect ratio (even width)."""
    if height is None or frame.shape[0] == height:
        return frame
    _, width = size_at_height(frame.shape[:2], height)
    interpolation = cv2.INTER_AREA if height < frame.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(frame, (width, height), interpolation=interpolation)


def visible(folder: Path) -> list[Path]:
    """A folder's entries without hidden ones (``.DS_Store``, macOS ``._clip.mp4`` forks), sorted."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
