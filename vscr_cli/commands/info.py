"""Describe a store: kind, videos, frames, arrays, parameters and provenance."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from vscr_cli import console
from vscr_cli.options import JsonFlag
from vscr_cli.store import open_store

NAME = "info"


def describe(location: str) -> dict[str, Any]:
    """Everything ``vscr info`` shows, as plain data."""
    with open_store(location) as store:
        videos = []
        for video_id in store.videos:
            videos.append(
                {
                    "video": video_id,
                    "frames": int(len(store.frame_index(video_id))),
                    "arrays": {
                        name: {"shape": list(store.array(video_id, name).shape), "dtype": str(store.array(video_id, name).dtype)}
                        for name in store.arrays(video_id)
                    },
                }
            )
        return {"location": store.location, **store.record.to_json(), "videos": videos}


def command(
    store: Annotated[str, typer.Argument(help="A .zarr directory, a .zarr.zip file, or '-' for a zip on stdin.")],
    json_output: JsonFlag = False,
) -> None:
    facts = describe(store)
    if json_output:
        console.stdout.print_json(json.dumps(facts))
        return
    out = console.stdout
    record_lines = [
        f"[bold]{facts['location']}[/]: {facts['kind']} store ({facts['schema']}), label space {facts['label_space']}",
        f"created by vscr {facts['created_by'].get('version', '?')}: {' '.join(facts['created_by'].get('argv', []))}",
        f"params: {json.dumps(facts['params'])}",
        f"inputs: {json.dumps(facts['inputs'])}",
    ]
    for line in record_lines:
        out.print(line, highlight=False)
    if facts["skipped"]:
        out.print(f"skipped: {', '.join(s['video'] + ' (' + s['reason'] + ')' for s in facts['skipped'])}")
    table = Table(title=f"{len(facts['videos'])} videos, {sum(v['frames'] for v in facts['videos'])} frames")
    for column in ("video", "frames", "arrays"):
        table.add_column(column)
    for video in facts["videos"]:
        arrays = ", ".join(f"{name} {'x'.join(map(str, a['shape']))} {a['dtype']}" for name, a in video["arrays"].items())
        table.add_row(video["video"], str(video["frames"]), arrays)
    out.print(table)
