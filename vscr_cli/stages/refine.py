"""Refinement stage: SPML's refine-and-retrain on a trained VSCR model (issue 15).

The network trained under the contrastive objective learns its softmax head from raw CAM
pseudo-labels on 96-px training crops. SPML's tag-supervised pipeline reads classes out better:

1. the trained embedding of every training frame is computed as prediction sees it (whole
   frame, eval mode, the motion clip around it);
2. a *prototype bank*: each pseudo-labelled frame's embedding is clustered (spherical k-means,
   :mod:`vscr_cli.core.readout`) and every segment, split by pseudo-label, gives one labelled
   prototype;
3. every training frame, pseudo-labelled or not (D_u), is relabelled by k-NN votes of the bank
   restricted to background and its video's tags (``tag_votes="class"``, SPML's); with
   ``tag_votes="actor"`` the prototypes of every class of a tagged actor vote too, for that actor's
   tag, so a video whose tag no pseudo-label carries (``adult-none``: a D_u video by the paper's
   rule) is relabelled from the same actor in other videos;
4. the softmax head is retrained from scratch on the frozen embeddings with those labels;
5. the bank is rebuilt from the refined labels of all frames and saved with the model, for
   ``vscr predict --readout knn``. Steps 2-3 repeat ``rounds`` times (SPML runs the loop twice).

The result is a new model folder: the same network with the retrained head, its prototype bank
and a record of what was done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vscr_cli import console, labels
from vscr_cli.checkpoints import read_json, save_bank
from vscr_cli.core.models.vscr import labels_at_cells
from vscr_cli.core.readout import PrototypeBank, knn_votes, label_prototypes
from vscr_cli.model_folders import model_sha256, save_model
from vscr_cli.settings.model import DEFAULT_MODEL, MODEL_CONFIG, MODEL_KIND
from vscr_cli.settings.refine import RefineParams
from vscr_cli.settings.run import Runtime
from vscr_cli.stages.board import REFINE_SERIES, TrainingBoard
from vscr_cli.stages.predict import Predictor, load_predictor, network_outputs, tag_votes
from vscr_cli.store import check_output, folder_output
from vscr_cli.stages.training_data import TrainingData, open_training_inputs

#: Record entries that describe the network itself; the trained model's other entries (its training
#: options, inputs, frame height) are carried over.
OWN_RECORD = ("format", "label_space", "preprocessing")


@dataclass
class FrameEmbeddings:
    """One training video as the network sees it: ``embedding`` (T, D, h, w) unit float32,
    ``pseudo`` (T, h, w) int64 class indices at the cells' centres (-1 = none: unlabelled frame
    or no CAM), ``votes_for`` (44,) int64 the class each prototype class votes for in this video
    (-1: none; :func:`tag_votes`)."""

    video_id: str
    embedding: torch.Tensor
    pseudo: torch.Tensor
    votes_for: torch.Tensor


def embed_training_frames(data: TrainingData, predictor: Predictor, batch_size: int, votes: str, on_video: Callable[[], None] | None = None) -> list[FrameEmbeddings]:
    """The embedding of every frame of the training stores, with its pseudo-label at the embedding's
    cells and its tags' ``votes`` (:func:`tag_votes`)."""
    videos = []
    for video in data.videos:
        chunks = [batch.output.embedding.cpu() for batch in network_outputs(data.sources[video.video_id], [int(f) for f in video.frame_index], data.height, predictor, batch_size)]
        embedding = torch.cat(chunks)
        pseudo = labels.CLASS_INDEX[data.pseudo(video.video_id)].astype(np.int64)
        pseudo[pseudo == labels.IGNORE] = -1
        pseudo[~video.labeled] = -1
        videos.append(FrameEmbeddings(video.video_id, embedding, labels_at_cells(torch.from_numpy(pseudo), embedding.shape[-2:]), tag_votes(video.tags, votes)))
        if on_video is not None:
            on_video()
    return videos


def refined_labels(videos: list[FrameEmbeddings], bank: PrototypeBank, neighbours: int) -> list[torch.Tensor]:
    """(T, h, w) class indices per video: k-NN votes of ``bank`` as the video's tags allow (``votes_for``)."""
    return [knn_votes(v.embedding, bank, labels.NUM_CLASSES, neighbours, v.votes_for).argmax(1) for v in videos]


def bank_of(videos: list[FrameEmbeddings], frame_labels: list[torch.Tensor]) -> PrototypeBank:
    """Labelled prototypes of every frame with labels (-1 = none), video by video."""
    banks = [label_prototypes(v.embedding, lab) for v, lab in zip(videos, frame_labels) if (lab >= 0).any()]
    return PrototypeBank.cat(banks)


def retrain_head(head: nn.Module, videos: list[FrameEmbeddings], frame_labels: list[torch.Tensor], params: RefineParams) -> list[float]:
    """Reinitialise ``head`` (1x1 convolutions over the embedding) and train it with cross-entropy
    on every labelled pixel's frozen embedding; returns the mean loss of each epoch."""
    rows = torch.cat([v.embedding.permute(0, 2, 3, 1).reshape(-1, v.embedding.shape[1]) for v in videos])
    targets = torch.cat([lab.reshape(-1) for lab in frame_labels])
    keep = targets >= 0
    rows, targets = rows[keep], targets[keep]
    generator = torch.Generator().manual_seed(params.seed)
    torch.manual_seed(params.seed)
    for layer in head.modules():
        if isinstance(layer, nn.Conv2d):
            layer.reset_parameters()
    device = next(head.parameters()).device
    optimizer = torch.optim.Adam(head.parameters(), lr=params.learning_rate)
    head.train()
    losses = []
    for _ in range(params.epochs):
        order = torch.randperm(len(targets), generator=generator)
        total = 0.0
        for start in range(0, len(order), params.batch_pixels):
            batch = order[start : start + params.batch_pixels]
            logits = head(rows[batch, :, None, None].to(device))[:, :, 0, 0]
            loss = F.cross_entropy(logits, targets[batch].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / max(len(order), 1))
    head.eval()
    return losses


def refine(videos: list[FrameEmbeddings], predictor: Predictor, params: RefineParams) -> tuple[PrototypeBank, dict]:
    """Refine-and-retrain (module docstring) in place on ``predictor.model``'s head; returns the
    final bank and a summary for the model's record."""
    frame_labels = [v.pseudo for v in videos]
    pseudo = torch.cat([v.pseudo.reshape(-1) for v in videos])
    known = pseudo >= 0
    changed = []
    for _ in range(params.rounds):
        bank = bank_of(videos, frame_labels)
        frame_labels = refined_labels(videos, bank, params.neighbours)
        refined = torch.cat([lab.reshape(-1) for lab in frame_labels])
        changed.append(float((refined[known] != pseudo[known]).float().mean()) if known.any() else 0.0)
    losses = retrain_head(predictor.model.classifier, videos, frame_labels, params)
    bank = bank_of(videos, frame_labels)
    summary = {
        "params": asdict(params),
        "frames": sum(len(v.embedding) for v in videos),
        "prototypes": len(bank),
        "pseudo_label_changed_share": changed,
        "head_loss": {"first_epoch": losses[0] if losses else None, "last_epoch": losses[-1] if losses else None},
        "head_loss_per_epoch": losses,
    }
    return bank, summary


def run(
    edges: str,
    cam: str,
    output: Path,
    runtime: Runtime,
    model: Path = DEFAULT_MODEL,
    sources: Sequence[str] | None = None,
    tags: str | None = None,
    params: RefineParams = RefineParams(),
    batch_size: int = 4,
    tensorboard: bool = True,
) -> Path:
    """``vscr refine``: the model in ``model`` refined on the stores it was trained on, written as a
    new model folder ``output`` (store.folder_output: built beside it, then moved into place), with
    its retraining's curves as TensorBoard events in ``tensorboard/`` (``tensorboard``); returns the folder."""
    device, dtype, overwrite = runtime.device, runtime.dtype, runtime.options.overwrite
    output = check_output(output, MODEL_KIND, overwrite, resumable=False)
    sha256 = model_sha256(model)
    predictor = load_predictor(model, sha256, device, dtype)
    record = read_json(model / MODEL_CONFIG)
    with open_training_inputs(edges, cam, sources, tags) as data:
        with console.progress() as bar:
            task = bar.add_task("embedding the training frames", total=len(data.videos))
            videos = embed_training_frames(data, predictor, batch_size, params.tag_votes, lambda: bar.advance(task))
    bank, summary = refine(videos, predictor, params)
    console.log.info("%d prototypes from %d frames; pseudo-labels changed by the votes: %s", summary["prototypes"], summary["frames"], ", ".join(f"{share:.1%}" for share in summary["pseudo_label_changed_share"]))
    carried = {key: value for key, value in record.items() if key not in OWN_RECORD}
    with folder_output(output, MODEL_KIND, overwrite) as staging:
        save_model(staging, predictor.model, predictor.config, {**carried, "refine": {**summary, "model": str(model), "model_sha256": sha256}})
        save_bank(staging, bank)
        board = TrainingBoard(staging, 0, enabled=tensorboard)
        for tag, key in REFINE_SERIES.items():
            board.series(tag, summary[key])
        board.close()
    console.log.info("refined model written to %s/", output)
    return output
