"""The architecture registry (vscr_cli.core.models.architectures): complete entries, and a backbone
added by registering it in one module is offered and built everywhere (issue #37)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from vscr_cli import weights
from vscr_cli.core.models.architectures import ARCHITECTURES, Architecture, architecture, names, register
from vscr_cli.core.models.backbones import build_efficientnet_lite, build_resnet

#: A registry module as a contributor would write it (architectures/tiny.py): a small CNN backbone,
#: registered, then the command line and the model builder used without touching any other file.
NEW_MODULE = '''
from torch import nn

from vscr_cli.core.models.architectures import Architecture, register
from vscr_cli.core.models.backbones import Backbone


def backbone(imagenet_state_dict, output_stride):
    stages = [nn.Sequential(nn.Conv2d(3 if i == 0 else 8 * i, 8 * (i + 1), 3, stride=2 if i < 3 else 1, padding=1), nn.ReLU()) for i in range(4)]

    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList(stages)

        def forward(self, images):
            features, outputs = images, []
            for stage in self.stages:
                features = stage(features)
                outputs.append(features)
            return outputs

    return Backbone(Body(), [8, 16, 24, 32], [2, 4, 8, 8])


register(Architecture(name="tiny_cnn", description="a four-layer CNN (test)", mean=(0.5,) * 3, std=(0.5,) * 3, weights="", backbone=backbone))
'''


def test_every_entry_names_known_weights_and_its_capabilities_build():
    known = set(weights.REGISTRY) | set(weights.HUB_FILES)
    for entry in ARCHITECTURES.values():
        assert entry.weights in known, entry.name
        assert entry.capabilities, entry.name
        assert (entry.cam_layer is not None) == ("classifier" in entry.capabilities), entry.name
    assert names("classifier") == ("tf_efficientnet_lite0", "tf_efficientnet_lite2", "resnet50")
    assert names("backbone") == ("tf_efficientnet_lite0", "tf_efficientnet_lite2", "resnet50", "resnet101")
    for name, blocks in (("tf_efficientnet_lite0", 16), ("tf_efficientnet_lite2", 21)):
        lite = ARCHITECTURES[name]
        classifier = lite.classifier(7, None)
        assert type(classifier) is type(build_efficientnet_lite(name, 7)) and sum(map(len, classifier.blocks)) == blocks
        assert lite.cam_layer(classifier) is not None
    resnet = ARCHITECTURES["resnet50"].classifier(7, None)
    assert resnet.fc.out_features == 7 and type(resnet) is type(build_resnet(50, 7))
    assert ARCHITECTURES["resnet50"].cam_layer(resnet) is resnet.layer4[-1]


def test_a_capability_an_architecture_lacks_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="unknown classifier architecture 'resnet101'; choose one of tf_efficientnet_lite0, tf_efficientnet_lite2, resnet50"):
        architecture("resnet101", "classifier", "classifier architecture")
    with pytest.raises(ValueError, match="registered twice"):
        register(ARCHITECTURES["resnet50"])
    with pytest.raises(ValueError, match="needs its cam_layer"):
        register(Architecture(name="no_layer", description="", mean=(0.5,) * 3, std=(0.5,) * 3, weights="", classifier=lambda n, s: torch.nn.Identity()))


def test_a_backbone_registered_in_one_module_is_offered_and_built_everywhere(tmp_path):
    (tmp_path / "tiny.py").write_text(NEW_MODULE)
    check = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import tiny  # the new module: it registers tiny_cnn
        import torch
        from vscr_cli.cli import run
        from vscr_cli.model_folders import build_model
        from vscr_cli.settings.train import resolve
        assert run(["train", "--device", "cpu", "--print-config", "--backbone", "tiny_cnn", "--crop", "32"]) == 0
        config = resolve("cpu", flags={{"backbone": "tiny_cnn", "crop": 32, "motion": "none", "action_head": False}})
        output = build_model(config)(torch.rand(2, 3, 32, 48))
        print("logits", tuple(output.logits.shape))
        """
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'backbone = "tiny_cnn"' in done.stdout and "logits (2, 44, 4, 6)" in done.stdout
    helped = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import tiny; from vscr_cli.cli import run; run(['train', '--help'])"], capture_output=True, text=True, env={"COLUMNS": "300", "PATH": ""})
    assert "resnet101|tiny_cnn>" in helped.stdout and "four-layer CNN" in helped.stdout  # the choices and their help
