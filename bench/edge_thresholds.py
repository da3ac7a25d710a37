"""Choose the UCM cut threshold of `vscr edges` by measurement on DAVIS-style ground truth.

For each threshold: the achievable segmentation accuracy (the best IoU with the object mask
reachable by giving whole regions to foreground or background, i.e. the upper bound a
region-level labelling can reach) and the number of regions per frame.

    vscr edges ../shared/data/davis-dev --every 5 --height 240 -o build/davis-edges.zarr
    python bench/edge_thresholds.py build/davis-edges.zarr ../shared/data/davis-dev

Writes bench/results/edge_thresholds.json and prints a Markdown table. Sequences without an
actor (all-background masks) are left out: any segmentation reaches 100% there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from vscr_cli.datasets import open_ground_truth
from vscr_cli.stages.edges import cut_segments, ultrametric_contour_map
from vscr_cli.store import open_store

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def achievable_iou(segments: np.ndarray, mask: np.ndarray) -> float:
    """Best IoU with ``mask`` of a union of whole regions (exact: the optimum is a prefix of
    regions sorted by their foreground fraction)."""
    count = segments.max() + 1
    inside = np.bincount(segments.ravel(), weights=mask.ravel(), minlength=count)
    size = np.bincount(segments.ravel(), minlength=count)
    order = np.argsort(-inside / np.maximum(size, 1))
    intersection = np.cumsum(inside[order])
    union = mask.sum() + np.cumsum(size[order] - inside[order])
    return float((intersection / union).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("edges", help="edges store made from the ground truth's frames")
    parser.add_argument("gt", help="DAVIS-style folder (frames, masks, tags.csv)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "edge_thresholds.json"))
    args = parser.parse_args()
    truth = open_ground_truth(args.gt)
    ious = {t: [] for t in THRESHOLDS}
    regions = {t: [] for t in THRESHOLDS}
    with open_store(args.edges, "edges") as store:
        for video in store.videos:
            edges = store.read(video, "edge")
            for frame, edge in zip(store.frame_index(video), edges):
                mask = truth.label_map(video, int(frame)) > 0
                if not mask.any():
                    continue
                mask = cv2.resize(mask.astype(np.uint8), edge.shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
                tree, altitudes = ultrametric_contour_map(edge)
                for threshold in THRESHOLDS:
                    segments = cut_segments(tree, altitudes, threshold, edge.shape)
                    ious[threshold].append(achievable_iou(segments, mask))
                    regions[threshold].append(int(segments.max()) + 1)
        params = store.record.params
    rows = [
        {
            "threshold": t,
            "achievable_iou": float(np.mean(ious[t])),
            "regions_mean": float(np.mean(regions[t])),
            "regions_median": float(np.median(regions[t])),
        }
        for t in THRESHOLDS
    ]
    report = {"edges": args.edges, "edges_params": params, "frames": len(ious[THRESHOLDS[0]]), "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"{report['frames']} frames with an object\n")
    print("| UCM threshold | achievable IoU (%) | regions / frame (mean) | (median) |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['threshold']:.2f} | {100 * row['achievable_iou']:.1f} | {row['regions_mean']:.0f} | {row['regions_median']:.0f} |")


if __name__ == "__main__":
    main()
