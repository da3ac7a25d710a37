"""Where Stage I and the network put each davis actor (issue #36): per video, inside and outside its
ground-truth mask, the CAM evidence, the share of the actor the pseudo-labels hold, and the
network's background probability.

Reads what ``bench/davis.py`` made under ``--work`` (the ``all`` layout, ``cam-all.zarr`` and a
model trained on it) and writes ``--out`` (JSON, one row per labeled video, with the CPU).

    python bench/davis_probe.py --model build/davis/defaults/s0/model-all
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from machine import cpu_model  # bench/machine.py (this script's folder is on sys.path)
from vscr_cli import labels
from vscr_cli.schemas import CAMS, PSEUDO
from vscr_cli.sources import discover
from vscr_cli.stages.predict import load_predictor, network_outputs
from vscr_cli.store import open_store

REPO = Path(__file__).resolve().parents[1]
HEIGHT = 320


def gt_mask(root: Path, video_id: str, frame: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the DAVIS mask of ``frame`` at ``size`` (nearest)."""
    mask = cv2.imread(str(root / video_id / "masks" / f"{frame:05d}.png"), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(mask, size[::-1], interpolation=cv2.INTER_NEAREST) > 0


def probe(root: Path, cam_store: Path, model: Path) -> dict[str, dict[str, float]]:
    """Per labeled video: ``cam_in``/``cam_out`` (mean CAM evidence, 0-1), ``pseudo_actor`` (share
    of the actor's pixels the pseudo-labels give a class), ``pseudo_frame`` (share of the frame they
    do), ``network_bg_in``/``network_bg_out`` (the network's mean background probability)."""
    predictor = load_predictor(model, "", torch.device("cpu"), None)
    sources = {video.video_id: video for video in discover([str(root)])}
    rows = {}
    with open_store(str(cam_store), CAMS.kind) as cams:
        for video_id in cams.videos:
            if not cams.video_attrs(video_id).get("labeled"):
                continue
            frames = list(cams.frame_index(video_id))
            evidence, pseudo = cams.read(video_id, "cam").astype(np.float32) / 255, cams.read(video_id, PSEUDO)
            values: dict[str, list[float]] = {}
            for batch in network_outputs(sources[video_id], frames, HEIGHT, predictor, 4):
                background = torch.nn.functional.interpolate(batch.output.logits, size=batch.size, mode="bilinear").softmax(1)[:, 0].numpy()
                for row, frame in enumerate(batch.numbers):
                    t = frames.index(frame)
                    actor = gt_mask(root, video_id, frame, batch.size)
                    given = (pseudo[t] != labels.BACKGROUND) & (pseudo[t] != labels.IGNORE)
                    for name, value in (
                        ("cam_in", evidence[t][actor].mean()), ("cam_out", evidence[t][~actor].mean()),
                        ("pseudo_actor", given[actor].mean()), ("pseudo_frame", given.mean()),
                        ("network_bg_in", background[row][actor].mean()), ("network_bg_out", background[row][~actor].mean()),
                    ):
                        values.setdefault(name, []).append(float(value))
            rows[video_id] = {"tags": cams.video_attrs(video_id)["tags"], **{k: round(float(np.mean(v)), 3) for k, v in values.items()}}
            print(video_id, rows[video_id], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "build" / "davis")
    parser.add_argument("--model", type=Path, required=True, help="a model trained on the work folder's all layout")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "davis_probe.json")
    args = parser.parse_args()
    rows = probe(args.work / "all", args.work / "cam-all.zarr", args.model)
    args.out.write_text(json.dumps({"model": str(args.model), "cpu": cpu_model(), "videos": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
