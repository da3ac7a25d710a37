"""Refine a trained model as SPML does: prototype bank, tag-restricted k-NN relabelling, head retrained."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscr_cli import console, weights
from vscr_cli.checkpoints import read_json, save_bank
from vscr_cli.options import BatchSize, Device, DeviceOption, Overwrite, Precision, PrecisionOption, resolve_autocast, resolve_device
from vscr_cli.stages.predict import load_predictor
from vscr_cli.stages.refine import RefineParams, embed_training_frames, refine
from vscr_cli.stages.train import DEFAULT_MODEL, MODEL_CONFIG, MODEL_WEIGHTS, open_training_inputs, save_model
from vscr_cli.store import check_output, mark_output

NAME = "refine"
MODEL = "model"  # the kind of output this command owns (a model folder, as vscr train's)
#: Record entries vscr train writes itself; the rest of the trained model's record is carried over.
OWN_RECORD = ("format", "train", "label_space", "preprocessing")


def command(
    edges: Annotated[str, typer.Option("--edges", help="Edges store the model was trained on.")],
    cam: Annotated[str, typer.Option("--cam", help="Cam store the model was trained on (pseudo-labels, labeled videos, tags).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write: the model with its head retrained and its prototype bank.")],
    model: Annotated[Path, typer.Option("-m", "--model", help="Model folder written by vscr train.")] = DEFAULT_MODEL,
    sources: Annotated[Optional[list[str]], typer.Argument(help="The videos the stores were made from (default: the sources the edges store records).", show_default=False)] = None,
    tags: Annotated[Optional[str], typer.Option("--tags", help="Tags CSV or A2D root (default: the tags the cam store records).")] = None,
    neighbours: Annotated[int, typer.Option("--neighbours", min=1, help="Bank prototypes voting for each segment.")] = RefineParams.neighbours,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Bank -> relabelling rounds before the head is retrained.")] = RefineParams.rounds,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes of the head over all training pixels.")] = RefineParams.epochs,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the head's retraining.")] = RefineParams.seed,
    batch_size: BatchSize = 4,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    overwrite: Overwrite = False,
) -> None:
    output = check_output(output, MODEL, overwrite, resume=False)
    params = RefineParams(neighbours=neighbours, rounds=rounds, epochs=epochs, seed=seed)
    torch_device = resolve_device(device)
    sha256 = weights.sha256_file(model / MODEL_WEIGHTS) if (model / MODEL_WEIGHTS).is_file() else ""
    predictor = load_predictor(model, sha256, torch_device, resolve_autocast(precision, torch_device))
    record = read_json(model / MODEL_CONFIG)
    with open_training_inputs(edges, cam, sources, tags) as data:
        with console.progress() as bar:
            task = bar.add_task("embedding the training frames", total=len(data.videos))
            videos = embed_training_frames(data, predictor, batch_size, lambda: bar.advance(task))
    bank, summary = refine(videos, predictor, params)
    console.log.info("%d prototypes from %d frames; pseudo-labels changed by the votes: %s", summary["prototypes"], summary["frames"], ", ".join(f"{share:.1%}" for share in summary["pseudo_label_changed_share"]))
    staging = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    carried = {key: value for key, value in record.items() if key not in OWN_RECORD}
    save_model(staging, predictor.model, predictor.config, {**carried, "refine": {**summary, "model": str(model), "model_sha256": sha256}})
    save_bank(staging, bank)
    mark_output(staging, MODEL)
    if output.exists():  # a vscr model folder (check_output refused anything else)
        shutil.rmtree(output)
    staging.replace(output)
    console.log.info("refined model written to %s/", output)
