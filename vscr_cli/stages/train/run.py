"""``vscr train``'s run: the configuration a preset resolves to, the staged model folder
(locked, resumable, moved into place when training ends) and the training of it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import statistics
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from vscr_cli import console, weights
from vscr_cli.core.models.motion import MOTION_ENCODERS
from vscr_cli.errors import VscrError
from vscr_cli.model_folders import MODEL_WEIGHTS
from vscr_cli.settings.model import DEFAULT_MODEL, MODEL_CONFIG, MODEL_KIND
from vscr_cli.settings.run import Runtime
from vscr_cli.settings.train import AUTO_PRESET, TrainConfig, resolve
from vscr_cli.store import (
    OUTPUT_RECORD,
    OutputLock,
    check_output,
    check_staging,
    mark_output,
    output_kind,
    replace_output,
    staging_path,
    writing,
)
from vscr_cli.stages.board import BOARD_FOLDER
from vscr_cli.stages.training_data import open_training_inputs
from vscr_cli.stages.train.data import build_frame_cache, open_frame_cache
from vscr_cli.stages.train.loop import CHECKPOINT, StepLog, distributed_from_env, train


def preset_for(device: torch.device) -> str:
    """The preset ``auto`` stands for on ``device``: ``gpu`` (the paper's networks with the toolkit's
    additions) on CUDA, ``cpu`` elsewhere."""
    return "gpu" if device.type == "cuda" else "cpu"


def resolve_config(preset: str, device: torch.device, config_file: Path | None = None, settings: Sequence[str] = (), flags: Mapping[str, Any] | None = None) -> tuple[str, TrainConfig]:
    """The preset's name (``auto`` resolved for ``device``) and the run's configuration (:func:`vscr_cli.settings.train.resolve`)."""
    name = preset_for(device) if preset == AUTO_PRESET else preset
    return name, resolve(name, config_file, settings, flags)


#: Steps measured (the first, which warms up, left out) before the run's duration is estimated.
ESTIMATE_AFTER = 4


def run(
    edges: str,
    cam: str,
    runtime: Runtime,
    output: Path = DEFAULT_MODEL,
    sources: Sequence[str] | None = None,
    tags: str | None = None,
    config: TrainConfig | None = None,
    backbone_weights: Path | None = None,
    motion_weights: Path | None = None,
    tensorboard: bool = True,
    preset: str = "",
) -> Path:
    """``vscr train``: train ``config`` (default: the ``auto`` preset's for ``device``; ``preset``
    names where it came from in the log) on an edges and a cam store into the model folder
    ``output`` (one process, or each process of a torchrun group), with TensorBoard events in its
    ``tensorboard/`` (``tensorboard``); returns the folder. The run builds the folder beside
    ``output`` (:func:`staged_model`) and moves it into place only when training ends."""
    device, dtype, overwrite, resume = runtime.device, runtime.dtype, runtime.options.overwrite, runtime.options.resume
    if config is None:
        preset, config = resolve_config(AUTO_PRESET, device)
    motion_weights_name = MOTION_ENCODERS[config.motion].weights if config.motion in MOTION_ENCODERS else None
    if motion_weights is not None and motion_weights_name is None:
        raise VscrError(f"--motion-weights: --motion {config.motion} takes no pretrained weights")
    world = distributed_from_env(device)
    if world.main:  # before any work; the other processes follow the main one
        output = check_output(output, MODEL_KIND, overwrite, resume)
    if config.batch_size % world.world:
        raise VscrError(f"--batch-size {config.batch_size} does not split over {world.world} processes")
    with staged_model(output, overwrite, resume, world.main) as folder, open_training_inputs(edges, cam, sources, tags, config.labeled_fraction) as data:
        backbone_state = weights.load_state_dict(config.architecture.weights, backbone_weights, option="--backbone-weights")
        motion_state = weights.load_state_dict(motion_weights_name, motion_weights, option="--motion-weights") if motion_weights_name else None
        with console.progress() as bar:
            task = bar.add_task("caching frames" + (" and optical flow" if config.motion == "flow" else ""), total=len(data.videos))
            cache = build_frame_cache(data, config, folder, lambda: bar.advance(task)) if world.main else None
        if world.world > 1:
            dist.barrier()
            cache = cache or open_frame_cache(folder, config)
        labeled = sum(int(v.labeled.sum()) for v in data.videos)
        total = sum(len(v.frame_index) for v in data.videos)
        console.log.info("%d frames (%d labeled) of %d videos; %s on %s (%s), %d process(es)", total, labeled, len(data.videos), config.backbone, device, dtype or "fp32", world.world)
        if (iterations := config.iterations_for(total)) != config.iterations:
            console.log.info("%d iterations raised to %d: %g crops a training frame (crops_per_frame; --iterations N alone trains exactly N)", config.iterations, iterations, config.crops_per_frame)
            config = dataclasses.replace(config, iterations=iterations)
        console.log.info("%s: %d iterations of batch %d, %dx%d crops; writing %s/", f"preset {preset}" if preset else "configuration", config.iterations, config.batch_size, config.crop, config.crop, output)
        record = {"inputs": {"edges": edges, "cam": cam, "sources": list(sources or data.edges.record.inputs.get("sources", []))}, "frame_height": data.height}
        with console.progress() as bar:
            task = bar.add_task("training", total=config.iterations)
            step_seconds: list[float] = []

            def report(log: StepLog) -> None:
                bar.update(task, completed=log.iteration, description=f"training  loss {log.total:.3f} (edge {log.edge:.2f} cam {log.cam:.2f} tag {log.tag:.2f} head {log.classifier:.2f} action {log.action:.2f})")
                step_seconds.append(log.seconds)
                if len(step_seconds) == ESTIMATE_AFTER + 1 and log.iteration < config.iterations:
                    left, per_step = config.iterations - log.iteration, statistics.median(step_seconds[1:])
                    console.log.info("about %s more for the remaining %d iterations (%.2f s per iteration measured)", console.duration(per_step * left), left, per_step)

            checkpoint = resume_checkpoint(output) if resume else None
            if tensorboard and world.main:
                console.log.info("training curves: tensorboard --logdir %s", folder / BOARD_FOLDER)
            train(data, cache, config, folder, device, dtype, backbone_state, motion_state, checkpoint, world, report if world.main else None, record, tensorboard)
    console.log.info("model written to %s/", output)
    return output


def resume_checkpoint(target: Path) -> Path | None:
    """The checkpoint ``--resume`` continues: an interrupted run's in the staging folder, else the
    finished model's in ``target`` (None: training starts from the first iteration)."""
    return next((path for path in (staging_path(target) / CHECKPOINT, target / CHECKPOINT) if path.is_file()), None)


@contextlib.contextmanager
def staged_model(target: Path, overwrite: bool, resume: bool, main: bool) -> Iterator[Path]:
    """The folder a run trains in (frame cache, checkpoints, metrics, the model), moved over the
    model folder ``target`` (store.replace_output) only when the block ends without error, so that
    ``target`` stays whole until then, after any failure and after a kill.

    The main process holds ``target``'s lock for the whole block. A new or ``--overwrite`` run
    starts a fresh staging folder (refusing to discard an interrupted run's checkpoint without
    ``--overwrite``); ``--resume`` continues the staging folder an interrupted run left, else one
    holding a copy of the finished ``target``'s metrics and frame cache (its checkpoint is read where
    it is: :func:`resume_checkpoint`). On failure a continued staging folder is kept, a new one only
    when this run wrote a checkpoint into it (for ``--resume``; said in a warning), else removed.
    Other processes only get its path.
    """
    staging = staging_path(target)
    if not main:
        yield staging
        return
    with OutputLock(target):
        check_output(target, MODEL_KIND, overwrite, resume)  # again, under the lock
        continued = _open_staging(target, staging, overwrite, resume)
        try:
            with writing(target):
                yield staging
        except BaseException:
            if not continued and (staging / CHECKPOINT).is_file():
                console.log.warning("kept the interrupted run's checkpoint in %s: rerun with --resume to continue it", staging)
            elif not continued:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        replace_output(staging, target)


def _open_staging(target: Path, staging: Path, overwrite: bool, resume: bool) -> bool:
    """Make (or, resuming, keep) the staging folder of ``target`` (see :func:`staged_model`); one
    there that vscr did not make (a symlink, a file, a folder neither empty nor marked) is refused.
    Returns whether an interrupted run's staging folder is continued."""
    check_staging(target, staging, MODEL_KIND)
    if staging.exists():
        if resume and any(staging.iterdir()):
            console.log.info("continuing the interrupted run in %s", staging)
            return True
        if (staging / CHECKPOINT).is_file():
            if not overwrite:
                raise VscrError(f"{target}: an interrupted run left a checkpoint in {staging} (pass --resume to continue it, or --overwrite to start again)")
            console.log.warning("discarding the checkpoint of an interrupted run in %s (--resume would continue it)", staging)
        shutil.rmtree(staging)
    if resume and output_kind(target) == MODEL_KIND:  # extend a finished model: its metrics and frame cache
        shutil.copytree(target, staging, ignore=shutil.ignore_patterns(OUTPUT_RECORD, MODEL_CONFIG, MODEL_WEIGHTS, CHECKPOINT))
    else:
        os.mkdir(staging)
    mark_output(staging, MODEL_KIND)  # last: a staging folder is known as vscr's only once it is whole
    return False
