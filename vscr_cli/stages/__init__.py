"""The work of each stage as importable functions; each stage module declares the store it writes (``SCHEMA``)."""

from __future__ import annotations

from vscr_cli.stages import cam, edges, predict, train
from vscr_cli.store import StoreSchema

#: Every kind of store vscr writes, by kind (docs/store.md lists them; a test keeps it in step).
SCHEMAS: dict[str, StoreSchema] = {schema.kind: schema for schema in (edges.SCHEMA, cam.SCHEMA, predict.SCHEMA, train.FRAMES_SCHEMA, train.FLOWS_SCHEMA)}
