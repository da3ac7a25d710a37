"""What every kind of store vscr writes holds: one declaration per kind, read by the stage that
writes it and by those that read it (score, align, show), without importing the stages' models.

docs/store.md's table is generated from :data:`SCHEMAS` (a test keeps it in step).
"""

from __future__ import annotations

from vscr_cli.store import ArraySpec, StoreSchema

EDGE, SEGMENTS = "edge", "segments"
EDGES = StoreSchema(
    "edges",
    "vscr edges",
    (
        ArraySpec(EDGE, "(T, H, W)", "uint8", "HED edge probability x 255"),
        ArraySpec(SEGMENTS, "(T, H, W)", "int32", "region ids 0..n-1 of the UCM cut, in raster order of their first pixel"),
    ),
)

CAM, PSEUDO = "cam", "pseudo"
CAMS = StoreSchema(
    "cam",
    "vscr cam",
    (
        ArraySpec(CAM, "(T, H, W)", "uint8", "Grad-CAM++ activation of the tagged actor x 255 (zeros: unlabeled video)"),
        ArraySpec(PSEUDO, "(T, H, W)", "uint8", "pseudo-label: the video's tag id on the chosen superpixels, 0 elsewhere; 255 everywhere for an unlabeled video"),
    ),
)

LABEL, PROB = "label", "prob"
PREDICTIONS = StoreSchema(
    "pred",
    "vscr predict, vscr align",
    (
        ArraySpec(LABEL, "(T, H, W)", "uint8", "A2D actor-action ids, 0 background"),
        ArraySpec(PROB, "(T, 44, H, W)", "float16", "class probabilities, background then the 43 classes (`--prob`)", optional=True),
    ),
)

RGB, SECOND, FLOW = "rgb", "second", "flow"
#: The frame cache training keeps in its model folder (frames.zarr, flows.zarr): the store frames and their clips.
FRAMES = StoreSchema("frames", "vscr train (its frame cache)", (ArraySpec(RGB, "(T, H, W, 3)", "uint8", "the frames the training frames and their motion clips use"),))
FLOWS = StoreSchema(
    "flows",
    "vscr train (its flow cache)",
    (
        ArraySpec(SECOND, "(T,)", "int64", "the second frame of each pair (`frame_index`: its first)"),
        ArraySpec(FLOW, "(T, H, W, 2)", "float32", "Farneback flow (x, y) in pixels from the first frame of the pair to the second"),
    ),
)

#: Every kind of store vscr writes, by kind (docs/store.md lists them).
SCHEMAS: dict[str, StoreSchema] = {schema.kind: schema for schema in (EDGES, CAMS, PREDICTIONS, FRAMES, FLOWS)}
