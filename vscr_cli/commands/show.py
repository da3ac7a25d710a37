"""Render a store over its frames: label maps with a legend, edges and segments, CAM heat maps (PNG sheet, MP4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import cv2
import numpy as np
import typer

from vscr_cli import console, render
from vscr_cli.datasets import open_ground_truth
from vscr_cli.errors import VscrError
from vscr_cli.sources import recorded_sources
from vscr_cli.store import Store, check_parent, open_store

NAME = "show"


def store_panels(store: Store, video_id: str, position: int, frame: np.ndarray) -> list[np.ndarray]:
    """The views of one stored frame, each captioned: what a person needs to judge the store."""
    if store.kind == "edges":
        return [render.titled(render.edge_view(frame, store.array(video_id, "edge")[position], store.array(video_id, "segments")[position]), "edges + segments")]
    if store.kind == "cam":
        pseudo = store.array(video_id, "pseudo")[position]
        return [render.titled(render.heat_overlay(frame, store.array(video_id, "cam")[position]), "CAM"), render.titled(render.label_overlay(frame, pseudo), "pseudo-label")]
    if store.kind == "pred":
        return [render.titled(render.label_overlay(frame, store.array(video_id, "label")[position]), "prediction")]
    raise VscrError(f"{store.location}: cannot show a {store.kind} store (edges, cam or pred)")


def command(
    store_path: Annotated[str, typer.Argument(metavar="STORE", help="An edges, cam or pred store (or '-' for a zip on stdin).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output: a .png contact sheet or a .mp4 video (one video per call).")],
    video: Annotated[Optional[str], typer.Option(help="The video to show (default: the store's first).")] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames in a contact sheet, evenly spread (over the annotated ones with --gt).")] = 6,
    gt: Annotated[Optional[Path], typer.Option("--gt", help="Ground truth (A2D root or DAVIS-style folder) to show beside it.")] = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Put the frame itself (and --gt) next to the store's views.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
) -> None:
    if output.suffix.lower() not in (".png", ".mp4"):
        raise typer.BadParameter("the output must end in .png or .mp4", param_hint="-o")
    check_parent(output)
    if output.is_dir() or (output.exists() and not output.is_file()):
        raise VscrError(f"{output}: is a folder (or not a file): refusing to replace it")
    if output.exists() and not overwrite:
        raise VscrError(f"{output}: output exists (pass --overwrite to replace it)")
    with open_store(store_path, ("edges", "cam", "pred")) as store:
        video_id = video or (store.videos[0] if store.videos else None)
        if video_id is None:
            raise VscrError(f"{store.location}: the store holds no video")
        index = store.frame_index(video_id).tolist()
        truth = open_ground_truth(gt) if gt else None
        annotated = set(truth.labeled_frames(video_id)) if truth is not None else set()
        positions = list(range(len(index)))
        if output.suffix.lower() == ".png":  # a sheet shows the annotated frames when there are some
            positions = [p for p in positions if index[p] in annotated] or positions
            if len(positions) > frames:
                positions = [positions[int(round(i))] for i in np.linspace(0, len(positions) - 1, frames)]
        sources = {v.video_id: v for v in recorded_sources(store.record.inputs)}
        if video_id not in sources:
            raise VscrError(f"{store.location}: cannot find the frames of video {video_id!r} among the store's sources")
        height = store.record.params.get("selection", {}).get("height")
        decoded = dict(sources[video_id].read([index[p] for p in positions], height))
        rows, seen = [], set()
        for position in positions:
            frame = decoded[index[position]]
            panels = store_panels(store, video_id, position, frame)
            if truth is not None and index[position] in annotated:
                label_map = cv2.resize(truth.label_map(video_id, index[position]), frame.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                seen.update(np.unique(label_map).tolist())
                panels.insert(0, render.titled(render.label_overlay(frame, label_map), "ground truth"))
            elif truth is not None:  # keep the layout of every row alike
                panels.insert(0, render.titled(frame, "not annotated"))
            if side_by_side:
                panels.insert(0, render.titled(frame, f"{video_id} frame {index[position]}"))
            for kind in ("label", "pseudo"):
                if kind in store.arrays(video_id):
                    seen.update(np.unique(store.array(video_id, kind)[position]).tolist())
            rows.append(render.side_by_side(panels))
        if output.suffix.lower() == ".png":
            sheet = render.contact_sheet(rows)
            render.write_png(output, render.side_by_side([sheet, render.legend(seen, sheet.shape[0])]) if seen - {0, 255} else sheet)
        else:
            render.write_mp4(output, [render.side_by_side([row, render.legend(seen, row.shape[0])]) if seen - {0, 255} else row for row in rows])
    console.log.info("wrote %s (%s, %d frames)", output, video_id, len(rows))
