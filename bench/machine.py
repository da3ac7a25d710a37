"""What the bench/ scripts record of the machine a measurement ran on."""

from __future__ import annotations

import platform
import subprocess


def cpu_model() -> str:
    """lscpu's "Model name" (the platform's processor string when lscpu is not there)."""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), platform.processor())
