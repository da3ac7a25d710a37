"""Measure each pseudo-label refinement of `vscr cam` on and off against ground truth, with its cost.

    python bench/cam_refine.py ../shared/data/davis-dev --every 4 --height 240 \\
        --classifier build/refine/davis.classifier --out bench/results/cam_refine_davis.json
    vscr synth build/demo/synth --dense
    python bench/cam_refine.py build/demo/synth --every 8 --fit-every 1 --dense --cam-variants base pad flip \\
        --classifier build/refine/synth.classifier --out bench/results/cam_refine_synth.json

The classifier is fitted as `vscr cam --none-tags unlabeled` fits it (default `ClassifierConfig`, the same frame
selection) unless ``--classifier`` already holds one. For every labeled (single-tag) video
the chosen frames are read once; then, with the stage's own functions:

* activation maps for each CAM variant (``base``: the heights alone; ``pad``: reflect
  padding of each input; ``flip``: mirrored maps averaged in; ``pad+flip``),
  cached in ``--cache``;
* camera-compensated motion (`residual_flow`) to the frame ``gap`` later, for each gap;
* SLIC superpixels;

and every combination of CAM variant, motion weight/gap and threshold (fixed, or per-video
Otsu with ``otsu``) gives pseudo-labels scored on the ground-truth frames with the A2D
protocol (actor-action mIoU over background + the classes present; foreground IoU). Costs
are CPU seconds per frame of this process (run it with one thread: ``--threads 1``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from vscr_cli import labels, weights
from vscr_cli.core.motion_evidence import normalise_motion, residual_flow
from vscr_cli.datasets import load_tags, open_ground_truth
from vscr_cli.sources import discover
from vscr_cli.video import FrameSelection
from vscr_cli.settings.cam import CamParams, ClassifierConfig
from vscr_cli.stages.cam import (
    CLASSIFIER_WEIGHTS,
    CamExtractor,
    cam_tag,
    evidence,
    fit_classifier,
    fitting_frames,
    load_classifier,
    motion_partners,
    pseudo_labels,
    save_classifier,
    superpixels,
)
from vscr_cli.stages.score import ConfusionAccumulator

CAM_VARIANTS = {"base": (0.0, False), "pad": (0.125, False), "flip": (0.0, True), "pad+flip": (0.125, True)}
MOTION = [(0.0, 1), (0.3, 1), (0.4, 1), (0.5, 1), (0.4, 3)]
THRESHOLDS: list[float | None] = [0.4, 0.5, 0.6, None]


def ablation(rows: list[dict], variants: list[str]) -> list[tuple[str, dict]]:
    """(setting, row) for the defaults and each refinement switched from its default."""
    default = CamParams()
    cam = "pad+flip" if default.cam_pad and default.cam_flip else "pad" if default.cam_pad else "flip" if default.cam_flip else "base"
    key = {"cam": cam, "motion_weight": default.motion_weight, "motion_gap": default.motion_gap, "threshold": default.threshold}
    settings = [("defaults", {}), ("motion off (paper)", {"motion_weight": 0.0}), ("motion weight 0.3", {"motion_weight": 0.3}),
                ("motion weight 0.5", {"motion_weight": 0.5}), ("motion gap 3", {"motion_gap": 3}),
                ("threshold 0.4", {"threshold": 0.4}), ("threshold 0.6", {"threshold": 0.6}), ("per-video Otsu threshold", {"threshold": None})]
    settings += [(f"CAM {name}", {"cam": name}) for name in variants if name != cam]
    settings += [(f"motion off, CAM {name}", {"cam": name, "motion_weight": 0.0}) for name in variants if name != cam]
    settings += [("motion off, per-video Otsu threshold", {"motion_weight": 0.0, "threshold": None})]
    table = []
    for name, change in settings:
        wanted = {**key, **change}
        if wanted["motion_weight"] == 0:
            wanted["motion_gap"] = 1
        found = [r for r in rows if all(r[k] == v for k, v in wanted.items())]
        if found:
            table.append((name, found[0]))
    return table


def classifier(args, videos, tags, selection) -> tuple[torch.nn.Module, ClassifierConfig]:
    """The classifier in --classifier, fitted there first when it holds none."""
    folder = Path(args.classifier)
    if not (folder / CLASSIFIER_WEIGHTS).is_file():
        config = ClassifierConfig()
        train, holdout = fitting_frames(videos, tags, selection, config, "unlabeled")
        model = fit_classifier(train, holdout, config, weights.load_state_dict("efficientnet-lite0-imagenet"), torch.device("cpu"), None)
        save_classifier(folder, model, config)
    return load_classifier(folder, torch.device("cpu"))


def cpu_seconds(function, *args):
    start = time.process_time()
    result = function(*args)
    return result, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="A2D-layout root or DAVIS-style folder with tags.csv")
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--fit-every", type=int, help="frame step of the classifier's fitting frames (default: --every)")
    parser.add_argument("--dense", action="store_true", help="score every frame (vscr synth's dense maps)")
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--cache", default="build/refine")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cam-variants", nargs="+", choices=list(CAM_VARIANTS), default=list(CAM_VARIANTS))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    data = Path(args.data)
    selection = FrameSelection(every=args.every, height=args.height)
    videos = discover([data])
    tags = load_tags(data / "tags.csv")
    model, config = classifier(args, videos, tags, FrameSelection(every=args.fit_every or args.every, height=args.height))
    truth = open_ground_truth(data, dense=args.dense)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    costs: dict[str, float] = {}
    clips = []  # (video id, tag, frames, regions, {variant: maps}, {gap: motion}, gt positions, gt maps)
    extractors = {name: CamExtractor(model, config, torch.device("cpu"), pad=pad, flip=flip) for name, (pad, flip) in CAM_VARIANTS.items() if name in args.cam_variants}
    for video in videos:
        tag = cam_tag(tags[video.video_id], "unlabeled")
        if tag is None:
            continue
        indices = video.select(selection)
        total = video.count_frames()
        partners = {gap: motion_partners(indices, total, gap) for _, gap in MOTION[1:]}
        read = dict(video.read(sorted(set(indices).union(*partners.values())), args.height))
        frames = np.stack([read[i] for i in indices])
        labeled = set(truth.labeled_frames(video.video_id))
        positions = [k for k, i in enumerate(indices) if i in labeled]
        gts = []
        for k in positions:
            gt = truth.label_map(video.video_id, indices[k])
            gts.append(cv2.resize(gt, frames.shape[2:0:-1], interpolation=cv2.INTER_NEAREST) if gt.shape != frames.shape[1:3] else gt)
        maps = {}
        for name, extractor in extractors.items():
            path = cache / f"{data.name}-{video.video_id}-{args.every}-{args.height}-{name}.npy"
            if path.is_file():
                maps[name] = np.load(path)
                continue
            maps[name], seconds = cpu_seconds(lambda e=extractor: np.concatenate([e(f[None], labels.actor_of(tag) - 1) for f in frames]))
            costs[f"cam {name}"] = costs.get(f"cam {name}", 0.0) + seconds
            np.save(path, maps[name])
        motion = {}
        for gap, chosen in partners.items():
            raw, seconds = cpu_seconds(lambda c=chosen: np.stack([residual_flow(read[i], read[j]) for i, j in zip(indices, c)]))
            motion[gap] = normalise_motion(raw)
            costs[f"motion gap {gap}"] = costs.get(f"motion gap {gap}", 0.0) + seconds
        regions, seconds = cpu_seconds(lambda: np.stack([superpixels(f, 150) for f in frames]))
        costs["slic"] = costs.get("slic", 0.0) + seconds
        clips.append((video.video_id, tag, frames, regions, maps, motion, positions, gts))
    for extractor in extractors.values():
        extractor.close()
    frame_count = sum(len(c[2]) for c in clips)
    rows = []
    for name, (weight, gap), threshold in itertools.product(args.cam_variants, MOTION, THRESHOLDS):
        accumulator = ConfusionAccumulator()
        for video_id, tag, _, regions, maps, motion, positions, gts in clips:
            pseudo = pseudo_labels(evidence(maps[name], motion.get(gap), weight), regions, tag, threshold)
            for k, gt in zip(positions, gts):
                accumulator.add(gt, pseudo[k], video_id)
        result = accumulator.scores()
        rows.append({"cam": name, "motion_weight": weight, "motion_gap": gap, "threshold": threshold, "miou": result.actor_action.miou, "fg_iou": result.fg_iou})
    timing = {name: seconds / frame_count for name, seconds in costs.items()}
    report = {"data": str(data), "every": args.every, "height": args.height, "frames": frame_count,
              "gt_frames": sum(len(c[6]) for c in clips), "videos": [c[0] for c in clips],
              "classifier_accuracy": config.accuracy, "cpu_seconds_per_frame": timing, "results": rows,
              "ablation": [{"setting": name, **row} for name, row in ablation(rows, args.cam_variants)]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"{frame_count} frames of {len(clips)} labeled videos, {report['gt_frames']} scored; CPU s/frame: " + ", ".join(f"{k} {v:.3f}" for k, v in timing.items()))
    print("| CAM | motion (weight, gap) | " + " | ".join("otsu" if t is None else f"{t:.1f}" for t in THRESHOLDS) + " |")
    print("| --- | --- |" + " --- |" * len(THRESHOLDS))
    for name, (weight, gap) in itertools.product(args.cam_variants, MOTION):
        cells = [r for r in rows if r["cam"] == name and r["motion_weight"] == weight and r["motion_gap"] == gap]
        print(f"| {name} | {weight}, {gap} | " + " | ".join(f"{100 * r['miou']:.1f} / {100 * r['fg_iou']:.1f}" for r in cells) + " |")
    print("\n| setting | actor-action mIoU | foreground IoU |\n| --- | --- | --- |")
    for row in report["ablation"]:
        print(f"| {row['setting']} | {100 * row['miou']:.1f} | {100 * row['fg_iou']:.1f} |")


if __name__ == "__main__":
    main()
