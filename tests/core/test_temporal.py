import numpy as np
import torch

from vscr_cli.core.flow import gray, pair_flow
from vscr_cli.core.temporal import consistent, flow_to_cells, fused, neighbours, temporal_frames, warp

CELL = 8


def _scene(left: int, size: tuple[int, int] = (96, 128), side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A textured square at column ``left`` on a textured ground: (H, W, 3) uint8 and its (H, W) bool mask."""
    rows, cols = size
    ground = np.random.default_rng(1).integers(40, 120, (rows, cols + 64, 3))
    square = np.random.default_rng(2).integers(150, 255, (side, side, 3))
    image = ground[:, :cols].copy()  # the ground stays, the square moves
    top = (rows - side) // 2
    image[top : top + side, left : left + side] = square
    mask = np.zeros((rows, cols), bool)
    mask[top : top + side, left : left + side] = True
    return image.astype(np.uint8), mask


def _cell_prob(mask: np.ndarray) -> torch.Tensor:
    """(2, h, w) background/actor probabilities at stride-8 cells: the actor's share of each cell."""
    share = torch.nn.functional.avg_pool2d(torch.from_numpy(mask.astype(np.float32))[None, None], CELL)[0, 0]
    return torch.stack([1 - share, share])


def test_frames_and_neighbours_stay_inside_the_video():
    assert temporal_frames([0, 5, 9], 1, 10) == [0, 1, 4, 5, 6, 8, 9]
    assert neighbours(0, 2, {0, 1, 2, 3}) == [1, 2]
    assert neighbours(5, 1, set(temporal_frames([5], 1, 10))) == [4, 6]


def test_warp_reads_the_neighbour_where_the_flow_points():
    prob = torch.zeros(2, 4, 6)
    prob[1, 1, 3] = 1.0  # the neighbour's object at column 3
    flow = torch.zeros(4, 6, 2)
    flow[..., 0] = 2.0  # every cell of the frame moves two cells right in the neighbour
    sampled, valid = warp(prob, flow)
    assert sampled[1, 1, 1] == 1.0 and sampled[1].sum() == 1.0  # the frame's column 1 reads column 3
    assert valid[:, :4].all() and not valid[:, 4:].any()  # columns 4 and 5 land outside the neighbour


def test_fusion_along_flow_keeps_a_moving_object_where_it_is():
    """A square moving one cell (8 px) a frame: its probabilities on the frames before and after, fused along
    Farneback's flow, stay on the square; fused without moving them they smear across its path."""
    frames = [_scene(48 + 8 * step) for step in (-1, 0, 1)]
    probs = [_cell_prob(mask) for _, mask in frames]
    centre = gray(frames[1][0])
    cells = tuple(probs[1].shape[-2:])
    flows = []
    for k in (0, 2):
        forward, backward = pair_flow(centre, gray(frames[k][0])), pair_flow(gray(frames[k][0]), centre)
        flows.append(flow_to_cells(forward, consistent(forward, backward), cells))
    neighbour_probs = (probs[0], probs[2])
    along_flow = fused(probs[1], [(prob, flow, weight) for prob, (flow, weight) in zip(neighbour_probs, flows)])
    in_place = fused(probs[1], [(prob, torch.zeros_like(flow), weight) for prob, (flow, weight) in zip(neighbour_probs, flows)])
    error = lambda prob: (prob[1] - probs[1][1]).abs().mean().item()  # noqa: E731
    assert error(along_flow) < 0.1 * error(in_place)
    torch.testing.assert_close(along_flow.sum(0), torch.ones(cells))


def test_the_forward_backward_check_trusts_only_flow_that_returns():
    forward = np.zeros((20, 30, 2), np.float32)
    forward[..., 0] = 5.0
    backward = np.zeros_like(forward)
    backward[..., 0] = -5.0
    backward[:, 20:] = 0.0  # the neighbour's right part does not flow back: as at an occlusion
    trusted = consistent(forward, backward)
    assert trusted[:, :15].all() and not trusted[:, 15:].any()  # pixels landing at column 20 or beyond are not trusted
    flow, share = flow_to_cells(forward, trusted, (5, 6))
    torch.testing.assert_close(flow[..., 0], torch.ones(5, 6))  # 5 px are one 5-px cell
    assert share[:, :2].eq(1).all() and share[:, 4:].eq(0).all()


def test_an_untrusted_neighbour_does_not_vote():
    prob, other = torch.tensor([[[0.9]], [[0.1]]]), torch.tensor([[[0.1]], [[0.9]]])
    still = torch.zeros(1, 1, 2)
    torch.testing.assert_close(fused(prob, [(other, still, torch.zeros(1, 1))]), prob)
    torch.testing.assert_close(fused(prob, [(other, still, torch.ones(1, 1))]), torch.full((2, 1, 1), 0.5))
