"""vpipe as a user gets it: a built wheel installed into a fresh virtual environment, run outside the checkout.

The environment borrows the test run's dependencies (TensorFlow and the rest) through a .pth line, so no
download is needed; vpipe itself comes only from the wheel (the checkout is not on its path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from pipeline import video
from tests.helpers import ROOT


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=600, env=env)
    return next(out.glob("vpipe-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel installed; returns its bin folder and a clean environment."""
    place = tmp_path_factory.mktemp("venv")
    venv = place / "venv"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}  # no PYTHONPATH
    env["VPIPE_JOBS_DIR"] = str(place / "jobs")
    env["XDG_CACHE_HOME"] = str(place / "cache")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120, env=env)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True, env=env).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600, env=env)
    # after the install: pip would otherwise take the test run's own vpipe for an installed one
    (purelib / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin", env


def test_the_wheel_carries_the_styles_the_catalogue_and_the_licence(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/models/catalogue.json" in names
    assert "pipeline/shipped_styles/starry_night/style.toml" in names
    assert "pipeline/shipped_styles/starry_night/model/manifest.json" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_an_installed_wheel_lists_its_styles_and_runs_a_job(installed: tuple[Path, dict[str, str]],
                                                            tmp_path: Path) -> None:
    bin_dir, env = installed
    vpipe = str(bin_dir / "vpipe")
    where = run([str(bin_dir / "python"), "-c", "import pipeline; print(pipeline.__file__)"], tmp_path, env).stdout
    assert not where.startswith(str(ROOT)), where  # the wheel's copy, not the checkout
    listing = run([vpipe, "styles"], tmp_path, env).stdout
    assert "starry_night" in listing and "yes" in listing.splitlines()[[line.startswith("starry_night")
                                                                         for line in listing.splitlines()].index(True)]
    clip = tmp_path / "clip.mp4"
    subprocess.run([video.tools().ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", "0.4", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(clip)], check=True)
    run([vpipe, "split", str(clip), "--job", "w"], tmp_path, env)
    styled = run([vpipe, "stylize", "--job", "w", "--workers", "1"], tmp_path, env)  # the default style
    assert "10 frames styled, 0 failed" in styled.stdout, styled.stdout
    out = run([vpipe, "assemble", "--job", "w"], tmp_path, env).stdout.strip().splitlines()[-1]
    assert Path(out).is_file() and video.count_frames(Path(out)) == 10
