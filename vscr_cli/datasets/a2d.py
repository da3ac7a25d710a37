"""Reader (and writer helpers) for the A2D ``Release/`` layout.

Layout::

    Release/videoset.csv                              no header, 9 columns (see VideosetRow)
    Release/clips320H/<vid>.mp4                       the clips, 320 px high
    Release/Annotations/mat/<vid>/<frame:05d>.mat     MATLAB v7.3 (HDF5): reS_id, reMask, reBBox, id
    Release/Annotations/col/<vid>/<frame:05d>.png     colour label maps

Frame numbers in file names are 1-based (``00000.mat`` is an error); everything this module
returns is 0-based. ``videoset.csv`` is UTF-8 (a byte-order mark is fine) and lists each video once.
MATLAB stores arrays column-major, so every HDF5 dataset is transposed on reading.
``Annotations/dense/<vid>/<frame:05d>.png`` (uint8 ids for every frame) is a vscr
extension written by ``vscr synth --dense``; the real A2D has no such folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from vscr_cli import labels
from vscr_cli.errors import SourceError
from vscr_cli.store import check_video_id
from vscr_cli.tags import csv_rows
from vscr_cli.video import VideoSource, read_image

SPLITS = {"train": 0, "test": 1}
MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: vscr synth HDF5 schema 1.00 ."


@dataclass(frozen=True)
class VideosetRow:
    """One row of ``videoset.csv``."""

    video_id: str
    label: int
    start_time: float
    end_time: float
    height: int
    width: int
    frames: int
    labeled_frames: int
    split: int  # 0 train, 1 test

    @classmethod
    def parse(cls, fields: list[str], where: str) -> VideosetRow:
        if len(fields) != 9:
            raise SourceError(f"{where}: expected 9 columns, found {len(fields)}")
        try:
            return cls(
                check_video_id(fields[0].strip(), where),
                int(fields[1]),
                float(fields[2]),
                float(fields[3]),
                int(fields[4]),
                int(fields[5]),
                int(fields[6]),
                int(fields[7]),
                int(fields[8]),
            )
        except ValueError as exc:
            raise SourceError(f"{where}: {exc}") from exc

    def to_fields(self) -> list[str]:
        start = f"{self.start_time:g}"
        end = f"{self.end_time:g}"
        return [self.video_id, str(self.label), start, end, *map(str, (self.height, self.width, self.frames, self.labeled_frames, self.split))]


@dataclass(frozen=True)
class Annotation:
    """Ground truth of one annotated frame.

    ``label_map`` (H, W) uint8 A2D ids (invalid ids -> 255); ``masks`` (N, H, W) bool
    instance masks; ``boxes`` (N, 4) as stored (x1, y1, x2, y2); ``ids`` (N,) instance labels.
    """

    label_map: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    ids: np.ndarray
    ignored_pixels: int


def find_release_root(path: Path) -> Path | None:
    """The ``Release`` folder at or under ``path`` (the one holding videoset.csv), or None."""
    for candidate in (path, path / "Release"):
        if (candidate / "videoset.csv").is_file():
            return candidate
    return None


class A2DRelease:
    """An A2D ``Release/`` folder (the real one or one written by ``vscr synth``).

    As ground truth it serves the annotated frames, or with ``dense`` the every-frame
    maps of ``vscr synth --dense``.
    """

    def __init__(self, root: str | Path, dense: bool = False) -> None:
        found = find_release_root(Path(root))
        if found is None:
            raise SourceError(f"{root}: not an A2D Release folder (no videoset.csv)")
        self.root = found
        self.dense = dense
        if dense and not (found / "Annotations" / "dense").is_dir():
            raise SourceError(f"{found}: no dense ground truth (write it with `vscr synth --dense`)")

    @cached_property
    def rows(self) -> dict[str, VideosetRow]:
        """The rows of ``videoset.csv`` by video id; a video listed twice is a :class:`SourceError`."""
        rows: dict[str, VideosetRow] = {}
        for where, fields in csv_rows(self.root / "videoset.csv", SourceError, "the A2D video list"):
            row = VideosetRow.parse(fields, where)
            if row.video_id in rows:
                raise SourceError(f"{where}: video {row.video_id!r} is listed twice")
            rows[row.video_id] = row
        return rows

    def videos(self, split: str = "all") -> list[str]:
        if split == "all":
            return list(self.rows)
        return [vid for vid, row in self.rows.items() if row.split == SPLITS[split]]

    def clip_path(self, video_id: str) -> Path:
        return self.root / "clips320H" / f"{video_id}.mp4"

    def _mat_dir(self, video_id: str) -> Path:
        return self.root / "Annotations" / "mat" / video_id

    def annotated_frames(self, video_id: str) -> tuple[int, ...]:
        """0-based numbers of the frames with a .mat annotation."""
        return _frame_numbers(self._mat_dir(video_id), ".mat")

    def sources(self, split: str = "all") -> list[VideoSource]:
        return [VideoSource(vid, self.clip_path(vid), self.annotated_frames(vid)) for vid in self.videos(split)]

    def annotation(self, video_id: str, frame: int) -> Annotation:
        """Read the annotation of 0-based ``frame``."""
        path = self._mat_dir(video_id) / f"{frame + 1:05d}.mat"
        try:
            with h5py.File(path, "r") as mat:
                raw = np.asarray(mat["reS_id"]).T
                masks = np.asarray(mat["reMask"]).T if "reMask" in mat else np.zeros((*raw.shape, 0))
                boxes = np.asarray(mat["reBBox"]).T if "reBBox" in mat else np.zeros((4, 0))
                ids = np.asarray(mat["id"]).T.reshape(-1) if "id" in mat else np.zeros(0)
        except (OSError, KeyError) as exc:
            raise SourceError(f"{path}: cannot read A2D annotation ({exc})") from exc
        if masks.ndim == 2:  # MATLAB drops a trailing singleton instance axis
            masks = masks[:, :, None]
        label_map, ignored = labels.sanitize(raw.astype(np.int64))
        return Annotation(
            label_map=label_map,
            masks=np.moveaxis(masks, -1, 0).astype(bool),
            boxes=boxes.reshape(4, -1).T.astype(np.float64),
            ids=ids.astype(np.int64),
            ignored_pixels=ignored,
        )

    def dense_frames(self, video_id: str) -> tuple[int, ...]:
        """0-based numbers of the frames with dense ground truth (``vscr synth --dense`` only)."""
        return _frame_numbers(self.root / "Annotations" / "dense" / video_id, ".png")

    def dense_label_map(self, video_id: str, frame: int) -> np.ndarray:
        return labels.sanitize(read_image(self.root / "Annotations" / "dense" / video_id / f"{frame + 1:05d}.png", mode=None))[0]

    def labeled_frames(self, video_id: str) -> tuple[int, ...]:
        return self.dense_frames(video_id) if self.dense else self.annotated_frames(video_id)

    def label_map(self, video_id: str, frame: int) -> np.ndarray:
        if self.dense:
            return self.dense_label_map(video_id, frame)
        return self.annotation(video_id, frame).label_map

    def tags(self, video_id: str) -> tuple[int, ...]:
        """Video-level tags: every valid id found in any of the video's annotation files."""
        found: set[int] = set()
        for frame in self.annotated_frames(video_id):
            annotation = self.annotation(video_id, frame)
            found.update(int(i) for i in np.unique(annotation.label_map))
            found.update(int(i) for i in annotation.ids)
        return tuple(sorted(found & set(labels.VALID_IDS)))


def _frame_numbers(folder: Path, suffix: str) -> tuple[int, ...]:
    """0-based numbers of the 1-based ``NNNNN<suffix>`` files in ``folder`` (() when it is missing).

    Other names (macOS's ``._00005.mat``) are not frames and are skipped; ``00000`` is an error.
    """
    if not folder.is_dir():
        return ()
    numbers = []
    for path in folder.glob(f"*{suffix}"):
        if path.stem.isdecimal():
            if int(path.stem) < 1:
                raise SourceError(f"{path}: A2D numbers frames from 1 (00001{suffix} is the first frame), so this file names no frame")
            numbers.append(int(path.stem) - 1)
    return tuple(sorted(numbers))


def write_videoset(path: Path, rows: list[VideosetRow]) -> None:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(row.to_fields() for row in rows)


def write_annotation(path: Path, label_map: np.ndarray, masks: np.ndarray, ids: np.ndarray) -> None:
    """Write one frame's annotation as a MATLAB v7.3 file, as A2D stores it.

    ``label_map`` (H, W) ids, ``masks`` (N, H, W) bool, ``ids`` (N,). Boxes are derived
    from the masks. Arrays are written column-major (transposed) with MATLAB class
    attributes, behind the 512-byte MATLAB header.
    """
    boxes = np.zeros((len(ids), 4))
    for n, mask in enumerate(masks):
        rows, cols = np.nonzero(mask)
        if len(rows):
            boxes[n] = (cols.min() + 1, rows.min() + 1, cols.max() + 1, rows.max() + 1)
    matlab_masks = np.moveaxis(masks, 0, -1).astype(np.uint8)
    if matlab_masks.shape[-1] == 1:
        matlab_masks = matlab_masks[..., 0]
    datasets = {
        "reS_id": label_map.astype(np.float64),
        "reMask": matlab_masks,
        "reBBox": boxes.T,
        "id": ids.astype(np.float64).reshape(1, -1),
    }
    with h5py.File(path, "w", userblock_size=512) as mat:
        for name, value in datasets.items():
            dataset = mat.create_dataset(name, data=np.ascontiguousarray(value.T))
            dataset.attrs["MATLAB_class"] = np.bytes_("uint8" if value.dtype == np.uint8 else "double")
    with path.open("r+b") as handle:
        handle.write(MATLAB_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")
