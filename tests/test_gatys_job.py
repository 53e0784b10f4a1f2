"""The gatys engine through the real CLI: real workers, real TensorFlow, real SqueezeNet weights."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from tests.helpers import ASSETS, assets_or_skip, frame_stats, make_clip


@pytest.fixture()
def gatys_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    assets_or_skip("models/squeezenet")
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(ASSETS / "models"))
    return Path(env["VPIPE_JOBS_DIR"])


def painting(path: Path) -> Path:
    y, x = np.mgrid[0:64, 0:64]
    image = np.stack([np.sin(x / 3) * 120 + 128, np.cos(y / 4) * 120 + 128, (x * y) % 256], -1).astype(np.uint8)
    cv2.imwrite(str(path), image)
    return path


def test_gatys_video_mode_job_records_stats_and_measures(tmp_path: Path, gatys_env: Path,
                                                         vpipe: Callable[..., Result]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="64x48", seconds=0.3)
    style = painting(tmp_path / "my painting.png")
    assert vpipe("split", str(clip), "--job", "g").exit_code == 0
    result = vpipe("stylize", "--engine", "gatys", "--style", str(style), "--iterations", "3", "--range", "1-6",
                   "--chunk", "3", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "6 frames styled, 0 failed" in result.output
    per_frame = frame_stats(gatys_env / "g" / "manifest.sqlite")
    assert sorted(per_frame) == [1, 2, 3, 4, 5, 6]
    assert per_frame[1]["init"] == "content" and per_frame[1]["iterations"] == 6  # cold: twice the budget
    assert all(per_frame[i]["init"] == "warped" for i in range(2, 7))
    assert per_frame[4]["previous"] in ("done", "warmup 2")  # chunk border: never a cold start
    assert all(isinstance(s["loss"], float) and s["iterations"] <= 6 for s in per_frame.values())

    report = vpipe("metrics", "--json")
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    assert data["frames"] == 6 and data["pairs"] == 5
    assert data["warping_error"] > 0 and data["style_loss"] > 0 and data["source_style_loss"] > 0
    saved = json.loads((gatys_env / "g" / "metrics.json").read_text())
    assert saved[f"1-{data['last']}"]["warping_error"] == data["warping_error"]
    table = vpipe("metrics", "--range", "1-3")
    assert table.exit_code == 0 and "E_warp" in table.output and "2 consecutive pairs" in table.output

    changed = vpipe("stylize", "--iterations", "4")
    assert changed.exit_code == 2 and "other settings" in changed.output and "params" in changed.output
    resumed = vpipe("stylize", "--range", "7-7")  # the job's own settings: gatys, video mode
    assert resumed.exit_code == 0, resumed.output
    assert frame_stats(gatys_env / "g" / "manifest.sqlite")[7]["previous"] == "done"


@pytest.mark.parametrize(("make", "code", "message"), [
    (lambda p: p / "missing.jpg", 2, "no such file"),
    (lambda p: (p / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg") and p / "corrupt.jpg", 1,
     "not a readable image"),
])
def test_bad_style_images_are_one_line(tmp_path: Path, gatys_env: Path, vpipe: Callable[..., Result],
                                       make: Callable[[Path], Path], code: int, message: str) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="32x32", seconds=0.1, audio=0)
    assert vpipe("split", str(clip)).exit_code == 0
    result = vpipe("stylize", "--engine", "gatys", "--style", str(make(tmp_path)))
    assert result.exit_code == code and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_gatys_options_are_refused_for_other_engines(tmp_path: Path, gatys_env: Path,
                                                     vpipe: Callable[..., Result]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="32x32", seconds=0.1, audio=0)
    assert vpipe("split", str(clip)).exit_code == 0
    result = vpipe("stylize", "--engine", "posterize", "--style", str(ASSETS / "models/squeezenet"),
                   "--iterations", "5")
    assert result.exit_code == 2 and "--iterations: only for the gatys engine" in result.output


def test_missing_or_damaged_feature_weights_say_what_to_place_where(tmp_path: Path, gatys_env: Path,
                                                                    vpipe: Callable[..., Result],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="32x32", seconds=0.1, audio=0)
    style = painting(tmp_path / "p.png")
    assert vpipe("split", str(clip)).exit_code == 0
    models = tmp_path / "models"
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    missing = vpipe("stylize", "--engine", "gatys", "--style", str(style), "--net", "vgg19")
    assert missing.exit_code == 1
    assert f"{models}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in missing.output
    assert "storage.googleapis.com" in missing.output
    damaged = models / "squeezenet" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
    damaged.parent.mkdir(parents=True)
    real = (ASSETS / "models" / "squeezenet" / damaged.name).read_bytes()
    damaged.write_bytes(real[:-100] + b"\0" * 100)
    result = vpipe("stylize", "--engine", "gatys", "--style", str(style))
    assert result.exit_code == 1 and "damaged or not the published one" in result.output
    assert len(result.output.strip().splitlines()) == 1
