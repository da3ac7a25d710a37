"""Batch-norm folding for inference: an eval-mode BatchNorm2d right after a convolution is an affine
map per channel, so it can be folded into that convolution's weights and bias (torch's
``fuse_conv_bn_eval``) and skipped. The frozen networks of ``vscr cam`` (Grad-CAM++ of the
classifier) and ``vscr predict`` spend a fifth to a third of their CPU time in separate batch-norm
passes over their activations; folded, the outputs are the same up to float rounding."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: How far the folded network's probe output may move, relative to the output's largest magnitude.
FOLD_TOLERANCE = 1e-4


def conv_bn_pairs(model: nn.Module, probe: Callable[[nn.Module], Tensor]) -> tuple[list[tuple[str, str]], Tensor]:
    """(convolution, batch norm) module names of ``model`` where the batch norm took that
    convolution's output as its input when ``probe(model)`` ran, and what the probe returned."""
    produced: dict[int, tuple[str, Tensor]] = {}  # the outputs stay referenced, so no id is reused
    pairs: list[tuple[str, str]] = []

    def conv_hook(name: str) -> Callable:
        return lambda module, args, output: produced.__setitem__(id(output), (name, output))

    def norm_hook(name: str) -> Callable:
        return lambda module, args: pairs.append((produced[id(args[0])][0], name)) if id(args[0]) in produced else None

    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook(name)))
        elif isinstance(module, nn.BatchNorm2d):
            hooks.append(module.register_forward_pre_hook(norm_hook(name)))
    try:
        with torch.no_grad():
            output = probe(model)
    finally:
        for hook in hooks:
            hook.remove()
    return pairs, output


def folded(model: nn.Module, probe: Callable[[nn.Module], Tensor]) -> nn.Module:
    """A copy of the eval-mode ``model`` with every batch norm that follows a convolution (found by
    running ``probe``, e.g. ``lambda m: m(sample)``) folded into it and replaced by what comes after
    the normalisation in the module (timm's ``BatchNormAct2d``: its dropout and activation; else
    nothing). ``model`` itself where nothing folds or the folded copy's probe output differs by more
    than :data:`FOLD_TOLERANCE` (a convolution whose output also feeds something else)."""
    if model.training:
        raise ValueError("batch norms fold only in eval mode")
    pairs, expected = conv_bn_pairs(model, probe)
    if not pairs:
        return model
    copied = copy.deepcopy(model)
    modules = dict(copied.named_modules())
    for conv_name, norm_name in pairs:
        conv, norm = modules[conv_name], modules[norm_name]
        fused = fuse_conv_bn_eval(conv, norm)
        conv.weight, conv.bias = fused.weight, fused.bias
        after: nn.Module = nn.Sequential(norm.drop, norm.act) if hasattr(norm, "act") and hasattr(norm, "drop") else nn.Identity()
        parent, _, attribute = norm_name.rpartition(".")
        setattr(modules[parent] if parent else copied, attribute, after)
    with torch.no_grad():
        got = probe(copied).float()
    expected = expected.float()
    if (got - expected).abs().max() > FOLD_TOLERANCE * max(1.0, float(expected.abs().max())):
        return model
    return copied
