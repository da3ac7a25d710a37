"""What the bench/ scripts record of the machine a measurement ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """lscpu's "Model name" (the platform's processor string when lscpu is not there)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), platform.processor())


def machine_info() -> dict[str, Any]:
    """The CPU (its name, and the family / model numbers that tell generations of one name apart: an
    "AMD EPYC" of family 25 model 1 is a Zen 3, of model 17 a Zen 4), its logical CPUs, the AVX-512,
    bf16 and AMX features that decide the precision, and Python."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in cpuinfo.split("\n\n")[0].splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return {
        "cpu": cpu_model(),
        "cpu_family_model": f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}",
        "logical_cpus": os.cpu_count(),
        "avx512f": "avx512f" in cpuinfo,
        "avx512_bf16": "avx512_bf16" in cpuinfo,
        "amx_bf16": "amx_bf16" in cpuinfo,
        "python": platform.python_version(),
    }


def commit(checkout: Path) -> str:
    """The checkout's commit, marked ``+changes`` when its tracked files differ from it."""
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(checkout), "diff", "--quiet", "HEAD"]).returncode != 0
    return head + ("+changes" if dirty else "")


def timed_vscr(checkout: Path, folder: Path, args: Sequence[object]) -> tuple[float, int, str]:
    """Seconds from start to exit of ``vscr ARGS`` run in ``folder`` with ``checkout``'s code (first on
    PYTHONPATH), its exit status and its last stderr line."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vscr_cli", *map(str, args)], cwd=folder, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    return seconds, done.returncode, lines[-1] if lines else ""
