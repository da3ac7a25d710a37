"""The ``vscr`` command: global options and the registry of subcommands (one module each).

A subcommand's module (``vscr_cli.commands.NAME``) is imported only when that command runs or shows
its own help, so ``vscr info`` or ``vscr score`` do not pay for importing torch and the models; a
command's module imports its stage (torch, the models) only once its output and inputs passed their
checks, so a refused run says why at once. The group's help lists each command by its module's
docstring, read from the source without importing it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Optional

import click
import typer
from typer.core import TyperGroup

from vscr_cli import __version__, console
from vscr_cli.errors import VscrError

#: The subcommands in help's order; each is the module ``vscr_cli.commands.<name>``.
COMMANDS = ("synth", "info", "weights", "edges", "cam", "train", "refine", "predict", "align", "score", "show", "report", "merge", "demo")


@functools.cache
def load_command(name: str) -> click.Command:
    """The click command of subcommand ``name``, built from its module's ``command`` function."""
    module = importlib.import_module(f"vscr_cli.commands.{name}")
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(module.NAME, help=module.__doc__)(module.command)
    return typer.main.get_command(single)


@functools.cache
def command_summary(name: str) -> click.Command:
    """A stand-in for subcommand ``name`` that only carries its help (its module's docstring, as
    :func:`load_command` gives it), read from the module's source without importing it."""
    spec = importlib.util.find_spec(f"vscr_cli.commands.{name}")
    if spec is None or spec.origin is None:
        raise KeyError(name)
    with open(spec.origin, encoding="utf-8") as source:
        docstring = ast.get_docstring(ast.parse(source.read()))
    return click.Command(name, help=docstring)


class _CommandModules(Mapping[str, click.Command]):
    """The group's commands by name; a command's module is imported on first look-up."""

    def __getitem__(self, name: str) -> click.Command:
        if name not in COMMANDS:
            raise KeyError(name)
        return load_command(name)

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class Interrupted(Exception):
    """Ctrl-C during a command: raised past typer, which would turn it into a silent exit 130."""


class LazyGroup(TyperGroup):
    """A typer group whose subcommands are loaded when asked for (click's lazy-loading pattern)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.commands = _CommandModules()  # type: ignore[assignment]
        self._listing = False

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The group's help, listing each command by its summary (no command module imported)."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)  # typer's lists ``commands.items()``, which would load every command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing and cmd_name in COMMANDS:
            return command_summary(cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as interrupt:
            raise Interrupted from interrupt


app = typer.Typer(
    name="vscr",
    cls=LazyGroup,
    help="Weakly-supervised video actor-action segmentation (VSCR) as composable commands over Zarr stores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        console.stdout.print(f"vscr {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More logging; -v also shows tracebacks.")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only warnings and errors; no progress bars.")] = False,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")] = None,
    max_pixels: Annotated[
        Optional[int],
        typer.Option("--max-pixels", min=1, show_default=False, help="Refuse frames and images declaring more pixels than this, before decoding (default: $VSCR_MAX_PIXELS, else 40 megapixels; docs/store.md)."),
    ] = None,
) -> None:
    """Weakly-supervised video actor-action segmentation (VSCR) as composable commands over Zarr stores."""
    console.configure(verbose, quiet)
    if max_pixels is not None:
        from vscr_cli.video import set_max_pixels  # media libraries only when the limit is set here

        set_max_pixels(max_pixels)


class InterruptWatch:
    """Remembers a Ctrl-C while a command runs (the main thread's SIGINT handler still raises
    KeyboardInterrupt), so that whatever a library turns the interrupt into on its way up
    (safetensors mid-load raises a ValueError) is still reported as an interruption."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def __enter__(self) -> InterruptWatch:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status: 0 success, 1 data/runtime error, 2 usage error,
    130 interrupted."""
    with InterruptWatch() as interrupt:
        try:
            return _run(argv, interrupt)
        except Exception:
            if not interrupt.seen:
                raise
            return _interrupted()


def _interrupted() -> int:
    print("vscr: interrupted", file=sys.stderr)
    return 130


def _run(argv: list[str] | None, interrupt: InterruptWatch) -> int:
    try:
        app(args=argv, prog_name="vscr")  # standalone: usage errors print and exit 2
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except (KeyboardInterrupt, Interrupted):
        return _interrupted()
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): nothing more to say
        return 1
    except (VscrError, OSError) as error:  # OSError: the filesystem said no (permission, read-only, ...)
        if interrupt.seen:
            return _interrupted()  # an error the interrupt caused on its way up
        if console.Verbosity.level > 0:
            traceback.print_exc()
        message = str(error) if isinstance(error, VscrError) else describe_os_error(error)
        print(f"vscr: error: {console.one_line(message)}", file=sys.stderr)
        return 1
    return 0


def describe_os_error(error: OSError) -> str:
    """``FILE: problem`` for an OS error, in one line."""
    reason = error.strerror or str(error) or type(error).__name__
    files = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' -> '.join(files)}: {reason}" if files else " ".join(reason.split())


def main() -> None:
    sys.exit(run())
