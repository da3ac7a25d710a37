"""Refine a trained model as SPML does: prototype bank, tag-restricted k-NN relabelling, head retrained."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from vscr_cli.errors import VscrError
from vscr_cli.options import BatchSize, CamStore, Device, EdgesStore, ModelFolder, TrainingSources, TrainingTags, DeviceOption, Overwrite, Precision, PrecisionOption, TagVotes, check_inputs, runtime
from vscr_cli.settings.model import MODEL_KIND
from vscr_cli.settings.predict import default_model
from vscr_cli.settings.records import toml_text
from vscr_cli.settings.refine import RefineParams
from vscr_cli.settings.run import RunOptions
from vscr_cli.store import check_output

NAME = "refine"


def command(
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write: the model with its head retrained and its prototype bank.")],
    edges: EdgesStore = None,
    cam: CamStore = None,
    model: ModelFolder = None,
    sources: TrainingSources = None,
    tags: TrainingTags = None,
    neighbours: Annotated[int, typer.Option("--neighbours", min=1, help="Bank prototypes voting for each segment.")] = RefineParams.neighbours,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Bank -> relabelling rounds before the head is retrained.")] = RefineParams.rounds,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes of the head over all training pixels.")] = RefineParams.epochs,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the head's retraining.")] = RefineParams.seed,
    tag_votes: Annotated[
        TagVotes,
        typer.Option("--tag-votes", help="Prototypes that relabel a video: of its tags' classes (class, SPML's), or of every class of its tagged actors, voting for that actor's tag (actor)."),
    ] = TagVotes(RefineParams.tag_votes),
    batch_size: BatchSize = 4,
    precision: PrecisionOption = Precision("auto"),
    device: DeviceOption = Device("auto"),
    overwrite: Overwrite = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard/--no-tensorboard", help="Write the retraining's curves as TensorBoard event files into the model folder's tensorboard/.")] = True,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the refinement settings these options resolve to as TOML and exit.")] = False,
) -> None:
    params = RefineParams(neighbours=neighbours, rounds=rounds, epochs=epochs, seed=seed, tag_votes=tag_votes.value)
    if print_config:
        sys.stdout.write(toml_text(dataclasses.asdict(params), "vscr refine: the resolved settings"))
        return
    if edges is None or cam is None:
        raise VscrError("missing --edges and --cam: the stores the model was trained on")
    check_output(output, MODEL_KIND, overwrite, resumable=False)
    model = model or default_model()
    check_inputs(sources, [edges, cam], tags, model)
    from vscr_cli.stages import refine as stage  # torch and the network only once the refusals are made

    stage.run(edges, cam, output, runtime(device, precision, RunOptions(overwrite=overwrite)), model, sources, tags, params, batch_size, tensorboard)
