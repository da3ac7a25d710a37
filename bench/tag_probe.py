"""What does the tag term do to the embedding? Measured on models' embeddings of held-out videos
(every cell of every 5th frame, at the network's stride, labelled by the dense ground truth at
the cell's centre), for pairs of models trained alike but for `--no-tag`:

    python bench/tag_probe.py build/results/heldout build/results/s{0,1,2}/action-full \
        build/results/s{0,1,2}/action-no-tag --out bench/results/tag_probe.json

Per model, cosine similarities of unit mean embeddings ("centroids"):

* ``background_same_tags`` / ``background_other_tags``: mean cosine between two videos' background
  centroids when their tags overlap / do not. The tag term pushes apart every pixel of frames whose
  tags do not overlap, background included; the gap between the two says how much a video's
  background embedding encodes its class.
* ``class_separation``: mean over actor-action classes of (cosine of a class's foreground cells to
  their own class centroid) minus (to the nearest other class's centroid), leave-one-video-out
  centroids (how well the embedding keeps the classes apart on unseen videos).
* ``foreground_background``: mean cosine between each video's foreground and background centroids.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vscr_cli.datasets import load_tags
from vscr_cli.datasets.a2d import A2DRelease
from vscr_cli.core.models.vscr import labels_at_cells
from vscr_cli.sources import discover
from vscr_cli.stages.predict import load_predictor, network_outputs

EVERY = 5


def video_cells(predictor, video, release: A2DRelease) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) unit embeddings and (N,) A2D label ids of every cell of every EVERY-th frame of ``video``."""
    indices = list(range(0, video.count_frames(), EVERY))
    embeddings, cell_labels = [], []
    for batch in network_outputs(video, indices, predictor.frame_height, predictor, batch_size=8):
        embedding = batch.output.embedding  # (B, D, h, w)
        maps = np.stack([release.dense_label_map(video.video_id, n) for n in batch.numbers])
        maps = torch.from_numpy(cv2.resize(maps.transpose(1, 2, 0), batch.size[::-1], interpolation=cv2.INTER_NEAREST).reshape(*batch.size, -1).transpose(2, 0, 1).copy()).long()
        cell_labels.append(labels_at_cells(maps, embedding.shape[-2:]).reshape(-1))
        embeddings.append(F.normalize(embedding, dim=1).permute(0, 2, 3, 1).reshape(-1, embedding.shape[1]))
    return torch.cat(embeddings), torch.cat(cell_labels)


def centroid(vectors: torch.Tensor) -> torch.Tensor:
    return F.normalize(vectors.mean(0), dim=0)


def probe(model: Path, gt_root: Path) -> dict[str, float]:
    predictor = load_predictor(model, "", torch.device("cpu"), None)
    tags = load_tags(str(gt_root / "tags.csv"))
    release = A2DRelease(gt_root, dense=True)
    cells = {video.video_id: video_cells(predictor, video, release) for video in discover([gt_root]) if tags.get(video.video_id)}
    background = {vid: centroid(e[l == 0]) for vid, (e, l) in cells.items() if (l == 0).any()}
    same, other = [], []
    for a, b in itertools.combinations(sorted(background), 2):
        (same if set(tags[a]) & set(tags[b]) else other).append(float(background[a] @ background[b]))
    separation = []
    classes = sorted({int(c) for _, l in cells.values() for c in l.unique() if c > 0})
    for vid, (e, l) in cells.items():
        rest = {c: [cells[v][0][cells[v][1] == c] for v in cells if v != vid] for c in classes}
        cents = {c: centroid(torch.cat(parts)) for c, parts in rest.items() if sum(len(p) for p in parts)}
        for c in l.unique().tolist():
            if c > 0 and c in cents and len(cents) > 1:
                own = e[l == c] @ cents[c]
                nearest = torch.stack([e[l == c] @ cents[o] for o in cents if o != c]).max(0).values
                separation.append(float((own - nearest).mean()))
    fg_bg = [float(centroid(e[l > 0]) @ centroid(e[l == 0])) for e, l in cells.values() if (l > 0).any() and (l == 0).any()]
    return {
        "background_same_tags": statistics.fmean(same),
        "background_other_tags": statistics.fmean(other),
        "class_separation": statistics.fmean(separation),
        "foreground_background": statistics.fmean(fg_bg),
        "videos": len(cells),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gt", type=Path, help="a vscr synth --dense folder (held-out videos)")
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    results = {}
    for model in args.models:
        results[str(model)] = probe(model, args.gt)
        print(model, json.dumps({k: round(v, 3) for k, v in results[str(model)].items()}), flush=True)
    args.out.write_text(json.dumps({"gt": str(args.gt), "every": EVERY, "models": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
