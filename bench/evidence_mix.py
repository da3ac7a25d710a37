"""How Stage I's evidence mixes the class map with motion (issue #36, docs/decisions/0022): the
pseudo-labels of every labeled davis video under each motion weight, scored by foreground IoU
against the ground truth, with the activation maps `vscr cam` stored (no classifier is rerun).

Reads ``--work`` as bench/davis.py leaves it (the ``all`` layout of davis-dev + davis-more and
``cam-all.zarr``, every 5th frame at 320 px); writes ``--out`` (JSON: per weight, per video
and the means over davis-dev, davis-more and all, with the CPU).

    python bench/evidence_mix.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from davis_probe import gt_mask  # bench/davis_probe.py (this script's folder is on sys.path)
from machine import cpu_model
from vscr_cli import labels
from vscr_cli.core.motion_evidence import normalise_motion, residual_flow
from vscr_cli.schemas import CAM, CAMS
from vscr_cli.sources import discover
from vscr_cli.stages.cam import evidence, motion_partners, pseudo_labels, superpixels
from vscr_cli.settings.cam import CamParams
from vscr_cli.store import open_store

REPO = Path(__file__).resolve().parents[1]
SETS = {"dev": REPO.parent / "shared" / "data" / "davis-dev", "more": REPO.parent / "shared" / "data" / "davis-more"}
#: The motion weights compared (None: per frame from the cues' spread, ``--motion-evidence auto``).
WEIGHTS: list[float | None] = [0.0, 0.3, 0.4, 0.5, 0.6, None]
HEIGHT = 320


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "build" / "davis")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "evidence_mix.json")
    args = parser.parse_args()
    root, params = args.work / "all", CamParams()
    sources = {video.video_id: video for video in discover([str(root)])}
    members = {name: {p.name for p in folder.iterdir() if p.is_dir()} for name, folder in SETS.items()}
    scores: dict[str, dict[str, float]] = {str(w): {} for w in WEIGHTS}
    with open_store(str(args.work / "cam-all.zarr"), CAMS.kind) as cams:
        for video_id in cams.videos:
            attrs = cams.video_attrs(video_id)
            if not attrs.get("labeled"):
                continue
            tag, frames = attrs["tags"][0], list(cams.frame_index(video_id))
            activations = cams.read(video_id, CAM).astype(np.float32) / 255
            partners = motion_partners(frames, sources[video_id].count_frames(), params.motion_gap)
            read = dict(sources[video_id].read(sorted(set(frames) | set(partners)), HEIGHT))
            motion = normalise_motion(np.stack([residual_flow(read[i], read[j]) for i, j in zip(frames, partners)]))
            regions = np.stack([superpixels(read[i], params.slic_segments) for i in frames])
            truth = np.stack([gt_mask(root, video_id, frame, activations.shape[1:]) for frame in frames])
            for weight in WEIGHTS:
                given = pseudo_labels(evidence(activations, motion, weight), regions, tag, params.threshold) != labels.BACKGROUND
                scores[str(weight)][video_id] = round(float((given & truth).sum() / (given | truth).sum()), 4)
            print(video_id, {w: v[video_id] for w, v in scores.items()}, flush=True)
    summary = {
        weight: {name: round(float(np.mean([v for k, v in rows.items() if k in videos])), 4) for name, videos in (*members.items(), ("all", set(rows)))}
        for weight, rows in scores.items()
    }
    args.out.write_text(json.dumps({"fg_iou": scores, "mean_fg_iou": summary, "threshold": params.threshold, "cpu": cpu_model()}, indent=1) + "\n")
    for weight, row in summary.items():
        print(f"motion weight {weight}: " + ", ".join(f"{name} {value:.3f}" for name, value in row.items()))


if __name__ == "__main__":
    main()
