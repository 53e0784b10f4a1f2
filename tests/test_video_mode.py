"""Video mode for every engine: a hard scene cut carries none of the previous shot's strokes, and each
engine's video-mode default is what reaches a job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline import sheet, training
from pipeline.engines import features, gatys
from pipeline.engines.fast.engine import FastEngine
from pipeline.temporal import Sequence, Temporal
from tests.helpers import ASSETS, assets_or_skip, frame_stats, make_clip, texture

SHOT_A = sheet.sample_frame(128, 96)  # a landscape
SHOT_B = np.ascontiguousarray(255 - texture(96, 128, seed=5))  # another shot: nothing in common with A


def fast_engine(tmp_path: Path) -> Any:
    plan = training.Plan(channels=(8, 16, 32), blocks=1)
    training.export(training.init_weights(plan, seed=3), tmp_path / "model", plan.decoder)
    return FastEngine(tmp_path / "model")


def arbitrary_engine(tmp_path: Path) -> Any:
    assets_or_skip("models/magenta_tflite")
    from pipeline.engines.arbitrary import ArbitraryEngine

    return ArbitraryEngine(ASSETS / "models" / "magenta_tflite", sheet.sample_frame(96, 96), threads=1)


def gatys_engine(tmp_path: Path) -> Any:
    settings = gatys.Settings(iterations=8, first_iterations=8)
    return gatys.GatysEngine(texture(64, 64, seed=11), features.load("squeezenet", None), settings)


ENGINES: dict[str, tuple[Callable[[Path], Any], float]] = {
    # engine, its video-mode weight in this test (blend strength; gatys: temporal loss weight)
    "fast": (fast_engine, 0.9),
    "arbitrary": (arbitrary_engine, 0.9),
    "gatys": (gatys_engine, 200.0),
}


@pytest.mark.parametrize("name", list(ENGINES))
def test_a_hard_cut_carries_nothing_of_the_previous_shot(name: str, tmp_path: Path) -> None:
    make, weight = ENGINES[name]
    engine = make(tmp_path)
    shots = [SHOT_A, SHOT_A, SHOT_B]  # two frames of shot A, then a cut to shot B
    video = Sequence(engine, Temporal(weight=weight), lambda i: shots[i - 1], lambda i: None)
    out = [video.stylize(i, shots[i - 1]) for i in (1, 2, 3)]
    assert out[1][1]["reliable"] > 0.5  # within a shot the previous output is trusted ...
    assert out[2][1]["reliable"] < 0.05  # ... across the cut Ruder's mask rejects it
    alone = Sequence(engine, None, lambda i: shots[i - 1], lambda i: None).stylize(3, SHOT_B)[0]
    after_cut = out[2][0].astype(int)
    difference = np.abs(after_cut - alone.astype(int)).mean()
    ghost = np.abs(after_cut - out[1][0].astype(int)).mean()
    # the frame after the cut is what the engine makes of shot B on its own, not a mix with shot A
    assert difference < 0.1 * ghost, f"{name}: {difference:.2f} from the cold frame vs {ghost:.2f} from shot A"



@pytest.mark.parametrize(("engine", "weight"), [("fast", 0.5), ("arbitrary", 0.5), ("gatys", 200.0)])
def test_video_mode_is_on_by_default_for_every_builtin_engine(engine: str, weight: float) -> None:
    # bench/bench_video_mode.py measured that the blend holds the style and the structure for fast and
    # arbitrary (README "Video mode"); gatys has its temporal loss (Ruder et al.)
    from pipeline import settings
    from pipeline.engines import spec_of

    mode = spec_of(engine).video
    assert mode.on and mode.weight == weight
    assert settings._temporal(mode, None, None, resume=False) == {"weight": weight}  # what a new job records
    assert settings._temporal(mode, False, None, resume=False) is None  # --no-temporal


def test_a_job_with_the_shipped_style_runs_in_video_mode_unless_told_not_to(tmp_path: Path, vpipe: Callable[..., Any]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="96x64", seconds=0.2)
    assert vpipe("split", str(clip), "--job", "v").exit_code == 0
    done = vpipe("stylize", "--job", "v", "--workers", "1")
    assert done.exit_code == 0, done.output
    manifest = tmp_path / "jobs" / "v" / "manifest.sqlite"
    count = len(list((tmp_path / "jobs" / "v" / "frames").iterdir()))
    stats = frame_stats(manifest)
    assert count > 2 and "reliable" not in stats.get(1, {})  # frame 1 starts cold
    assert all("reliable" in stats[i] for i in range(2, count + 1))  # each later one is guided by the one before
    off = vpipe("stylize", "--job", "v", "--workers", "1", "--no-temporal", "--restart")
    assert off.exit_code == 0, off.output
    assert all("reliable" not in s for s in frame_stats(manifest).values())  # independent frames
