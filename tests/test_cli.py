import json
import subprocess
import sys

from vscr_cli import __version__
from vscr_cli.cli import COMMANDS, command_summary, load_command

from .conftest import vscr_process


def test_version_and_help_list_only_real_commands(cli):
    result = cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"vscr {__version__}"
    result = cli("--help")
    assert result.code == 0
    for name in ("synth", "info"):
        assert name in result.stdout


def test_help_lists_the_commands_without_importing_them():
    listing = "import sys; from vscr_cli.cli import run; run(['--help']); print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('vscr_cli.commands.')))"
    done = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    words = " ".join(done.stdout.replace("│", " ").split())
    for name in COMMANDS:
        summary = command_summary(name).get_short_help_str(limit=200)
        assert summary == load_command(name).get_short_help_str(limit=200)
        assert f"{name} {summary.split()[0]}" in words


def test_synth_command_writes_and_summarises(cli, tmp_path):
    out = tmp_path / "data"
    result = cli("-q", "synth", out, "--videos", "3", "--frames", "4", "--height", "32", "--width", "48", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [v["video_id"] for v in summary["videos"]] == ["synth0000", "synth0001", "synth0002"]
    assert (out / "Release" / "videoset.csv").is_file() and (out / "tags.csv").is_file()
    again = cli("synth", out, "--videos", "3")
    assert again.code == 1
    assert again.stderr.strip().splitlines() == [f"vscr: error: {out}: output exists (pass --overwrite to replace it)"]


def test_exit_codes_and_one_line_errors(tmp_path):
    usage = vscr_process("synth")
    assert usage.returncode == 2 and b"Missing argument" in usage.stderr
    missing = vscr_process("info", tmp_path / "absent.zarr")
    assert missing.returncode == 1
    assert missing.stderr.decode().strip() == f"vscr: error: {tmp_path / 'absent.zarr'}: no such store"
    verbose = vscr_process("-v", "info", tmp_path / "absent.zarr")
    assert verbose.returncode == 1 and b"Traceback" in verbose.stderr
    terminal_free = vscr_process("info", "-", stdin=None)
    assert terminal_free.returncode == 1


def test_weights_command(cli, hed_weights_path, lite0_weights_path):
    listed = cli("weights", "verify", "--json")
    assert listed.code == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["hed-bsds500"]["verified"] and rows["efficientnet-lite0-imagenet"]["verified"]
    unknown = cli("weights", "fetch", "no-such-weights")
    assert unknown.code == 1 and "unknown weights no-such-weights" in unknown.stderr
