"""The training loop: the step (Eq. 4 + the heads' terms), the optimiser and its poly schedule,
checkpoints, the log and TensorBoard, one process or a DistributedDataParallel group."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vscr_cli.checkpoints import read_checkpoint
from vscr_cli.core.losses import ObjectiveTerms, PrototypeMemory, action_tag_loss, vscr_objective
from vscr_cli.core.models.vscr import VSCROutput, labels_at_cells
from vscr_cli.core.params import ObjectiveConfig
from vscr_cli.core.precision import autocast
from vscr_cli.errors import VscrError
from vscr_cli.model_folders import build_model, save_model
from vscr_cli.settings.model import MODEL_METRICS, logged_steps
from vscr_cli.settings.train import TrainConfig, dotted
from vscr_cli.store import (
    changed_keys,
)
from vscr_cli.stages.board import PICTURE_FRAMES, TrainingBoard, prediction_panels
from vscr_cli.stages.training_data import TrainingData
from vscr_cli.stages.train.data import FrameCache, IterationBatches, SampleReader


CHECKPOINT = "checkpoint.pt"


@dataclass
class StepLog:
    iteration: int
    total: float
    edge: float
    cam: float
    tag: float
    classifier: float
    action: float
    learning_rate: float
    seconds: float
    data_seconds: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_from_env(device: torch.device) -> Distributed:
    """Join the process group torchrun set up (gloo on CPU, nccl on CUDA; one GPU per process,
    chosen by LOCAL_RANK), or run alone. Works the same on one node or several (env:// rendezvous)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed()
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def poly_learning_rate(config: TrainConfig, iteration: int) -> float:
    return config.learning_rate * (1 - iteration / config.iterations) ** config.poly_power


def _gather(tensor: torch.Tensor, world: Distributed) -> torch.Tensor:
    """Concatenate a (N_r, ...) tensor of every process (sizes may differ)."""
    if world.world == 1:
        return tensor
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world.world)]
    dist.all_gather(sizes, size)
    largest = int(max(s.item() for s in sizes))
    padded = torch.zeros((largest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.zeros_like(padded) for _ in range(world.world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(s.item())] for part, s in zip(parts, sizes)])


def train(
    data: TrainingData,
    cache: FrameCache,
    config: TrainConfig,
    folder: Path,
    device: torch.device,
    dtype: torch.dtype | None,
    backbone_state: Mapping[str, torch.Tensor] | None,
    motion_state: Mapping[str, torch.Tensor] | None = None,
    resume: Path | None = None,
    world: Distributed = Distributed(),
    on_step: Callable[[StepLog], None] | None = None,
    record: Mapping[str, Any] | None = None,
    tensorboard: bool = True,
) -> list[StepLog]:
    """Train ``config.iterations`` iterations into ``folder`` (its checkpoints, metrics, TensorBoard
    events with ``tensorboard`` and the model), continuing from the checkpoint ``resume`` when given;
    returns the logged steps of this run."""
    torch.manual_seed(config.seed)
    model = build_model(config, backbone_state, motion_state).to(device)
    model.head_gradient = config.head_gradient
    pretrained = [p for p in model.backbone.parameters() if p.requires_grad]
    new_layers = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("backbone.")]
    optimizer = torch.optim.SGD(
        [{"params": pretrained, "lr_scale": 1.0}, {"params": new_layers, "lr_scale": config.new_layers_lr_scale}],
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    memory = PrototypeMemory(config.memory_iterations)
    tag_memory = PrototypeMemory(config.memory_iterations if config.tag_memory else 0)
    start = 0
    if resume is not None:
        state = read_checkpoint(resume, device, ("config", "model", "optimizer", "memory", "tag_memory", "iteration"))
        recorded = TrainConfig.from_record(state["config"], resume).to_json()
        if changed := changed_keys(dotted(recorded), dotted(config.to_json())):
            raise VscrError(f"{resume}: cannot resume with different training options ({', '.join(changed)})")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        memory.load_state_dict(state["memory"])
        tag_memory.load_state_dict(state["tag_memory"])
        start = int(state["iteration"])
    trainable = nn.parallel.DistributedDataParallel(model) if world.world > 1 else model
    reader = SampleReader(data, cache, config, config.architecture.mean_std)
    loader = torch.utils.data.DataLoader(
        IterationBatches(reader, start, world.rank, world.world),
        batch_size=None,
        num_workers=config.workers,
        persistent_workers=False,
    )
    logs: list[StepLog] = []
    metrics = _continued_metrics(folder / MODEL_METRICS, start) if world.main else None
    board = TrainingBoard(folder, start, enabled=world.main and tensorboard)
    shown = picture_samples(reader, data) if board.writer is not None else []
    model.train()
    clock = time.perf_counter()
    for batch in loader:
        iteration = int(batch.pop("iteration"))
        data_seconds = time.perf_counter() - clock
        batch = {key: value.to(device) for key, value in batch.items()}
        torch.manual_seed(config.seed * 1_000_003 + iteration * world.world + world.rank)  # dropout: stateless, so resume is exact
        learning_rate = poly_learning_rate(config, iteration)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * group["lr_scale"]
        with autocast(device, dtype):
            output = trainable(batch["image"], batch.get("motion"))
        loss, terms, classifier, action = training_losses(output, batch, memory, tag_memory, config.objective, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        memory.update(_gather(terms.cam_prototypes.detach(), world), _gather(terms.cam_labels, world))
        if tag_memory.capacity:
            tag_memory.update(_gather(terms.tag_prototypes.detach(), world), _gather(terms.tag_labels, world))
        seconds = time.perf_counter() - clock
        log = StepLog(iteration + 1, *(float(t.detach()) for t in (loss, terms.edge, terms.cam, terms.tag, classifier, action)), learning_rate, seconds, data_seconds)
        if not all(math.isfinite(v) for v in (log.total, log.edge, log.cam, log.tag, log.classifier, log.action)):
            raise VscrError(f"training diverged at iteration {log.iteration} (a loss is not finite); lower --learning-rate")
        logs.append(log)
        if metrics is not None and (log.iteration % config.log_every == 0 or log.iteration == config.iterations):
            metrics.write(json.dumps(log.to_json()) + "\n")
            metrics.flush()
            board.scalars(log.to_json())
        if world.main and (log.iteration % config.checkpoint_every == 0 or log.iteration == config.iterations):
            _save_checkpoint(folder / CHECKPOINT, model, optimizer, {"memory": memory, "tag_memory": tag_memory}, log.iteration, config)
            if shown:
                board.pictures(log.iteration, prediction_panels(model, shown, config.architecture.mean_std, device))
        if on_step is not None:
            on_step(log)
        clock = time.perf_counter()
    if world.main:
        save_model(folder, model, config, dict(record or {}))
        if metrics is not None:
            metrics.close()
    board.close()
    return logs


def picture_samples(reader: SampleReader, data: TrainingData, count: int = PICTURE_FRAMES) -> list[dict[str, np.ndarray]]:
    """Fixed training samples the board draws at every checkpoint: the middle frame of each of the
    first ``count`` videos with pseudo-labels (else of any), its window drawn with a fixed seed."""
    labeled = [v for v, entry in enumerate(data.videos) if entry.labeled.any()]
    chosen = (labeled or list(range(len(data.videos))))[:count]
    return [reader.sample(v, len(data.videos[v].frame_index) // 2, np.random.default_rng(v)) for v in chosen]


def _continued_metrics(path: Path, start: int) -> TextIO:
    """``metrics.jsonl`` opened to log the iterations after ``start`` (0, or a resumed checkpoint's):
    the rows an interrupted run logged after that checkpoint, or left half-written, are dropped, so
    every iteration is logged once."""
    kept = [row for row in logged_steps(path) if row["iteration"] <= start] if start else []
    metrics = path.open("w")
    metrics.writelines(json.dumps(row) + "\n" for row in kept)
    return metrics


def training_losses(
    output: VSCROutput,
    batch: Mapping[str, torch.Tensor],
    memory: PrototypeMemory,
    tag_memory: PrototypeMemory,
    objective: ObjectiveConfig,
    config: TrainConfig,
) -> tuple[torch.Tensor, ObjectiveTerms, torch.Tensor, torch.Tensor]:
    """(total loss, the objective's terms, the head's cross-entropy, the action head's term) of one
    batch's network output.

    Label maps (B, H, W) are sampled at the embedding cells' centres (:func:`~vscr_cli.core.models.vscr.labels_at_cells`); the
    head is trained on the CAM pseudo-labels of labeled frames, the action head (if any) on the
    action tags of tagged frames (of labeled frames only without unlabeled samples).
    """
    size = output.embedding.shape[-2:]
    edge = labels_at_cells(batch["edge"], size)
    cam = labels_at_cells(batch["cam"], size)
    ignore = labels_at_cells(batch["ignore"].long(), size).bool()
    terms = vscr_objective(output.embedding, edge, cam, batch["tags"], batch["labeled"], ignore, memory, objective, tag_memory)
    head_target = torch.where(batch["labeled"][:, None, None] & ~ignore, cam, -1)
    if (head_target >= 0).any():
        classifier = F.cross_entropy(output.logits.float(), head_target, ignore_index=-1)
    else:
        classifier = output.logits.sum() * 0
    total = terms.total + config.classifier_weight * classifier
    action = output.logits.new_zeros(())
    if output.actions is not None:
        frames = (batch["tags"].sum(dim=1) > 0) & (batch["labeled"] | objective.use_unlabeled)
        action = action_tag_loss(output.actions, batch["actions"], frames)
        total = total + config.action_weight * action
    return total, terms, classifier, action


def _save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, memories: Mapping[str, PrototypeMemory], iteration: int, config: TrainConfig
) -> None:
    """Model, optimizer and memory banks' state, written atomically (torch.save of tensors and plain values)."""
    temporary = path.with_name(f".{path.name}.tmp")
    banks = {name: memory.state_dict() for name, memory in memories.items()}
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), **banks, "iteration": iteration, "config": config.to_json()},
        temporary,
    )
    temporary.replace(path)
