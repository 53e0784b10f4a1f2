"""--precision bf16/fp16 keep the fast engine's output within PSNR 45 dB of fp32 on real footage, on the
TF graph and on OpenVINO; the converted net in fp32 (XNNPACK, OpenVINO) equals the graph's (60 dB)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.engines import openvino_cpu
from pipeline.engines.fast.engine import FastEngine
from pipeline.metrics import psnr
from tests.helpers import assets_or_skip

ROOT = Path(__file__).resolve().parents[1]
LIMIT_DB = 45.0


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    """Two real 640x360 frames, 10 s apart."""
    capture = cv2.VideoCapture(str(assets_or_skip("video/slow_traffic_small.mp4")))
    frames = []
    for index in (30, 330):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = capture.read()
        assert ok, f"frame {index} of the clip does not decode"
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lengstrom_fst/wave", "starry_night"])
def test_reduced_precision_stays_within_45_db_of_fp32(model: str, clip_frames: list[np.ndarray]) -> None:
    folder = ROOT / "styles/starry_night/model" if model == "starry_night" else assets_or_skip(f"models/{model}")
    reference = FastEngine(folder).stylize(clip_frames)
    assert all(f.shape == (360, 640, 3) for f in reference)
    for precision in ("bf16", "fp16"):
        out = FastEngine(folder, precision=precision).stylize(clip_frames)
        worst = min(psnr(a, b) for a, b in zip(reference, out, strict=True))
        assert worst >= LIMIT_DB, f"{model} {precision}: PSNR {worst:.1f} dB vs fp32"
    lite = FastEngine(folder, backend="xnnpack").stylize(clip_frames)
    assert min(psnr(a, b) for a, b in zip(reference, lite, strict=True)) >= 60.0


@pytest.mark.slow
@pytest.mark.skipif(not openvino_cpu.available(), reason="the openvino package is not installed")
@pytest.mark.parametrize("model", ["lengstrom_fst/wave", "starry_night"])
def test_openvino_equals_fp32_and_its_bf16_stays_within_45_db(model: str, clip_frames: list[np.ndarray]) -> None:
    folder = ROOT / "styles/starry_night/model" if model == "starry_night" else assets_or_skip(f"models/{model}")
    reference = FastEngine(folder).stylize(clip_frames)
    for precision, limit in (("fp32", 60.0), ("bf16", LIMIT_DB)):
        out = FastEngine(folder, precision=precision, backend="openvino").stylize(clip_frames)
        worst = min(psnr(a, b) for a, b in zip(reference, out, strict=True))
        assert worst >= limit, f"{model} openvino {precision}: PSNR {worst:.1f} dB vs the fp32 graph"
        print(f"{model} openvino {precision}: PSNR {worst:.1f} dB vs the fp32 graph")
