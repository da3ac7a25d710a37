"""Choose the CAM threshold of `vscr cam` by measurement: pseudo-label quality against ground truth.

For each threshold, the pseudo-labels of the labeled (single-tag) videos are rebuilt from the
store's activation maps and the SLIC superpixels of the same frames, and scored on the
ground-truth frames with the A2D protocol (actor-action mIoU over background + the classes
present, and foreground IoU). With ``--scales 224 448 224,448`` the activation maps are
recomputed with the store's classifier at each set of frame heights instead (the comparison
that chose the default heights).

    vscr cam build/demo/synth --tags build/demo/synth/tags.csv -o build/demo/cam.zarr
    python bench/cam_thresholds.py build/demo/cam.zarr build/demo/synth --out bench/results/cam_thresholds_synth.json

    vscr cam ../shared/data/davis-dev --tags ../shared/data/davis-dev/tags.csv --every 5 --height 240 --none-tags unlabeled -o build/davis-cam.zarr
    python bench/cam_thresholds.py build/davis-cam.zarr ../shared/data/davis-dev --out bench/results/cam_thresholds_davis.json

    python bench/cam_thresholds.py build/demo/cam.zarr build/demo/synth --scales 224 448 224,448 224,320,448 --out bench/results/cam_scales_synth.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from vscr_cli import labels
from vscr_cli.datasets import open_ground_truth
from vscr_cli.sources import recorded_sources
from vscr_cli.stages.cam import CamExtractor, load_classifier, pseudo_label, superpixels
from vscr_cli.stages.score import ConfusionAccumulator
from vscr_cli.store import open_store

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def labeled_frames(store, truth, sources, height):
    """(video, tag, frame number, frame, stored activation, ground truth) of every GT frame of a labeled video."""
    for video_id in store.videos:
        attrs = store.video_attrs(video_id)
        if not attrs["labeled"]:
            continue
        index = store.frame_index(video_id).tolist()
        labeled = set(truth.labeled_frames(video_id))
        cams = store.array(video_id, "cam")
        for number, frame in sources[video_id].read([i for i in index if i in labeled], height):
            gt = truth.label_map(video_id, number)
            if gt.shape != frame.shape[:2]:
                gt = cv2.resize(gt, frame.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            yield attrs["tags"][0], frame, cams[index.index(number)].astype(np.float32) / 255, gt


def sweep(samples, activations, slic_segments) -> list[dict]:
    scores = {t: ConfusionAccumulator() for t in THRESHOLDS}
    for (tag, frame, _, gt), activation in zip(samples, activations):
        regions = superpixels(frame, slic_segments)
        for threshold, accumulator in scores.items():
            accumulator.add(gt, pseudo_label(activation, regions, tag, threshold))
    rows = []
    for threshold, accumulator in scores.items():
        result = accumulator.scores()
        rows.append({"threshold": threshold, "miou": result.actor_action.miou, "actor_miou": result.actor.miou, "fg_iou": result.fg_iou})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cam", help="cam store")
    parser.add_argument("gt", help="the ground truth the store's videos come from (A2D-layout or DAVIS-style folder)")
    parser.add_argument("--scales", nargs="*", default=[], help="comma-separated frame-height sets to recompute the maps at")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    truth = open_ground_truth(args.gt)
    with open_store(args.cam, "cam") as store:
        params, inputs = store.record.params, store.record.inputs
        sources = {v.video_id: v for v in recorded_sources(inputs)}
        samples = list(labeled_frames(store, truth, sources, params["selection"]["height"]))
    results = {"stored": sweep(samples, [s[2] for s in samples], params["slic_segments"])} if not args.scales else {}
    if args.scales:
        model, config = load_classifier(Path(inputs["classifier"]), torch.device("cpu"))
        for scale in args.scales:
            extractor = CamExtractor(model, config, torch.device("cpu"), tuple(int(h) for h in scale.split(",")))
            activations = [extractor(frame[None], labels.actor_of(tag) - 1)[0] for tag, frame, _, _ in samples]
            extractor.close()
            results[scale] = sweep(samples, activations, params["slic_segments"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cam": args.cam, "gt": args.gt, "frames": len(samples), "classifier_accuracy": params["classifier_accuracy"], "results": results}, indent=2))
    print(f"{len(samples)} ground-truth frames of labeled videos\n")
    print("| CAM heights | " + " | ".join(f"{t:.1f}" for t in THRESHOLDS) + " |")
    print("| --- |" + " --- |" * len(THRESHOLDS))
    for name, rows in results.items():
        print(f"| {name} | " + " | ".join(f"{100 * r['miou']:.1f} / {100 * r['fg_iou']:.1f}" for r in rows) + " |")
    print("\n(actor-action mIoU / foreground IoU, %, by CAM threshold)")


if __name__ == "__main__":
    main()
