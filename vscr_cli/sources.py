"""Video sources: what a source argument names, and where a video's ground truth is.

A source argument may be a video file, a folder of frame images (one folder = one video), a
folder holding videos or frame folders, an A2D ``Release/`` root, or a ``.txt`` list of such
paths. Each video gets a readable, unique id: the file stem; for a folder named ``frames``,
its parent's name; the A2D video id. Decoding is :mod:`vscr_cli.video`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vscr_cli.datasets.a2d import A2DRelease, find_release_root
from vscr_cli.errors import SourceError, StoreError
from vscr_cli.settings.run import SPLITS, check_source, check_sources
from vscr_cli.tags import read_text
from vscr_cli.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, VideoSource, visible


def _folder_id(path: Path) -> str:
    return path.parent.name if path.name == "frames" else path.name


def _expand(path: Path, a2d_split: str) -> list[VideoSource]:
    check_source(path)
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return [VideoSource(path.stem, path)]
        if path.suffix.lower() == ".txt":
            return _expand_list(path, a2d_split)
        raise SourceError(f"{path}: not a video file, frame folder, A2D root or .txt list")
    release = find_release_root(path)
    if release is not None:
        return A2DRelease(release).sources(split=a2d_split)
    entries = visible(path)
    if any(e.is_file() and e.suffix.lower() in IMAGE_SUFFIXES for e in entries):
        return [VideoSource(_folder_id(path), path)]
    found: list[VideoSource] = []
    for entry in entries:
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            found.append(VideoSource(entry.stem, entry))
        elif entry.is_dir():
            frames = entry / "frames" if (entry / "frames").is_dir() else entry
            if any(p.suffix.lower() in IMAGE_SUFFIXES for p in visible(frames)):
                found.append(VideoSource(_folder_id(frames), frames))
    if not found:
        raise SourceError(f"{path}: no videos or frame folders found")
    return found


def _expand_list(path: Path, a2d_split: str) -> list[VideoSource]:
    found: list[VideoSource] = []
    for line in read_text(path, SourceError, "the list of sources").splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            item = Path(entry)
            found.extend(_expand(item if item.is_absolute() else path.parent / item, a2d_split))
    return found


def discover(sources: Sequence[str | Path], a2d_split: str = "all") -> list[VideoSource]:
    """Expand source arguments into videos with unique ids (in argument order).

    ``a2d_split`` (``train``, ``test`` or ``all``) filters the videos of an A2D root.
    """
    if a2d_split not in SPLITS:
        raise SourceError(f"unknown A2D split {a2d_split!r} (expected train, test or all)")
    check_sources(sources)
    videos = [video for source in sources for video in _expand(Path(source), a2d_split)]
    seen: dict[str, Path] = {}
    for video in videos:
        if video.video_id in seen:
            raise SourceError(
                f"two videos have the id {video.video_id!r}: {seen[video.video_id]} and {video.path}"
            )
        seen[video.video_id] = video.path
    return videos


def recorded_sources(inputs: Mapping) -> list[VideoSource]:
    """The videos a store was made from, as its record's ``inputs`` name them (``sources`` and
    ``split``), looking through stores made from stores (an aligned store's ``inputs.pred``)."""
    while "sources" not in inputs and isinstance(inputs.get("pred"), Mapping):
        inputs = inputs["pred"].get("inputs", {})
    return discover(inputs.get("sources", []), a2d_split=inputs.get("split", "all"))


def ground_truth_root(video: VideoSource) -> Path | None:
    """Where ``video``'s ground truth is, judging by its path, or None.

    An A2D clip ``Release/clips320H/<id>.mp4`` has it in that Release; a video ``DIR/<id>.mp4``
    or frame folder ``DIR/<id>[/frames]`` has it in ``DIR`` when ``DIR`` is DAVIS-style:
    ``DIR/<id>/masks/`` and ``DIR/tags.csv``.
    """
    path = video.path.absolute()
    if path.parent.name == "clips320H" and (release := find_release_root(path.parent.parent)) is not None:
        return release
    for folder in (path.parent, path.parent.parent):
        if (folder / video.video_id / "masks").is_dir() and (folder / "tags.csv").is_file():
            return folder
    return None


def recorded_ground_truth(location: str, inputs: Mapping) -> Path:
    """The one dataset holding the ground truth of every video a store's record names as its
    sources (through the stores it was made from); a :class:`StoreError` naming ``location`` when
    a video has none, they point to several, or the sources are gone."""
    try:
        videos = recorded_sources(inputs)
    except SourceError as error:
        raise StoreError(f"{location}: cannot follow its recorded sources to ground truth ({error}); pass --gt") from error
    roots: list[Path] = []
    for video in videos:
        root = ground_truth_root(video)
        if root is None:
            raise StoreError(
                f"{location}: its source {video.path} holds no ground truth for video {video.video_id!r} "
                "(an A2D Release, or <id>/masks and tags.csv beside it); pass --gt"
            )
        if root not in roots:
            roots.append(root)
    if len(roots) > 1:
        raise StoreError(f"{location}: its sources point to several ground truths ({', '.join(map(str, roots))}); pass --gt")
    return roots[0]
