"""--executor ray without the optional extra: one line that says how to install it (runs without Ray)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import pipeline.executors
from pipeline.manifest import Manifest, Status
from tests.helpers import make_clip


def test_without_ray_installed_the_error_says_how_to_get_it(
        tmp_path: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.2)), "--job", "t").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as without the extra
    monkeypatch.delitem(sys.modules, "pipeline.executors.ray", raising=False)
    monkeypatch.delattr(pipeline.executors, "ray", raising=False)
    result = vpipe("stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--executor", "ray")
    assert result.exit_code == 2
    assert result.output.strip() == "vpipe: error: --executor ray needs Ray: pip install 'vpipe[ray]'"
    m = Manifest.open(tmp_path / "jobs" / "t" / "manifest.sqlite")
    assert m.counts()[Status.PENDING] == m.frame_count()
    m.close()


def test_ray_options_need_the_ray_executor(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", seconds=0.2)), "--job", "t").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    result = vpipe("stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--gpus-per-worker", "1")
    assert result.exit_code == 2 and "--gpus-per-worker is for --executor ray" in result.output
