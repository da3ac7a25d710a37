"""Motion evidence for pseudo-labels: optical flow with the camera's motion removed.

The actor of an action video moves against its background; a hand-held or panning camera
moves the whole frame. Dense Farneback flow (OpenCV) from a frame to a nearby frame, minus
the flow of a homography fitted with RANSAC (``cv2.findHomography``) to the flow tracked at
a regular grid of points, leaves the motion of whatever does not follow the dominant
(background) motion: the actor, and some parallax. A grid rather than corner features
(``cv2.goodFeaturesToTrack``): corners crowd on textured buildings and let the fit miss the
ground plane (davis-dev foreground IoU 41.5 with corners, 44.6 with the grid, docs/cam.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from vscr_cli.core.flow import FARNEBACK, gray, pair_flow

#: Spacing in pixels of the grid of points the camera homography is fitted to.
GRID_STEP = 8
#: RANSAC reprojection tolerance, pixels.
RANSAC_PIXELS = 1.0
#: The motion encoder's Farneback parameters with one more pyramid level (larger motions; docs/cam.md).
CAMERA_FARNEBACK = (*FARNEBACK[:1], 4, *FARNEBACK[2:])


def residual_flow(frame: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(H, W) float32: magnitude in pixels of the flow from ``frame`` to ``other`` less the camera's.

    Both frames are (H, W, 3) uint8 RGB of one size. When no homography fits, the raw flow
    magnitude is returned.
    """
    flow = pair_flow(gray(frame), gray(other), CAMERA_FARNEBACK)
    height, width = flow.shape[:2]
    rows, columns = (axis.ravel() for axis in np.mgrid[GRID_STEP // 2 : height : GRID_STEP, GRID_STEP // 2 : width : GRID_STEP])
    if len(rows) >= 4:
        points = np.stack([columns, rows], 1).astype(np.float32)
        homography, _ = cv2.findHomography(points, points + flow[rows, columns], cv2.RANSAC, RANSAC_PIXELS)
        if homography is not None:
            grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)), -1)
            camera = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(height, width, 2) - grid
            flow = flow - camera
    return np.linalg.norm(flow, axis=-1).astype(np.float32)


def normalise_motion(magnitudes: np.ndarray, quantile: float = 0.95, floor: float = 1.0) -> np.ndarray:
    """(T, H, W) residual magnitudes -> [0, 1], divided by each frame's ``quantile`` (at least ``floor`` px)."""
    scale = np.maximum(np.quantile(magnitudes.reshape(len(magnitudes), -1), quantile, axis=1), floor)
    return np.clip(magnitudes / scale[:, None, None], 0, 1).astype(np.float32)
