"""Time the dense CRF of ``vscr predict --crf`` per frame at the sizes the benchmark predicts.

    python bench/bench_crf.py                     # writes bench/results/crf.json
    python bench/bench_crf.py --repeats 3 --output /tmp/crf.json
    python bench/bench_crf.py --output bench/results/crf_reduced.json   # the run beside a training (its note)

``reduced``: the same frames through ``vscr predict --crf-height H/2`` (the mean field at half the
rows, its marginals upsampled; ``core.crf.dense_crf``'s ``work``), each beside the full-size time.

Frames are davis-dev's (real colours and texture, which the bilateral kernel's cost depends on)
resized to each height, or a synthetic textured frame when davis-dev is absent; the unaries are a
blurred actor blob over background with the rest of the mass on one or two more classes, as the
decoding among background and a video's tags gives them. One process, pydensecrf's single thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
from machine import machine_info  # bench/machine.py (this script's folder is on sys.path)
from vscr_cli.core.crf import DenseCRFParams, dense_crf
from vscr_cli.video import resize_to_height, shrunk_to_height

FRAME = REPOSITORY.parent / "shared" / "data" / "davis-dev" / "dog" / "frames" / "00000.jpg"
#: (label height, classes): the synthetic demo's frames, davis-dev's prediction height, A2D's full frame.
CASES = ((120, 2), (120, 3), (240, 2), (240, 3), (320, 3))


def frame_at(height: int) -> tuple[np.ndarray, str]:
    """(H, W, 3) uint8 RGB frame at ``height`` and where it came from."""
    if FRAME.is_file():
        return resize_to_height(cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB), height), "davis-dev dog/00000.jpg"
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (height // 8, height // 6, 3), np.uint8)
    return cv2.resize(coarse, (height * 4 // 3, height), interpolation=cv2.INTER_LINEAR), "synthetic texture"


def unaries(height: int, width: int, classes: int) -> np.ndarray:
    """(classes, H, W) float32 probabilities: a soft blob of class 1 on background, a share for the others."""
    ys, xs = np.mgrid[:height, :width]
    blob = np.exp(-(((ys - height / 2) / (height / 4)) ** 2 + ((xs - width / 2) / (width / 5)) ** 2))
    prob = np.empty((classes, height, width), np.float32)
    prob[0] = 1 - blob
    prob[1:] = blob / (classes - 1) * np.linspace(1.4, 0.6, classes - 1)[:, None, None]
    return prob / prob.sum(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPOSITORY / "bench" / "results" / "crf.json")
    args = parser.parse_args()
    params = DenseCRFParams()
    rows, reduced = [], []
    for height, classes in CASES:
        image, source = frame_at(height)
        prob = unaries(*image.shape[:2], classes)
        dense_crf(image, prob, params)  # warm-up
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            dense_crf(image, prob, params)
            seconds.append(time.perf_counter() - start)
        rows.append({"height": height, "width": image.shape[1], "classes": classes, "frame": source, "median_s": statistics.median(seconds), "seconds": seconds})
        print(f"{image.shape[0]}x{image.shape[1]}, {classes} classes: {statistics.median(seconds) * 1000:.0f} ms per frame", flush=True)
        work = shrunk_to_height(image.shape[:2], height // 2)
        halved = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            dense_crf(image, prob, params, work)
            halved.append(time.perf_counter() - start)
        reduced.append({"height": height, "width": image.shape[1], "classes": classes, "crf_height": work[0], "median_s": statistics.median(halved), "full_median_s": rows[-1]["median_s"], "seconds": halved})
        print(f"  at {work[0]} rows (--crf-height {work[0]}): {statistics.median(halved) * 1000:.0f} ms per frame", flush=True)
    report = {"params": params.to_json(), "repeats": args.repeats, "machine": machine_info(), "rows": rows, "reduced": reduced}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
