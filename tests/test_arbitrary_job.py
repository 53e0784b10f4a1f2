"""`vpipe stylize --style PAINTING` with the arbitrary engine: real CLI, real workers, real TF Lite models."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from tests.helpers import assets_or_skip, make_clip


@pytest.fixture()
def jobs(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(assets_or_skip("models/magenta_tflite").parent))
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(tmp_path / "styles"))
    return Path(env["VPIPE_JOBS_DIR"])


def settings(jobs: Path, name: str) -> dict[str, object]:
    with sqlite3.connect(jobs / name / "manifest.sqlite") as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
    return dict(json.loads(row[0]))


def test_any_painting_through_the_cli(tmp_path: Path, jobs: Path, vpipe: Callable[..., Result]) -> None:
    painting = assets_or_skip("styles/the_scream.jpg")
    clip = make_clip(tmp_path / "clip.mp4", size="160x90", seconds=0.3)
    assert vpipe("split", str(clip), "--job", "a").exit_code == 0
    result = vpipe("stylize", "--style", str(painting), "--strength", "0.8", "--range", "1-4", "--chunk", "2")
    assert result.exit_code == 0, result.output
    assert "4 frames styled, 0 failed" in result.output
    stored = settings(jobs, "a")
    assert stored["engine"] == "arbitrary" and stored["params"] == {"strength": 0.8}
    assert str(stored["model"]).endswith("magenta_tflite") and stored["image"] == str(painting.resolve())
    source = cv2.imread(str(jobs / "a/frames/000003.png"))
    styled = cv2.imread(str(jobs / "a/styled/000003.png"))
    assert styled.shape == source.shape == (90, 160, 3)
    assert np.abs(styled.astype(int) - source).mean() > 20
    assert "(engine arbitrary)" in vpipe("status").output

    resumed = vpipe("stylize", "--range", "5-6")  # the job's own settings
    assert resumed.exit_code == 0 and "2 frames styled" in resumed.output
    changed = vpipe("stylize", "--strength", "0.3", "--range", "7-7")
    assert changed.exit_code == 2 and "other settings" in changed.output and "params" in changed.output
    refused = vpipe("stylize", "--engine", "gatys", "--style", str(painting), "--strength", "0.5", "--restart")
    assert refused.exit_code == 2 and "--strength: only for the arbitrary engine" in refused.output
    out_of_range = vpipe("stylize", "--strength", "1.5")
    assert out_of_range.exit_code == 2 and "--strength" in out_of_range.output


def test_a_style_folder_for_the_arbitrary_engine(tmp_path: Path, jobs: Path, vpipe: Callable[..., Result]) -> None:
    folder = tmp_path / "styles" / "starry"
    folder.mkdir(parents=True)
    (folder / "painting.jpg").write_bytes(assets_or_skip("styles/starry_night.jpg").read_bytes())
    (folder / "style.toml").write_text('engine = "arbitrary"\nreference = "painting.jpg"\n'
                                       'params = { strength = 0.7, mode = "upsample" }\n')
    clip = make_clip(tmp_path / "clip.mp4", size="96x64", seconds=0.1, audio=0)
    assert vpipe("split", str(clip), "--job", "s").exit_code == 0
    result = vpipe("stylize", "--style", "starry", "--strength", "0.9")  # the command line wins over the folder
    assert result.exit_code == 0, result.output
    assert settings(jobs, "s")["params"] == {"strength": 0.9, "mode": "upsample"}
    assert cv2.imread(str(jobs / "s/styled/000001.png")).shape == (64, 96, 3)
