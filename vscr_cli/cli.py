"""The ``vscr`` command: global options and the registry of subcommands (one module each)."""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Optional

import typer

from vscr_cli import __version__, console
from vscr_cli.commands import align, cam, demo, edges, info, merge, predict, refine, score, show, synth, train, weights
from vscr_cli.errors import VscrError

app = typer.Typer(
    name="vscr",
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
) -> None:
    """Weakly-supervised video actor-action segmentation (VSCR) as composable commands over Zarr stores."""
    console.configure(verbose, quiet)


for module in (synth, info, weights, edges, cam, train, refine, predict, align, score, show, merge, demo):
    app.command(module.NAME, help=module.__doc__)(module.command)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status: 0 success, 1 data/runtime error, 2 usage error."""
    try:
        app(args=argv, prog_name="vscr")  # standalone: usage errors print and exit 2
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        print("vscr: interrupted", file=sys.stderr)
        return 130
    except VscrError as error:
        if console.Verbosity.level > 0:
            traceback.print_exc()
        print(f"vscr: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`): nothing more to say
        return 1
    except OSError as error:  # the filesystem said no: permission, read-only, a file where a folder was expected...
        if console.Verbosity.level > 0:
            traceback.print_exc()
        print(f"vscr: error: {describe_os_error(error)}", file=sys.stderr)
        return 1
    return 0


def describe_os_error(error: OSError) -> str:
    """``FILE: problem`` for an OS error, in one line."""
    reason = error.strerror or str(error) or type(error).__name__
    files = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' -> '.join(files)}: {reason}" if files else " ".join(reason.split())


def main() -> None:
    sys.exit(run())
