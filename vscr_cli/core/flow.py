"""Dense optical flow of frame pairs, the input of the flow motion encoder.

A motion clip (frames f_0 .. f_{T-1}, see ``clip_frames`` beside the motion encoders) is described
by the OpenCV Farneback flow of its consecutive pairs (f_i, f_{i+1}), stacked into
(2 * (T - 1), H, W) float32 in pixels / ``FLOW_SCALE`` (x then y of each pair). Clips around
nearby frames share most of their pairs, so :class:`PairFlows` computes each pair once and
keeps it until told to forget it; :func:`flow_stack` is the same computation for one clip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

FLOW_SCALE = 10.0  # flow in pixels is divided by this before the encoder
#: Farneback parameters: pyramid scale, levels, window size, iterations, poly_n, poly_sigma, flags
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)


def gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def pair_flow(first: np.ndarray, second: np.ndarray, parameters: tuple = FARNEBACK) -> np.ndarray:
    """Farneback flow from one (H, W) uint8 grey frame to the next: (H, W, 2) float32 (x, y) in pixels."""
    return cv2.calcOpticalFlowFarneback(first, second, None, *parameters)


def clip_pairs(clip: Sequence[int]) -> list[tuple[int, int]]:
    """The consecutive (first, second) frame pairs of a clip of frame numbers."""
    return list(zip(clip, clip[1:]))


def stack_flows(flows: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W, 2) pixel flows of a clip's pairs -> (2 * len(flows), H, W) float32 / FLOW_SCALE."""
    return np.concatenate([flow.transpose(2, 0, 1) for flow in flows]).astype(np.float32, copy=False) / FLOW_SCALE


def flow_stack(clip: Sequence[np.ndarray]) -> np.ndarray:
    """Flow between consecutive (H, W, 3) uint8 frames of one clip: (2 * (T - 1), H, W) float32 / FLOW_SCALE."""
    grays = [gray(frame) for frame in clip]
    return stack_flows([pair_flow(a, b) for a, b in zip(grays, grays[1:])])


class PairFlows:
    """Flow stacks of clips of one video, each frame pair computed once.

    ``frame(n)`` gives frame n as (H, W, 3) uint8. Pairs and grey frames are kept until
    :meth:`forget` drops those before a frame, which bounds the memory when clips are taken in
    increasing order (as prediction does): about one (H, W, 2) float32 flow per frame of the
    span the live clips cover.
    """

    def __init__(self, frame: Callable[[int], np.ndarray]) -> None:
        self.frame = frame
        self.grays: dict[int, np.ndarray] = {}
        self.flows: dict[tuple[int, int], np.ndarray] = {}

    def _gray(self, number: int) -> np.ndarray:
        if number not in self.grays:
            self.grays[number] = gray(self.frame(number))
        return self.grays[number]

    def pair(self, first: int, second: int) -> np.ndarray:
        """(H, W, 2) float32 flow in pixels from frame ``first`` to frame ``second``."""
        key = (first, second)
        if key not in self.flows:
            self.flows[key] = pair_flow(self._gray(first), self._gray(second))
        return self.flows[key]

    def stack(self, clip: Sequence[int]) -> np.ndarray:
        """The flow stack of a clip of frame numbers: (2 * (T - 1), H, W) float32 / FLOW_SCALE, as :func:`flow_stack`."""
        return stack_flows([self.pair(a, b) for a, b in clip_pairs(clip)])

    def forget(self, before: int) -> None:
        """Drop the pairs and grey frames that start before frame ``before``."""
        self.flows = {key: flow for key, flow in self.flows.items() if key[0] >= before}
        self.grays = {number: image for number, image in self.grays.items() if number >= before}
