"""How often does the network recognise a video's actor-action classes without tags? Measured on
finished `vscr demo` folders, on their training and test videos alike.

    python bench/video_recognition.py build/results/s0/demo build/results/s1/demo build/results/s2/demo \
        --out bench/results/video_recognition.json
    python bench/video_recognition.py build/results/s{0,1,2}/demo --model action-full \
        --out bench/results/video_recognition-action-head.json     # the models beside the demo folders

Per tagged video: the class probabilities pooled over all its frames at the network's cells, as
`vscr predict --decode video` pools them (`stages.predict.video_classes` then keeps the classes
at >= half the top one's). Counted: the top class is one of the video's tags; the top class has
the right actor; the kept classes are exactly the tags; the top class stays the same with the
motion input zeroed (how little the decision rests on motion); for a model with an action head, the
classes the two-stream decision keeps (`stages.predict.two_stream_classes`) are exactly the tags. A
network that is right on the training videos and wrong on the test videos has learnt the training
videos, not the actions.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from vscr_cli import labels
from vscr_cli.datasets import load_tags
from vscr_cli.sources import discover
from vscr_cli.stages.predict import Predictor, actor_action_pool, class_pool, load_predictor, network_outputs, two_stream_classes, video_classes
from vscr_cli.video import FrameSelection

CLASS_IDS = labels.CLASS_IDS  # class index -> A2D id (0: background)


class StillPredictor(Predictor):
    """A predictor whose network gets an all-zero motion input (no motion)."""

    def outputs(self, frames: np.ndarray, motion: np.ndarray | None, flip: bool = False):
        return super().outputs(frames, None if motion is None else np.zeros_like(motion), flip)


def pooled_probabilities(predictor: Predictor, video) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(44,) softmax summed over every frame and cell of ``video`` and, with an action head, its (7, 10)
    :func:`actor_action_pool`."""
    pooled, actor_actions = torch.zeros(labels.NUM_CLASSES), None
    indices = video.select(FrameSelection(height=predictor.frame_height))
    for batch in network_outputs(video, indices, predictor.frame_height, predictor, batch_size=8):
        pooled += class_pool(batch.output.logits)
        if batch.output.actions is not None:
            actor_actions = actor_action_pool(batch.output.logits, batch.output.actions) + (0 if actor_actions is None else actor_actions)
    return pooled, actor_actions


def top_class(pooled: torch.Tensor) -> int:
    return int(CLASS_IDS[int(pooled[1:].argmax()) + 1])


def kept_classes(allowed: torch.Tensor) -> set[int]:
    return {int(CLASS_IDS[i]) for i in allowed.nonzero().flatten().tolist() if i}


def recognition(demo: Path, model: Path, split: str) -> dict:
    """Counts over the tagged videos of one split of one demo folder by ``model``, and each video's top class."""
    predictor = load_predictor(model, "", torch.device("cpu"), torch.bfloat16)
    still = StillPredictor(**vars(predictor)) if predictor.config.motion != "none" else None
    tags = load_tags(str(demo / "synth" / "tags.csv"))
    videos = [v for v in discover([str(demo / "synth")], a2d_split=split) if tags.get(v.video_id)]
    counts = {"videos": len(videos), "top_is_a_tag": 0, "top_actor_right": 0, "kept_equal_tags": 0, "top_same_without_motion": 0, "two_stream_equal_tags": 0}
    per_video = {}
    for video in videos:
        pooled, actor_actions = pooled_probabilities(predictor, video)
        top, kept = top_class(pooled), kept_classes(video_classes(pooled))
        truth = set(tags[video.video_id])
        counts["top_is_a_tag"] += top in truth
        counts["top_actor_right"] += labels.actor_of(top) in {labels.actor_of(t) for t in truth}
        counts["kept_equal_tags"] += kept == truth
        per_video[video.video_id] = {"tags": sorted(truth), "top": top, "share": float(pooled[1:].max() / pooled[1:].sum()), "kept": sorted(kept)}
        if still is not None:
            top_still = top_class(pooled_probabilities(still, video)[0])
            counts["top_same_without_motion"] += top_still == top
            per_video[video.video_id]["top_without_motion"] = top_still
        if actor_actions is not None:
            two_stream = kept_classes(two_stream_classes(pooled, actor_actions))
            counts["two_stream_equal_tags"] += two_stream == truth
            per_video[video.video_id]["two_stream"] = sorted(two_stream)
    return counts | {"per_video": per_video}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demos", nargs="+", type=Path, help="finished vscr demo folders (one per seed)")
    parser.add_argument("--model", help="the model folder beside each demo folder (default: the demo's own model/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "video_recognition.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    models = {demo: demo.parent / args.model if args.model else demo / "model" for demo in args.demos}
    runs = {str(models[demo]): {split: recognition(demo, models[demo], split) for split in ("train", "test")} for demo in args.demos}
    recorded = {key for run in runs.values() for video in run["test"]["per_video"].values() for key in video}
    measures = ["top_is_a_tag", "top_actor_right", "kept_equal_tags"]
    measures += [measure for measure, key in (("top_same_without_motion", "top_without_motion"), ("two_stream_equal_tags", "two_stream")) if key in recorded]
    table = {}
    for split in ("train", "test"):
        for measure in measures:
            shares = [100 * run[split][measure] / run[split]["videos"] for run in runs.values()]
            table[f"{split} {measure}"] = {"mean": statistics.fmean(shares), "std": statistics.stdev(shares) if len(shares) > 1 else 0.0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "mean_std_percent": table}, indent=2) + "\n")
    print("| split | measure | % of tagged videos (mean ± std) |\n|---|---|---|")
    for name, value in table.items():
        split, measure = name.split(" ")
        print(f"| {split} | {measure.replace('_', ' ')} | {value['mean']:.0f} ± {value['std']:.0f} |")


if __name__ == "__main__":
    main()
