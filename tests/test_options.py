"""The per-video commands take the shared option group, written once in vscr_cli.options."""

from dataclasses import fields

import click
import typer

from vscr_cli.cli import app
from vscr_cli.options import PerVideo


def test_per_video_commands_share_one_option_group():
    group = typer.main.get_group(app)
    shared = {f.name for f in fields(PerVideo)}
    for name in ("edges", "cam", "predict"):
        params = {param.name for param in group.get_command(click.Context(group), name).params}
        assert shared <= params, (name, shared - params)
        assert "video" not in params
