"""Give every actor region of a prediction store one action by majority vote (the paper's action alignment)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import typer

from vscr_cli import console
from vscr_cli.errors import StoreError
from vscr_cli.options import Output, Overwrite, Resume, resolve_output
from vscr_cli.stages.align import align_actions
from vscr_cli.store import Store, StoreWriter, open_store

NAME = "align"
LABEL = "label"
PROB = "prob"


class Connectivity(str, enum.Enum):
    four = "4"
    eight = "8"


def _check_min_iou(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise typer.BadParameter(f"{value} is not in (0, 1]")
    return value


def align_video(store: Store, video: str, writer: StoreWriter, options: dict[str, Any], on_frames: Callable[[int], None]) -> None:
    """Write one video of ``store`` to ``writer`` with aligned ``label``; every other array is copied unchanged.

    Without tracking each frame is aligned on its own, streaming frame by frame; with
    tracking the whole (T, H, W) video (and (T, 44, H, W) ``prob`` when voting softly) is read.
    """
    names = store.arrays(video)
    if LABEL not in names:
        raise StoreError(f"{store.location}: video {video!r} has no {LABEL!r} array")
    if options["use_prob"] and PROB not in names:
        raise StoreError(f"{store.location}: video {video!r} has no {PROB!r} array (drop --use-prob)")
    arrays = {name: store.array(video, name) for name in names}
    if arrays[LABEL].dtype != np.uint8 or arrays[LABEL].ndim != 3:
        raise StoreError(f"{store.location}: video {video!r}: {LABEL!r} must be (T, H, W) uint8, not {arrays[LABEL].dtype} {arrays[LABEL].shape}")
    frame_index = store.frame_index(video)
    output = writer.video(
        video, frame_index, {name: (array.shape[1:], array.dtype) for name, array in arrays.items()}, store.video_attrs(video)
    )
    frames = len(frame_index)
    step = max(frames, 1) if options["track"] else 1
    for start in range(0, frames, step):
        window = slice(start, start + step)
        prob = np.asarray(arrays[PROB][window]) if options["use_prob"] else None
        aligned = align_actions(
            np.asarray(arrays[LABEL][window]),
            track=options["track"],
            min_iou=options["min_iou"],
            prob=prob,
            connectivity=1 if options["connectivity"] == 4 else 2,
        )
        output.write(LABEL, start, aligned)
        for name in names:
            if name != LABEL:
                output.write(name, start, np.asarray(arrays[name][window]))
        on_frames(len(aligned))
    writer.complete(video)


def command(
    pred: Annotated[str, typer.Argument(help="Prediction store (kind pred): .zarr, .zarr.zip or '-' (default) for a zip on stdin.")] = "-",
    output: Output = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Vote over tracks of regions linked across frames (default: per frame, as in the paper).")] = False,
    min_iou: Annotated[
        float,
        typer.Option("--min-iou", callback=_check_min_iou, help="With --track: smallest IoU linking a region to the previous frame's."),
    ] = 0.3,
    connectivity: Annotated[Connectivity, typer.Option("--connectivity", help="Pixels of an actor region touch by 4 or 8 neighbours.")] = Connectivity.eight,
    use_prob: Annotated[bool, typer.Option("--use-prob", help="Soft votes from the store's class probabilities (prob) instead of one vote per pixel.")] = False,
    overwrite: Overwrite = False,
    resume: Resume = False,
) -> None:
    target = resolve_output(output, overwrite, resume, pipe="| vscr score")
    options = {"track": track, "min_iou": min_iou, "connectivity": int(connectivity.value), "use_prob": use_prob}
    with open_store(pred, "pred") as store:
        inputs = {"pred": {"location": store.location, "params": store.record.params, "inputs": store.record.inputs}}
        with StoreWriter(target, kind="pred", params={"aligned": options}, inputs=inputs, overwrite=overwrite, resume=resume) as writer:
            for skipped in store.record.skipped:
                if skipped not in writer.record.skipped:
                    writer.skip(skipped["video"], skipped["reason"])
            videos = [video for video in store.videos if video not in writer.completed]
            if len(videos) < len(store.videos):
                console.log.info("resuming: %d of %d videos already aligned", len(store.videos) - len(videos), len(store.videos))
            with console.progress() as bar:
                task = bar.add_task("aligning", total=sum(len(store.frame_index(video)) for video in videos))
                for video in videos:
                    bar.update(task, description=f"aligning {video}")
                    align_video(store, video, writer, options, lambda n: bar.advance(task, n))
