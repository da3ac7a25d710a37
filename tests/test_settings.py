"""vscr_cli.settings and the command modules stay light to import, and the choices they offer are the
registries' names (the refusals first of issue #39 rest on this)."""

from __future__ import annotations

import os
import subprocess
import sys

from vscr_cli.cli import COMMANDS
from vscr_cli.core.models.motion import MOTION_ENCODERS
from vscr_cli.core.models.architectures import ARCHITECTURES, names
from vscr_cli.settings import cam, model

from .conftest import REPO

#: What the settings never import; the command modules import none of it but zarr (options checks outputs with vscr_cli.store).
HEAVY = ("torch", "timm", "higra", "cv2", "skimage", "pytorch_grad_cam", "dask", "distributed", "zarr")
SETTINGS = ("run", "edges", "cam", "model", "train", "predict", "refine", "demo")
#: The commands whose stages import torch.
HEAVY_COMMANDS = ("weights", "edges", "cam", "train", "refine", "predict", "demo")


def _imported_after(modules: list[str]) -> set[str]:
    """The HEAVY modules a fresh interpreter holds after importing ``modules`` from this checkout."""
    code = f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_settings_import_none_of_the_heavy_libraries():
    assert _imported_after([f"vscr_cli.settings.{name}" for name in SETTINGS] + ["vscr_cli.core.params"]) == set()


def test_command_modules_import_their_stages_only_when_they_run():
    assert set(HEAVY_COMMANDS) <= set(COMMANDS)
    assert _imported_after(["vscr_cli.options"] + [f"vscr_cli.commands.{name}" for name in HEAVY_COMMANDS]) <= {"zarr"}


def test_model_choices_are_the_registries_names():
    assert model.BACKBONES == names("backbone") == tuple(name for name, entry in ARCHITECTURES.items() if entry.backbone is not None)
    assert model.MOTIONS == (*MOTION_ENCODERS, model.NO_MOTION)
    assert cam.ARCHITECTURES == names("classifier") == ("tf_efficientnet_lite0", "tf_efficientnet_lite2", "resnet50")
