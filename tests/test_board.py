"""TensorBoard events of a training run, read back with TensorBoard's own reader."""

from __future__ import annotations

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import IMAGES, SCALARS, EventAccumulator

from vscr_cli.stages.board import BOARD_FOLDER, DATA_SHARE, PICTURES, REFINE_SERIES, SCALARS as SCALAR_TAGS

from .test_train import _metrics, _stage_run


def _events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder / BOARD_FOLDER), size_guidance={SCALARS: 0, IMAGES: 0})
    events.Reload()
    return events


def test_a_resumed_run_continues_the_same_curves_without_repeated_steps(trained, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _stage_run(trained, whole, 12)
    _stage_run(trained, parts, 12, stop_at=6)  # interrupted after the checkpoint at 4: steps 5 and 6 are logged twice
    _stage_run(trained, parts, 12, resume=True)
    for folder in (whole, parts):
        events = _events(folder)
        assert set(events.Tags()["scalars"]) == {*SCALAR_TAGS, DATA_SHARE}
        for tag in SCALAR_TAGS:
            assert [event.step for event in events.Scalars(tag)] == list(range(1, 13)), (folder.name, tag)
        totals = [event.value for event in events.Scalars("loss/total")]
        assert totals == [row["total"] for row in _metrics(folder)]  # the curve is metrics.jsonl's column
        pictures = events.Images(PICTURES)
        assert [picture.step for picture in pictures] == [4, 8, 12]  # at every checkpoint (checkpoint_every 4)
        assert pictures[0].width == 3 * 32 and pictures[0].height == 3 * 32  # 3 frames of frame | pseudo-label | prediction
    a, b = (_events(f).Scalars("loss/total") for f in (whole, parts))
    assert [e.value for e in a] == [e.value for e in b]  # resume is exact, and so are its curves


def test_refine_writes_its_retraining_curves_and_train_its_own(cli, trained, tmp_path):
    assert _events(trained.model).Scalars("loss/total")  # the fixture's model, trained by the command's defaults
    out = tmp_path / "refined"
    result = cli("-q", "refine", "--edges", trained.edges, "--cam", trained.cam, "-m", trained.model, "-o", out, "--epochs", "3")
    assert result.code == 0, result.stderr
    summary = json.loads((out / "config.json").read_text())["refine"]
    events = _events(out)
    for tag, key in REFINE_SERIES.items():
        assert [(e.step, round(e.value, 5)) for e in events.Scalars(tag)] == [(i, round(v, 5)) for i, v in enumerate(summary[key], 1)], tag
    assert len(events.Scalars("refine/head_loss")) == 3
    quiet = cli("-q", "refine", "--edges", trained.edges, "--cam", trained.cam, "-m", trained.model, "-o", tmp_path / "plain", "--epochs", "1", "--no-tensorboard")
    assert quiet.code == 0, quiet.stderr
    assert not (tmp_path / "plain" / BOARD_FOLDER).exists()
