"""Choose the CAM threshold of `vscr cam` by measurement: pseudo-label quality against ground truth.

For each threshold, the pseudo-labels of the labeled (single-tag) videos are rebuilt from the
store's activation maps and the SLIC superpixels of the same frames, and scored on the
ground-truth frames with the A2D protocol (actor-action mIoU over background + the classes
present, and foreground IoU).

    vscr cam build/demo/synth --tags build/demo/synth/tags.csv -o build/demo/cam.zarr
    python bench/cam_thresholds.py build/demo/cam.zarr build/demo/synth --out bench/results/cam_thresholds_synth.json

    vscr cam ../shared/data/davis-dev --tags ../shared/data/davis-dev/tags.csv --every 5 --height 240 -o build/davis-cam.zarr
    python bench/cam_thresholds.py build/davis-cam.zarr ../shared/data/davis-dev --out bench/results/cam_thresholds_davis.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from vscr_cli.datasets import open_ground_truth
from vscr_cli.sources import discover
from vscr_cli.stages.cam import pseudo_label, superpixels
from vscr_cli.stages.score import ConfusionAccumulator
from vscr_cli.store import open_store

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cam", help="cam store")
    parser.add_argument("gt", help="the ground truth the store's videos come from (A2D-layout or DAVIS-style folder)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    truth = open_ground_truth(args.gt)
    scores = {t: ConfusionAccumulator() for t in THRESHOLDS}
    with open_store(args.cam, "cam") as store:
        params = store.record.params
        sources = {v.video_id: v for v in discover(store.record.inputs["sources"], a2d_split=store.record.inputs.get("split", "all"))}
        frames_scored = 0
        for video_id in store.videos:
            attrs = store.video_attrs(video_id)
            if not attrs["labeled"]:
                continue
            [tag] = attrs["tags"]
            index = store.frame_index(video_id).tolist()
            labeled = set(truth.labeled_frames(video_id))
            wanted = [i for i in index if i in labeled]
            if not wanted:
                continue
            cams = store.array(video_id, "cam")
            for number, frame in sources[video_id].read(wanted, params["height"]):
                activation = cams[index.index(number)].astype(np.float32) / 255
                regions = superpixels(frame, params["slic_segments"])
                gt = truth.label_map(video_id, number)
                if gt.shape != activation.shape:
                    gt = cv2.resize(gt, activation.shape[::-1], interpolation=cv2.INTER_NEAREST)
                for threshold, accumulator in scores.items():
                    accumulator.add(gt, pseudo_label(activation, regions, tag, threshold), video=video_id)
                frames_scored += 1
    rows = []
    for threshold, accumulator in scores.items():
        result = accumulator.scores()
        rows.append({"threshold": threshold, "miou": result.actor_action.miou, "actor_miou": result.actor.miou, "fg_iou": result.fg_iou})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cam": args.cam, "gt": args.gt, "frames": frames_scored, "classifier_accuracy": params["classifier_accuracy"], "rows": rows}, indent=2))
    print(f"{frames_scored} ground-truth frames of labeled videos\n")
    print("| CAM threshold | actor-action mIoU (%) | actor mIoU (%) | foreground IoU (%) |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['threshold']:.1f} | {100 * row['miou']:.1f} | {100 * row['actor_miou']:.1f} | {100 * row['fg_iou']:.1f} |")


if __name__ == "__main__":
    main()
