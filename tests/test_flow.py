"""Flow, warp, reliability mask and warping error on synthetic images with known motion."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import flow, metrics
from tests.helpers import shift, texture


def test_warp_with_exact_flow_brings_back_the_image() -> None:
    a = texture()
    b = shift(a, 3)
    to_b = np.zeros(a.shape[:2] + (2,), np.float32)
    to_b[..., 0] = 3.0  # each pixel of a is 3 px to the right in b
    back = flow.warp(b, to_b)
    assert np.abs(back[:, :-3].astype(float) - a[:, :-3]).max() < 1e-3


def test_translated_frame_warps_back_where_reliable_and_masks_the_disoccluded_strip() -> None:
    a = texture()
    b = shift(a, 4)
    ga, gb = flow.gray(a), flow.gray(b)
    b_to_a = flow.compute(gb, ga)
    a_to_b = flow.compute(ga, gb)
    warped = flow.warp(a, b_to_a)  # a brought onto b's frame
    mask = flow.reliability(b_to_a, a_to_b)
    inner = (slice(8, -8), slice(12, -8))
    assert np.median(b_to_a[inner][..., 0]) == pytest.approx(-4, abs=0.3)
    reliable = mask[inner] > 0
    assert reliable.mean() > 0.9
    error = np.abs(warped[inner][reliable] - b[inner][reliable].astype(np.float32))
    assert np.median(error) < 3
    # the 4 px strip that entered on the left has no source in a: masked
    assert mask[:, :3].mean() < 0.5


def test_round_trip_failure_is_masked() -> None:
    flow_ab = np.zeros((20, 20, 2), np.float32)
    flow_ba = np.zeros((20, 20, 2), np.float32)
    flow_ab[5:10, 5:10, 0] = 3.0  # those pixels move right, but nothing comes back: occluded
    mask = flow.reliability(flow_ab, flow_ba)
    assert mask[5:10, 6:9].max() == 0
    assert mask[15:, 15:].min() == 1


def test_pixels_that_leave_the_frame_are_masked() -> None:
    flow_ab = np.full((10, 10, 2), 0.0, np.float32)
    flow_ab[..., 0] = 2.0
    flow_ba = -flow_ab
    mask = flow.reliability(flow_ab, flow_ba)
    assert mask[:, -2:].max() == 0 and mask[:, :6].min() == 1


def test_blend_weight_zero_keeps_styled_and_one_copies_reliable_pixels() -> None:
    styled = np.full((4, 4, 3), 100, np.uint8)
    warped = np.full((4, 4, 3), 200.0, np.float32)
    mask = np.zeros((4, 4), np.float32)
    mask[:2] = 1
    assert (flow.blend(styled, warped, mask, 0.0) == 100).all()
    full = flow.blend(styled, warped, mask, 1.0)
    assert (full[:2] == 200).all() and (full[2:] == 100).all()
    assert (flow.blend(styled, warped, mask, 0.5)[:2] == 150).all()


def test_warping_error_is_lower_for_a_steady_sequence_than_a_flickering_one() -> None:
    rng = np.random.default_rng(1)
    base = texture()
    sources = [shift(base, 2 * t) if t else base for t in range(4)]
    steady = [s.copy() for s in sources]
    flicker = [np.clip(s.astype(int) + rng.integers(-40, 40, s.shape), 0, 255).astype(np.uint8) for s in sources]
    e_steady = metrics.warping_error(steady, sources)
    e_flicker = metrics.warping_error(flicker, sources)
    assert e_steady is not None and e_flicker is not None
    assert e_flicker > 5 * e_steady, (e_steady, e_flicker)


def test_runs_split_frames_into_consecutive_runs_and_spread_samples() -> None:
    assert metrics.runs([1, 2, 3, 5, 6, 9]) == [[1, 2, 3], [5, 6], [9]]
    assert metrics.spread(list(range(1, 101)), 3) == [1, 51, 100]
    assert metrics.spread([4, 5], 16) == [4, 5]
