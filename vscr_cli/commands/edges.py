"""HED edge maps and hierarchical edge segmentation (UCM cut) of every frame, into an edges store."""

from __future__ import annotations

from typing import Annotated

import typer

from vscr_cli.options import BatchSize, PerVideo, Sources, Weights, check_inputs, per_video_options
from vscr_cli.settings.edges import DEFAULT_THRESHOLD

NAME = "edges"


@per_video_options
def command(
    sources: Sources,
    video: PerVideo,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="UCM cut level in [0, 1]: higher gives fewer, larger regions.")] = DEFAULT_THRESHOLD,
    batch_size: BatchSize = 4,
    weights_file: Weights = None,
) -> None:
    target = video.target()
    check_inputs(sources)
    from vscr_cli.stages import edges as stage  # torch and HED only once the refusals are made

    stage.run(sources, target, video.runtime(), threshold, video.selection(), video.split.value, batch_size, weights_file)
