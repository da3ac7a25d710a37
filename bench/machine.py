"""What the bench/ scripts record of the machine a measurement ran on."""

from __future__ import annotations

import os
import platform
import subprocess
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
    """The CPU, its logical CPUs, the bf16/AMX features that decide the training precision, and Python."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in cpuinfo,
        "amx_bf16": "amx_bf16" in cpuinfo,
        "python": platform.python_version(),
    }
