"""Shared fixtures: real ffmpeg clips made on the spot, the real assets when present, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline import video

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def assets_or_skip(relative: str) -> Path:
    path = ASSETS / relative
    if not path.exists():
        pytest.skip(f"{path} not found: the real assets in ../shared/assets are absent")
    return path


def make_clip(path: Path, size: str = "64x48", rate: str = "30000/1001", seconds: float = 0.4,
              audio: int = 1, extra: tuple[str, ...] = ()) -> Path:
    """A real H.264 clip from ffmpeg's test source (+ sine audio tracks)."""
    args = [video.tools().ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc=size={size}:rate={rate}"]
    for i in range(audio):
        args += ["-f", "lavfi", "-i", f"sine=frequency={440 * (i + 1)}:sample_rate=44100"]
    args += ["-t", str(seconds), "-map", "0:v"]
    for i in range(audio):
        args += ["-map", f"{i + 1}:a"]
    w, h = (int(v) for v in size.split("x"))
    pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
    args += ["-c:v", "libx264", "-pix_fmt", pix, "-c:a", "aac", *extra, str(path)]
    subprocess.run(args, check=True)
    return path


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A jobs dir of its own and the quick test engine registered; returned for subprocess runs."""
    monkeypatch.setenv("VPIPE_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("VPIPE_ENGINES", "posterize=quick_engines:load")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES), str(ROOT)]))
    monkeypatch.syspath_prepend(str(FIXTURES))  # the in-process coordinator reads the fixture engines' specs
    monkeypatch.delenv("VPIPE_FAULTS", raising=False)
    return dict(os.environ)


@pytest.fixture()
def vpipe(env: dict[str, str]) -> Callable[..., Result]:
    """Run the CLI in-process (workers are still real subprocesses)."""
    from pipeline.cli import main

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


def vpipe_process(args: list[str], env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]
