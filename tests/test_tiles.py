"""Fixed-size networks on any frame size (pipeline/tiles.py): pure numpy, no TensorFlow."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from pipeline import tiles
from tests.helpers import cut_lines

TILE, OVERLAP = 384, 128


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([np.sin(x / 17), np.cos(y / 23), np.sin((x + y) / 31)], -1) * 0.3 + 0.5
    return np.clip(base + rng.normal(0, 0.05, (h, w, 3)), 0, 1).astype(np.float32)


@pytest.mark.parametrize(("length", "expected"), [(100, [0]), (384, [0]), (640, [0, 256]), (641, [0, 128, 257])])
def test_starts_cover_with_at_least_the_overlap(length: int, expected: list[int]) -> None:
    assert tiles.starts(length, TILE, OVERLAP) == expected


@pytest.mark.parametrize("length", [385, 517, 1080, 1920, 4000])
def test_starts_properties(length: int) -> None:
    origins = tiles.starts(length, TILE, OVERLAP)
    assert origins[0] == 0 and origins[-1] + TILE == length
    assert all(b - a <= TILE - OVERLAP for a, b in pairwise(origins))


def test_ramp_is_positive_symmetric_and_flat_in_the_middle() -> None:
    weights = tiles.ramp(TILE, OVERLAP)
    assert weights.min() > 0 and weights.max() == 1.0
    assert np.allclose(weights, weights[::-1])
    assert np.all(weights[OVERLAP:TILE - OVERLAP] == 1.0)
    assert np.all(np.diff(weights[:OVERLAP]) >= 0) and weights[0] < weights[OVERLAP // 2] < weights[OVERLAP - 1] < 1


@pytest.mark.parametrize("size", [(333, 517), (48, 64), (384, 384), (1080, 1920), (400, 385)])
def test_identity_network_reconstructs_the_frame_exactly(size: tuple[int, int]) -> None:
    frame = image(*size)
    calls = []

    def identity(window: np.ndarray) -> np.ndarray:
        assert window.shape == (TILE, TILE, 3)
        calls.append(1)
        return window

    out = tiles.tiled(frame, identity, TILE, OVERLAP)
    assert out.shape == frame.shape
    np.testing.assert_allclose(out, frame, atol=1e-5)
    assert len(calls) == len(tiles.starts(max(size[0], TILE), TILE, OVERLAP)) * len(tiles.starts(max(size[1], TILE), TILE, OVERLAP))


def step_at(out: np.ndarray, x: int) -> float:
    """Mean |difference| between neighbouring columns x-1 and x."""
    return float(np.abs(out[:, x] - out[:, x - 1]).mean())


def test_feathering_hides_what_a_hard_cut_shows() -> None:
    """A network whose windows disagree in tone (as per-window normalization makes them) leaves a
    step where a hard cut falls; the feathered blend spreads it over the whole overlap."""
    frame = np.clip(image(384, 1000) * 0.7 + np.linspace(0, 0.3, 1000)[None, :, None], 0, 1).astype(np.float32)

    def toned(window: np.ndarray) -> np.ndarray:
        return window + (window.mean() - 0.5) * 2

    hard = tiles.tiled(frame, toned, TILE, OVERLAP, feather=False)
    soft = tiles.tiled(frame, toned, TILE, OVERLAP)
    lines = cut_lines(1000, TILE, OVERLAP)
    interior = np.median([step_at(frame, x) for x in range(1, 1000)])
    assert max(step_at(hard, x) for x in lines) > 2 * interior  # the metric sees a seam when there is one
    assert max(step_at(soft, x) for x in lines) < 1.2 * interior


def test_pad_to_centres_and_mirrors() -> None:
    frame = image(100, 50)
    padded, (top, left) = tiles.pad_to(frame, TILE, TILE)
    assert padded.shape == (TILE, TILE, 3)
    np.testing.assert_array_equal(padded[top:top + 100, left:left + 50], frame)
    assert (top, left) == (142, 167)


def test_guided_upsample_keeps_the_frames_edges() -> None:
    """Upsampling a low-resolution copy: the guided result follows the frame's sharp edge, bicubic does not."""
    import cv2

    frame = np.zeros((360, 640, 3), np.float32)
    frame[:, 321:] = 1.0
    frame[100:110] = 0.5
    low = cv2.resize(frame, (213, 120), interpolation=cv2.INTER_AREA)
    guided = tiles.guided_upsample(low, frame)
    plain = np.clip(cv2.resize(low, (640, 360), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert guided.shape == frame.shape and guided.dtype == np.float32
    assert 0.0 <= guided.min() and guided.max() <= 1.0
    assert np.abs(guided - frame).mean() < 0.5 * np.abs(plain - frame).mean()


def test_upsampled_runs_one_window_and_returns_the_frame_size() -> None:
    frame = image(333, 517)
    calls = []

    def identity(window: np.ndarray) -> np.ndarray:
        calls.append(window.shape)
        return window

    out = tiles.upsampled(frame, identity, TILE)
    assert calls == [(TILE, TILE, 3)] and out.shape == frame.shape
    assert np.abs(out - frame).mean() < 0.03
