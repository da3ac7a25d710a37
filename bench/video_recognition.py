"""How often does the network recognise a video's actor-action classes without tags? Measured on
finished `vscr demo` folders, on their training and test videos alike.

    python bench/video_recognition.py build/results/s0/demo build/results/s1/demo build/results/s2/demo \
        --out bench/results/video_recognition.json

Per tagged video: the class probabilities pooled over all its frames at the network's cells, as
`vscr predict --decode video` pools them (`stages.predict.video_classes` then keeps the classes
at >= half the top one's). Counted: the top class is one of the video's tags; the top class has
the right actor; the kept classes are exactly the tags. A network that is right on the training
videos and wrong on the test videos has learnt the training videos, not the actions.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from vscr_cli import labels
from vscr_cli.datasets import load_tags
from vscr_cli.sources import discover
from vscr_cli.stages.predict import class_pool, load_predictor, network_outputs, video_classes
from vscr_cli.video import FrameSelection

CLASS_IDS = labels.CLASS_IDS  # class index -> A2D id (0: background)


def pooled_probabilities(predictor, video) -> torch.Tensor:
    """(44,) softmax summed over every frame and cell of ``video``."""
    pooled = torch.zeros(labels.NUM_CLASSES)
    indices = video.select(FrameSelection(height=predictor.frame_height))
    for batch in network_outputs(video, indices, predictor.frame_height, predictor, batch_size=8):
        pooled += class_pool(batch.output.logits)
    return pooled


def recognition(demo: Path, split: str) -> dict:
    """Counts over the tagged videos of one split of one demo folder, and each video's top class."""
    predictor = load_predictor(demo / "model", "", torch.device("cpu"), torch.bfloat16)
    tags = load_tags(str(demo / "synth" / "tags.csv"))
    videos = [v for v in discover([str(demo / "synth")], a2d_split=split) if tags.get(v.video_id)]
    counts = {"videos": len(videos), "top_is_a_tag": 0, "top_actor_right": 0, "kept_equal_tags": 0}
    per_video = {}
    for video in videos:
        pooled = pooled_probabilities(predictor, video)
        top = int(CLASS_IDS[int(pooled[1:].argmax()) + 1])
        kept = {int(CLASS_IDS[i]) for i in video_classes(pooled).nonzero().flatten().tolist() if i}
        truth = set(tags[video.video_id])
        counts["top_is_a_tag"] += top in truth
        counts["top_actor_right"] += labels.actor_of(top) in {labels.actor_of(t) for t in truth}
        counts["kept_equal_tags"] += kept == truth
        per_video[video.video_id] = {"tags": sorted(truth), "top": top, "share": float(pooled[1:].max() / pooled[1:].sum()), "kept": sorted(kept)}
    return counts | {"per_video": per_video}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demos", nargs="+", type=Path, help="finished vscr demo folders (one per seed)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "video_recognition.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    runs = {str(demo): {split: recognition(demo, split) for split in ("train", "test")} for demo in args.demos}
    table = {}
    for split in ("train", "test"):
        for measure in ("top_is_a_tag", "top_actor_right", "kept_equal_tags"):
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
