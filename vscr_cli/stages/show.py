"""Pictures of a store over its frames: label maps with a legend, edges and segments, CAM heat
maps, as a PNG contact sheet or an MP4 video (``vscr show``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vscr_cli import console, render
from vscr_cli.datasets import open_ground_truth
from vscr_cli.errors import VscrError
from vscr_cli.sources import recorded_sources
from vscr_cli.schemas import CAM, CAMS, EDGE, EDGES, LABEL, PREDICTIONS, PSEUDO, SEGMENTS
from vscr_cli.store import Store, check_output, file_output, open_store, output_record_text

#: The kinds of store shown, and their arrays of A2D ids (whose classes the legend names).
SHOWN = (EDGES.kind, CAMS.kind, PREDICTIONS.kind)
LABEL_MAPS = (LABEL, PSEUDO)
SUFFIXES = (".png", ".mp4")
#: The kind of output each suffix is (see vscr_cli.store.file_output): a contact sheet or a video.
OUTPUT_KINDS = {".png": "sheet", ".mp4": "video"}


def store_panels(store: Store, video_id: str, position: int, frame: np.ndarray) -> list[np.ndarray]:
    """The views of one stored frame, each captioned: what a person needs to judge the store."""
    if store.kind == EDGES.kind:
        return [render.titled(render.edge_view(frame, store.array(video_id, EDGE)[position], store.array(video_id, SEGMENTS)[position]), "edges + segments")]
    if store.kind == CAMS.kind:
        pseudo = store.array(video_id, PSEUDO)[position]
        return [render.titled(render.heat_overlay(frame, store.array(video_id, CAM)[position]), "CAM"), render.titled(render.label_overlay(frame, pseudo), "pseudo-label")]
    if store.kind == PREDICTIONS.kind:
        return [render.titled(render.label_overlay(frame, store.array(video_id, LABEL)[position]), "prediction")]
    raise VscrError(f"{store.location}: cannot show a {store.kind} store (edges, cam or pred)")


def run(store_path: str, output: Path, video: str | None = None, frames: int = 6, gt: Path | None = None, side_by_side: bool = False, overwrite: bool = False) -> None:
    """``vscr show``: one video of the store at ``store_path`` (default: its first) as a contact
    sheet of ``frames`` frames (``.png``) or a video of all (``.mp4``), beside ground truth ``gt``."""
    kind = OUTPUT_KINDS[output.suffix.lower()]
    check_output(output, kind, overwrite, resumable=False)
    with open_store(store_path, SHOWN) as store:
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
        decoded = dict(sources[video_id].read([index[p] for p in positions], store.record.frame_height))
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
            for name in LABEL_MAPS:
                if name in store.arrays(video_id):
                    seen.update(np.unique(store.array(video_id, name)[position]).tolist())
            rows.append(render.side_by_side(panels))
        if output.suffix.lower() == ".png":
            sheet = render.contact_sheet(rows)
            data = render.png_bytes(render.side_by_side([sheet, render.legend(seen, sheet.shape[0])]) if seen - {0, 255} else sheet, output_record_text(kind))
        else:
            data = render.mp4_bytes([render.side_by_side([row, render.legend(seen, row.shape[0])]) if seen - {0, 255} else row for row in rows], output_record_text(kind))
    file_output(output, kind, data, overwrite)
    console.log.info("wrote %s (%s, %d frames)", output, video_id, len(rows))
