"""Optical flow, warping and the reliability mask of Ruder et al. (2016): pure functions on arrays.

Conventions: a flow `f` from image A to image B is HxWx2 float32 (dx, dy) such that the pixel at
(x, y) in A is found at (x + dx, y + dy) in B. `warp(B, f)` then samples B at those places, giving
B brought into A's frame. Flow is computed with OpenCV's DIS on grayscale frames (no TensorFlow).
"""

from __future__ import annotations

import cv2
import numpy as np

PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def gray(image: np.ndarray) -> np.ndarray:
    """uint8 grayscale of an RGB uint8 (or float 0..255) image."""
    if image.ndim == 2:
        return image.astype(np.uint8)
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def compute(a: np.ndarray, b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS flow from grayscale frame a to grayscale frame b."""
    dis = cv2.DISOpticalFlow_create(PRESETS[preset])  # type: ignore[attr-defined]
    return dis.calc(a, b, None).astype(np.float32)  # type: ignore[no-any-return]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at (x + dx, y + dy): the image brought into the frame the flow starts from."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image.astype(np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliability(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Ruder's mask on frame A: 1 where the flow is trusted, 0 where not.

    `forward` is the flow from A to B (w^), `backward` from B to A. A pixel of A is unreliable when
    the round trip does not come back (disocclusion: |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5, with
    w~ the backward flow warped into A), when it leaves the image, or on a motion boundary
    (|grad u|^2 + |grad v|^2 > 0.01 |w^|^2 + 0.002).
    """
    h, w = forward.shape[:2]
    back_in_a = warp(backward, forward)
    round_trip = np.sum((back_in_a + forward) ** 2, axis=-1)
    occluded = round_trip > 0.01 * (np.sum(back_in_a ** 2, axis=-1) + np.sum(forward ** 2, axis=-1)) + 0.5
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = grid_x + forward[..., 0], grid_y + forward[..., 1]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    du_y, du_x = np.gradient(forward[..., 0])
    dv_y, dv_x = np.gradient(forward[..., 1])
    boundary = du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2 > 0.01 * np.sum(forward ** 2, axis=-1) + 0.002
    return (~(occluded | outside | boundary)).astype(np.float32)


# Flow for guiding is computed at most this large and scaled up (it is smooth): at 640x360 that
# cut the guide from ~300 to ~100 ms here, next to ~800 ms for the fast engine itself.
GUIDE_MAX_SIDE = 384


def guide(prev_styled: np.ndarray, prev_gray: np.ndarray, cur_gray: np.ndarray,
          preset: str = "medium") -> tuple[np.ndarray, np.ndarray]:
    """The previous styled frame brought into the current frame, and where that can be trusted.

    Returns (warped float32 HxWx3 in 0..255, mask float32 HxW in {0, 1}), both on the current frame.
    """
    h, w = cur_gray.shape[:2]
    scale = min(1.0, GUIDE_MAX_SIDE / max(h, w))
    if scale < 1:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        small_prev = cv2.resize(prev_gray, size, interpolation=cv2.INTER_AREA)
        small_cur = cv2.resize(cur_gray, size, interpolation=cv2.INTER_AREA)
    else:
        small_prev, small_cur = prev_gray, cur_gray
    to_prev = compute(small_cur, small_prev, preset)   # current -> previous
    to_cur = compute(small_prev, small_cur, preset)    # previous -> current
    mask = reliability(to_prev, to_cur)
    if scale < 1:
        sx, sy = w / to_prev.shape[1], h / to_prev.shape[0]
        to_prev = cv2.resize(to_prev, (w, h), interpolation=cv2.INTER_LINEAR) * np.array([sx, sy], np.float32)
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return warp(prev_styled, to_prev), mask


def blend(styled: np.ndarray, warped: np.ndarray, mask: np.ndarray, weight: float) -> np.ndarray:
    """Pull reliable pixels toward the warped previous output: weight 0 keeps `styled`, 1 copies `warped`."""
    alpha = np.clip(weight, 0.0, 1.0) * mask[..., None]
    out = (1.0 - alpha) * styled.astype(np.float32) + alpha * warped.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def pair_error(prev: np.ndarray, cur: np.ndarray, prev_source: np.ndarray, cur_source: np.ndarray,
               preset: str = "medium") -> float:
    """Lai et al. warping error of one pair: cur warped onto prev with flow on the source frames.

    E = sum M (warp(cur) - prev)^2 / sum M, RGB in [0, 1], the square summed over channels.
    """
    a, b = gray(prev_source), gray(cur_source)
    forward, backward = compute(a, b, preset), compute(b, a, preset)
    mask = reliability(forward, backward)
    diff = warp(cur, forward) / 255.0 - prev.astype(np.float32) / 255.0
    total = float(mask.sum())
    if total == 0:
        return 0.0
    return float(np.sum(mask[..., None] * diff ** 2) / total)
