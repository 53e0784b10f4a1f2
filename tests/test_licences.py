"""Every model and style says what its licence allows: the catalogue, `models list`, `styles`, train-style."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pipeline.cli.train import _style_toml
from pipeline.models import catalogue
from pipeline.training import Plan
from tests.helpers import ROOT, assets_or_skip, make_clip


def test_the_project_has_an_apache_licence_and_says_so() -> None:
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"


def test_every_catalogue_entry_names_its_licence() -> None:
    raw = json.loads(catalogue.DATA.read_text())["entries"]
    assert raw and all(isinstance(e.get("licence"), str) and e["licence"] for e in raw)
    assert all(isinstance(e.get("commercial_use"), bool) for e in raw)
    entries = catalogue.entries()
    assert not entries["lengstrom_fst/wave"].commercial_use  # Engstrom's checkpoints: academic use only
    assert entries["magenta_tflite"].commercial_use and entries["magenta_tflite"].licence == "Apache-2.0"


def test_models_list_shows_each_licence(vpipe: Callable[..., Result]) -> None:
    out = vpipe("models", "list").output
    assert out.count("licence: ") == len(catalogue.entries())
    wave = out[out.index("lengstrom_fst/wave"):]
    assert "NOT for commercial work" in wave.splitlines()[2]


def test_styles_show_their_licence(vpipe: Callable[..., Result]) -> None:
    out = vpipe("styles").output.splitlines()
    starry = out.index(next(line for line in out if line.startswith("starry_night")))
    assert "painting.jpg" in out[starry + 1]
    assert "Apache-2.0" in out[starry + 2] and "licence" in out[starry + 2]
    wave = out.index(next(line for line in out if line.startswith("wave")))
    assert "NOT for commercial work" in out[wave + 1]


def test_a_trained_style_says_whose_it_is() -> None:
    for teacher in ("arbitrary", "none"):
        config = tomllib.loads(_style_toml(Path("my painting's.jpg"), "squeezenet", Plan(), teacher))
        assert "my painting's.jpg" in config["licence"] and config["training"]["teacher"] == teacher


def test_commands_are_quiet_about_tensorflow(tmp_path: Path) -> None:
    """No TensorFlow/absl start-up lines from a command that imports TensorFlow in its own process."""
    script = ("import pipeline, sys; import tensorflow as tf; f = tf.function(lambda x: x * 2)\n"
              "[f(tf.constant([1.0] * n)) for n in range(1, 9)]\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.stdout.strip() == "ok" and done.stderr == ""


def test_a_catalogue_model_is_known_by_its_path_anywhere() -> None:
    wave = catalogue.holding(Path("/somewhere/models/lengstrom_fst/wave"))
    assert wave is not None and wave.name == "lengstrom_fst/wave"
    assert catalogue.holding(Path("/x/lengstrom_fst/waves")) is None and catalogue.holding(Path("")) is None


def test_the_first_use_of_a_non_commercial_model_says_so(tmp_path: Path, vpipe: Callable[..., Result],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(assets_or_skip("models")))
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    assert vpipe("split", str(clip), "--job", "w").exit_code == 0
    first = vpipe("stylize", "--job", "w", "--style", "wave", "--workers", "1")
    assert first.exit_code == 0, first.output
    assert "note: model lengstrom_fst/wave: licence: academic research use only" in first.output
    assert "NOT for commercial work" in first.output
    again = vpipe("stylize", "--job", "w", "--workers", "1")  # the same job and model: said once
    assert again.exit_code == 0 and "licence" not in again.output
    own = vpipe("split", str(clip), "--job", "s")
    assert own.exit_code == 0
    ours = vpipe("stylize", "--job", "s", "--style", "starry_night", "--workers", "1")
    assert ours.exit_code == 0 and "licence" not in ours.output  # vpipe's own style: no restriction to say
