import numpy as np
import skimage.data

from vscr_cli.core.motion_evidence import normalise_motion, residual_flow


def _scene(pan: int, actor_shift: int) -> np.ndarray:
    """A 160x240 crop of skimage's astronaut photo panned by ``pan`` px, with a 40x40 coffee patch shifted a further ``actor_shift``."""
    background = skimage.data.astronaut()[100:260, 100 + pan : 340 + pan].copy()
    patch = skimage.data.coffee()[150:190, 200:240]
    left = 100 - pan + actor_shift
    background[60:100, left : left + 40] = patch
    return np.ascontiguousarray(background)


def test_residual_flow_keeps_the_actor_and_removes_the_camera_pan():
    first, second = _scene(0, 0), _scene(4, 5)
    motion = residual_flow(first, second)
    assert motion.shape == first.shape[:2] and motion.dtype == np.float32
    actor = motion[65:95, 105:135]
    background = np.concatenate([motion[:40].ravel(), motion[120:].ravel()])
    assert np.median(actor) > 2.5  # the patch moved 5 px against the background
    assert np.median(background) < 0.5  # the 4 px pan is explained by the homography


def test_normalise_motion_scales_each_frame_by_its_quantile_with_a_floor():
    magnitudes = np.stack([np.linspace(0, 10, 100).reshape(10, 10), np.full((10, 10), 0.2)]).astype(np.float32)
    normalised = normalise_motion(magnitudes, quantile=0.5, floor=1.0)
    assert normalised.max() == 1 and normalised.min() == 0
    np.testing.assert_allclose(normalised[0, 0, 3], 0.303 / 5, atol=0.01)  # 3.03 px over the median 5 px
    np.testing.assert_allclose(normalised[1], 0.2)  # a still frame stays low: the floor (1 px) scales it
