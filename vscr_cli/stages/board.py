"""TensorBoard event files of a training run (``vscr train``, ``vscr refine``): what PyTorch users
watch while a run goes on (``tensorboard --logdir MODEL_FOLDER``). ``vscr refine`` writes its head's
loss per epoch and the share of pseudo-labels each voting round changed (:data:`REFINE_SERIES`).

Every logged iteration writes the terms of Eq. 4, the head's and the action head's terms, the
learning rate and the step time as scalars; every ``picture_every`` iterations a few fixed training
frames are drawn with their pseudo-labels and the network's current prediction. A resumed run
starts its writer with ``purge_step`` at its first iteration, so TensorBoard drops whatever the
interrupted run logged past its last checkpoint: the curves continue without repeated steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vscr_cli import labels, render

BOARD_FOLDER = "tensorboard"
#: Scalar tags and the StepLog field each reads.
SCALARS = {
    "loss/total": "total",
    "loss/edge": "edge",
    "loss/cam": "cam",
    "loss/tag": "tag",
    "loss/classifier": "classifier",
    "loss/action": "action",
    "optim/learning_rate": "learning_rate",
    "time/step_seconds": "seconds",
}
DATA_SHARE = "time/data_share"  # the share of a step spent waiting for data
PICTURES = "pictures/frame_pseudo_prediction"
#: vscr refine's curves: tag -> the key of its summary holding the values.
REFINE_SERIES = {"refine/head_loss": "head_loss_per_epoch", "refine/pseudo_label_changed_share": "pseudo_label_changed_share"}
PICTURE_FRAMES = 3  # fixed training frames drawn


class TrainingBoard:
    """Writes one run's TensorBoard events into ``folder/tensorboard`` (nothing when not ``enabled``)."""

    def __init__(self, folder: Path, start: int, enabled: bool = True) -> None:
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when the board is on

            self.writer = SummaryWriter(log_dir=str(folder / BOARD_FOLDER), purge_step=start + 1 if start else None)

    def scalars(self, log: Mapping[str, float]) -> None:
        """The scalars of one logged iteration (``log``: a StepLog's fields)."""
        if self.writer is None:
            return
        step = int(log["iteration"])
        for tag, name in SCALARS.items():
            self.writer.add_scalar(tag, log[name], step)
        if log["seconds"] > 0:
            self.writer.add_scalar(DATA_SHARE, log["data_seconds"] / log["seconds"], step)
        self.writer.flush()

    def series(self, tag: str, values: Sequence[float]) -> None:
        """A whole curve at once, its values at steps 1, 2, ... (refine's epochs and rounds)."""
        if self.writer is None:
            return
        for step, value in enumerate(values, 1):
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def pictures(self, iteration: int, panels: Sequence[np.ndarray]) -> None:
        """(H, W, 3) uint8 pictures, stacked top to bottom, as one image at ``iteration``."""
        if self.writer is None or not panels:
            return
        width = max(panel.shape[1] for panel in panels)
        stacked = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p in panels])
        self.writer.add_image(PICTURES, stacked, iteration, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@torch.no_grad()
def prediction_panels(
    model: nn.Module,
    samples: Sequence[Mapping[str, np.ndarray]],
    mean_std: tuple[tuple[float, ...], tuple[float, ...]],
    device: torch.device,
) -> list[np.ndarray]:
    """For each training sample (SampleReader.sample: ``image`` (3, c, c) normalised, ``cam`` (c, c)
    class indices or -1, optional ``motion``): [frame | pseudo-label | current prediction] as one
    (c, 3c, 3) uint8 picture. The model is put back in training mode; no state of it changes."""
    was_training = model.training
    model.eval()
    mean = np.array(mean_std[0], np.float32)[:, None, None] * 255
    std = np.array(mean_std[1], np.float32)[:, None, None] * 255
    class_ids = np.asarray(labels.CLASS_IDS, np.uint8)
    panels = []
    try:
        for sample in samples:
            image = torch.from_numpy(sample["image"])[None].to(device)
            motion = torch.from_numpy(sample["motion"])[None].to(device) if "motion" in sample else None
            index = model.predict(image, motion)[0].argmax(dim=0).cpu().numpy()
            frame = np.clip(sample["image"] * std + mean, 0, 255).astype(np.uint8).transpose(1, 2, 0)
            pseudo = np.where(sample["cam"] >= 0, class_ids[np.clip(sample["cam"], 0, None)], labels.BACKGROUND).astype(np.uint8)
            panels.append(np.concatenate([frame, render.label_overlay(frame, pseudo), render.label_overlay(frame, class_ids[index])], axis=1))
    finally:
        model.train(was_training)
    return panels
