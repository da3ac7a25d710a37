"""vscr train's configuration tree: presets as files, the layers (preset, --config, --set, flags),
the resolved tree printed and read back, misspelt names refused with the nearest one (issue #37)."""

from __future__ import annotations

import re
import tomllib

import pytest

from vscr_cli.errors import VscrError
from vscr_cli.settings.train import TrainConfig, dotted, preset_defaults, presets, resolve

from .conftest import REPO


def _printed(cli, *args: str) -> dict:
    done = cli("train", "--device", "cpu", "--print-config", *args)
    assert done.code == 0, done.stderr
    return tomllib.loads(done.stdout)


def test_print_config_is_the_whole_resolved_tree_and_reads_back_as_a_config_file(cli, tmp_path):
    printed = _printed(cli, "--preset", "cpu")
    expected = resolve("cpu").to_json()
    assert dotted(printed) == {key: value for key, value in dotted(expected).items() if value is not None}
    assert set(dotted(printed)) | {"atrous_rates"} == set(TrainConfig.keys())  # every setting but the automatic one
    assert printed["iterations"] == 600 and printed["crop"] == 96 and printed["objective"]["grid"] == [6, 6]
    saved = tmp_path / "run.toml"
    saved.write_text(cli("train", "--device", "cpu", "--print-config", "--preset", "paper", "--set", "crop=32").stdout)
    assert _printed(cli, "--preset", "cpu", "--config", str(saved)) == tomllib.loads(saved.read_text())


def test_layers_preset_then_file_then_set_then_flags(cli, tmp_path):
    options = tmp_path / "options.toml"
    options.write_text("iterations = 50\nseed = 3\n[objective]\nedge_weight = 0.5\n")
    assert _printed(cli, "--preset", "cpu", "--config", str(options))["iterations"] == 50
    over = _printed(cli, "--preset", "cpu", "--config", str(options), "--set", "iterations=40", "--set", "objective.use_cam=false")
    assert (over["iterations"], over["seed"], over["objective"]["edge_weight"], over["objective"]["use_cam"]) == (40, 3, 0.5, False)
    flags = _printed(cli, "--preset", "cpu", "--config", str(options), "--set", "iterations=40", "--iterations", "30", "--k-edge", "4", "--no-edge", "--motion", "none")
    assert (flags["iterations"], flags["objective"]["edge_concentration"], flags["objective"]["use_edge"], flags["motion"]) == (30, 4.0, False, "none")
    assert flags["learning_rate"] == 0.01  # the cpu preset's, under every layer that does not set it


@pytest.mark.parametrize(
    "setting, message",
    [
        ("objective.edge_weigth=1", "unknown training options: objective.edge_weigth (did you mean objective.edge_weight?)"),
        ("edge_weight=1", "unknown training options: edge_weight (did you mean objective.edge_weight?)"),
        ("learning_rat=0.1", "unknown training options: learning_rat (did you mean learning_rate?)"),
        ("seed=2.5", "--set: seed: Input should be a valid integer"),
        ("crop", "expected KEY=VALUE"),
    ],
)
def test_a_misspelt_or_mistyped_setting_is_one_line_naming_the_nearest(cli, setting, message):
    done = cli("train", "--device", "cpu", "--print-config", "--set", setting)
    assert done.code == 1 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_presets_are_the_packaged_files_and_the_help_shows_their_defaults(cli, monkeypatch):
    assert presets() == ("cpu", "gpu", "paper", "paper-cpu")
    assert preset_defaults("iterations") == "600 (cpu), 40000 (gpu), 40000 (paper), 600 (paper-cpu)"
    assert preset_defaults("objective.edge_weight") == "0.3" and preset_defaults("atrous_rates") == "automatic"
    monkeypatch.setenv("COLUMNS", "400")
    shown = cli("train", "--help").stdout
    assert re.search(r"--iterations .*\[default: 600 \(cpu\), 40000 \(gpu\), 40000 \(paper\), 600 \(paper-cpu\)\]", shown)
    assert re.search(r"--k-edge .*\(setting: objective\.edge_concentration\)  \[default: 16\.0\]", shown)


def test_a_record_of_the_flat_names_vscr_0_1_wrote_still_loads():
    config = TrainConfig.from_record({"iterations": 7, "edge_weight": 0.5, "kmeans_grid": 3, "kmeans_iterations": 4, "use_tag": False}, "config.json")
    assert (config.iterations, config.objective.edge_weight, config.objective.grid, config.objective.iterations, config.objective.use_tag) == (7, 0.5, (3, 3), 4, False)
    assert TrainConfig.from_record(config.to_json(), "config.json") == config


def test_no_command_gathers_its_options_through_locals():
    assert [path.name for path in (REPO / "vscr_cli" / "commands").glob("*.py") if "locals()" in path.read_text()] == []


def test_resolve_refuses_an_unknown_preset():
    with pytest.raises(VscrError, match="unknown preset 'tpu'; choose one of cpu, gpu, paper, paper-cpu"):
        resolve("tpu")


def test_refine_prints_its_resolved_settings_before_reading_any_input(cli, tmp_path):
    done = cli("refine", "-o", str(tmp_path / "refined"), "--neighbours", "7", "--tag-votes", "class", "--print-config")
    assert done.code == 0, done.stderr
    printed = tomllib.loads(done.stdout)
    assert printed["neighbours"] == 7 and printed["tag_votes"] == "class" and printed["epochs"] == 20
    assert not (tmp_path / "refined").exists()


def test_the_cpu_preset_trains_about_50_crops_a_frame_and_iterations_alone_train_exactly_those(tmp_path):
    cpu = resolve("cpu")
    assert (cpu.iterations, cpu.crops_per_frame) == (600, 50.0)
    assert [cpu.iterations_for(frames) for frames in (40, 99, 170, 192, 1000)] == [600, 600, 1100, 1200, 6200]
    assert resolve("paper").iterations_for(5000) == 40000  # the paper's fixed schedule
    exact = resolve("cpu", flags={"iterations": 300})
    assert exact.crops_per_frame == 0 and exact.iterations_for(170) == 300
    options = tmp_path / "options.toml"
    options.write_text("iterations = 300\n")
    assert resolve("cpu", options).iterations_for(170) == 300
    assert resolve("cpu", settings=["iterations=300", "crops_per_frame=50"]).iterations_for(170) == 1100
    assert resolve("cpu", flags={"iterations": 300, "crops_per_frame": 10, "checkpoint_every": 1}).iterations_for(170) == 300
    assert resolve("cpu", flags={"batch_size": 16}).iterations_for(170) == 600  # 531 iterations' worth, 500 in whole intervals: the least, 600, stands
