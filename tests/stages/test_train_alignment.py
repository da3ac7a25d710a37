"""Train/test alignment of the VSCR network: ASPP taps inside the training crop, labels at the cells' centres."""

import torch

from vscr_cli.model_folders import build_model
from vscr_cli.core.models.vscr import labels_at_cells
from vscr_cli.settings.train import resolve


def test_every_aspp_tap_learns_at_the_cpu_presets_crop():
    config = resolve("cpu", flags={"motion": "none"})
    model = build_model(config).train()
    crop = config.crop
    model(torch.randn(2, 3, crop, crop)).embedding.sum().backward()
    atrous = [module for module in model.aspp.modules() if isinstance(module, torch.nn.Conv2d) and module.dilation[0] > 1]
    assert [conv.dilation[0] for conv in atrous] == list(config.aspp_rates())
    for conv in atrous:
        per_tap = conv.weight.grad.abs().sum(dim=(0, 1))  # (3, 3)
        assert (per_tap > 0).all(), f"rate {conv.dilation[0]}: taps without gradient {per_tap}"


def test_rates_follow_the_crop_and_keep_the_papers_at_224():
    assert resolve("paper", flags={}).aspp_rates() == (6, 12, 18)
    assert resolve("cpu", flags={"crop": 96}).aspp_rates() == (3, 5, 8)
    assert resolve("cpu", flags={"crop": 96, "atrous_rates": [6, 12, 18]}).aspp_rates() == (6, 12, 18)


def test_downsampled_label_of_a_centred_square_stays_centred():
    labels = torch.zeros(1, 96, 96, dtype=torch.long)
    labels[:, 34:62, 34:62] = 1  # centred on pixel 47.5 of the crop
    cells = labels_at_cells(labels, torch.Size((12, 12)))[0]
    assert torch.equal(cells, cells.flip(0)) and torch.equal(cells, cells.flip(1))
    assert cells.sum() == 16


def test_downsampled_labels_come_from_where_prediction_puts_them():
    """Upsampling the downsampled map as predict does returns the label at each cell's centre pixel."""
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    labels[:, 20:44, 8:40] = 1
    cells = labels_at_cells(labels, torch.Size((8, 8))).float()
    up = torch.nn.functional.interpolate(cells[:, None], size=(64, 64), mode="bilinear", align_corners=False)[0, 0]
    centres = torch.arange(8) * 8 + 4
    assert torch.equal(up[centres][:, centres].round().long(), labels[0][centres][:, centres])


def test_prediction_works_at_any_frame_size():
    config = resolve("cpu", flags={})
    model = build_model(config).eval()
    for height, width in ((67, 101), (120, 160), (200, 90)):
        motion = torch.zeros(1, 2 * (config.clip_length - 1), height, width)
        prob = model.predict(torch.randn(1, 3, height, width), motion)
        assert prob.shape == (1, 44, height, width)
        torch.testing.assert_close(prob.sum(1), torch.ones(1, height, width))


def test_head_gradient_sets_the_share_of_the_heads_gradient_that_reaches_the_embedding():
    """0 (SPML's, the default) keeps the segmentation head off the embedding; a share s passes s times the gradient."""
    config = resolve("cpu", flags={"motion": "none"})
    frames = torch.randn(2, 3, config.crop, config.crop)
    gradients = {}
    for share in (0.0, 0.5, 1.0):
        torch.manual_seed(0)
        model = build_model(config).train()
        model.head_gradient = share
        model(frames).logits.sum().backward()
        gradients[share] = model.embed.weight.grad
    assert gradients[0.0] is None
    assert gradients[1.0].abs().sum() > 0
    torch.testing.assert_close(gradients[0.5], gradients[1.0] / 2)
