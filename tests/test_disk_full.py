"""A full disk: a real tiny tmpfs where the machine allows one, and an ffmpeg that dies half-way
through split or assemble. Nothing half-written ever carries a final name; no attempt is spent;
the same command resumes once there is space. (ENOSPC injected in the frame writer: test_crash.py.)"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from pipeline import video
from tests.helpers import FIXTURES, make_clip


def tmpfs_or_skip(where: Path) -> None:
    unshare = shutil.which("unshare")
    if not unshare:
        pytest.skip("no unshare(1): cannot mount a private tmpfs")
    where.mkdir(exist_ok=True)
    probe = subprocess.run([unshare, "--user", "--map-root-user", "--mount", "mount", "-t", "tmpfs", "-o", "size=1M",
                            "tmpfs", str(where)], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this machine does not allow a private tmpfs mount: {probe.stderr.strip()}")


def test_a_real_full_disk_stops_cleanly_and_the_same_command_resumes(tmp_path: Path, env: dict[str, str]) -> None:
    jobs = tmp_path / "jobs"  # the env fixture's VPIPE_JOBS_DIR: the tmpfs is mounted right there
    tmpfs_or_skip(jobs)
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)  # 30 frames
    (tmp_path / "model.bin").write_bytes(b"quick")
    stylize = ["vpipe", "stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--chunk", "5"]
    steps = [["vpipe", "split", str(clip), "--job", "d"],
             ["fill", 100_000],  # room for a few frames and manifest pages, then none
             stylize, ["state", "d"], ["vpipe", "verify"],
             ["unfill"],
             stylize, ["state", "d"], ["vpipe", "verify"]]
    # the up-front estimate (tests/test_disk.py) would refuse this run before it starts: told there is room,
    # the run meets the real full disk mid-way, which is what this test is about
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable,
                           str(FIXTURES / "tiny_disk.py"), str(jobs), "2M", json.dumps(steps)],
                          env={**env, "VPIPE_FREE_SPACE": "1G"}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    split, _, full, stopped, verified, _, resumed, finished, verified_again = json.loads(done.stdout)
    assert split["code"] == 0, split
    assert full["code"] == 3, full  # the distinct exit code of a full disk
    errors = [line for line in full["err"].splitlines() if not line.startswith("{")]
    assert len(errors) == 1 and "no space left on the device" in errors[0] and "run the same command" in errors[0]
    assert stopped["attempts"] == 0  # a full disk is no frame's fault
    assert stopped["counts"].get("done", 0) < 30
    assert verified["code"] == 0, verified  # what was done before the disk filled is intact
    assert resumed["code"] == 0, resumed
    assert finished["counts"] == {"done": 30} and finished["attempts"] == 0
    assert finished["styled"] == [f"{i:06d}.png" for i in range(1, 31)]  # and no tmp file
    assert verified_again["code"] == 0 and "30 good, 0 bad" in verified_again["out"]


# ---------------------------------------------------------------- ffmpeg dying half-way

FAKE_FFMPEG = """#!{python}
# Stands in for ffmpeg: probing and counting go to the real one; a split or an encode writes part of
# its output, then fails the way ffmpeg does when the disk fills up (or with another error).
import os, sys
args = sys.argv[1:]
out = args[-1]
if "%0" in out:  # split: a few frames of the sequence
    for i in (1, 2, 3):
        open(out % i, "wb").write(b"\\x89PNG half a frame set")
elif "-framerate" in args:  # assemble: the start of a video
    open(out, "wb").write(b"\\x00\\x00\\x00\\x20ftypisom" + bytes(5000))
else:
    os.execv(os.environ["REAL_FFMPEG"], [os.environ["REAL_FFMPEG"], *args])
sys.stderr.write(os.environ["FAKE_FFMPEG_ERROR"] + "\\n")
sys.exit(1)
"""


@pytest.fixture()
def failing_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Switch to the fake ffmpeg (failing with the given stderr line) by calling the fixture."""
    real = video.tools().ffmpeg
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(FAKE_FFMPEG.replace("{python}", sys.executable))
    fake.chmod(0o755)

    def use(error: str) -> None:
        monkeypatch.setenv("REAL_FFMPEG", real)
        monkeypatch.setenv("VPIPE_FFMPEG", str(fake))
        monkeypatch.setenv("FAKE_FFMPEG_ERROR", error)
        video.tools.cache_clear()

    yield use
    video.tools.cache_clear()


ERRORS = [("av_interleaved_write_frame(): No space left on device", 3, "no space left on the device"),
          ("Conversion failed!", 1, "conversion failed")]


@pytest.mark.parametrize(("error", "code", "words"), ERRORS)
def test_a_split_that_fails_half_way_leaves_no_frame_set(
        tmp_path: Path, vpipe: Callable[..., Result], failing_ffmpeg: Callable[[str], None],
        monkeypatch: pytest.MonkeyPatch, error: str, code: int, words: str) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    failing_ffmpeg(error)
    result = vpipe("split", str(clip), "--job", "s")
    assert result.exit_code == code, result.output
    assert words in result.output.lower() and "Traceback" not in result.output
    job = tmp_path / "jobs" / "s"
    assert not (job / "frames").exists() and not (job / "frames.partial").exists()
    assert not (job / "manifest.sqlite").exists()
    monkeypatch.delenv("VPIPE_FFMPEG")  # space freed: the same command works
    video.tools.cache_clear()
    result = vpipe("split", str(clip), "--job", "s")
    assert result.exit_code == 0, result.output
    assert len(list((job / "frames").iterdir())) == 6


@pytest.mark.parametrize(("error", "code", "words"), ERRORS)
def test_an_assemble_that_fails_half_way_leaves_no_video(
        tmp_path: Path, vpipe: Callable[..., Result], failing_ffmpeg: Callable[[str], None],
        error: str, code: int, words: str) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    assert vpipe("split", str(clip), "--job", "a").exit_code == 0
    assert vpipe("assemble", "--fill", "original").exit_code == 0
    job = tmp_path / "jobs" / "a"
    earlier = hashlib.sha256((job / "output.mp4").read_bytes()).hexdigest()
    failing_ffmpeg(error)
    for output in [None, tmp_path / "new.mp4"]:
        result = vpipe("assemble", "--fill", "original", *(["-o", str(output)] if output else []))
        assert result.exit_code == code, result.output
        assert words in result.output.lower() and "Traceback" not in result.output
    assert hashlib.sha256((job / "output.mp4").read_bytes()).hexdigest() == earlier  # the earlier one intact
    assert not (tmp_path / "new.mp4").exists()
    leftovers = [p.name for p in [*job.iterdir(), *tmp_path.iterdir()] if "partial" in p.name or p.name == ".assemble"]
    assert leftovers == []
