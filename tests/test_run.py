"""`vpipe run VIDEO`: split, stylize, retry the failed frames once, assemble; run again to resume."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pipeline import video
from tests.helpers import make_clip, vpipe_process


def counts(job: Path) -> dict[str, int]:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM frames GROUP BY status").fetchall())


def test_one_command_makes_the_film(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    clip = make_clip(tmp_path / "my film.mp4", seconds=0.5)
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    out = tmp_path / "styled.mp4"
    result = vpipe("run", str(clip), "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--levels", "3",
                   "--workers", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file() and video.count_frames(out) == 15
    assert result.output.strip().splitlines()[-1] == str(out)
    again = vpipe("run", str(clip), "-o", str(tmp_path / "again.mp4"))  # resumes: nothing left to stylize
    assert again.exit_code == 0, again.output
    assert "already split" in again.output and "nothing to do" in again.output


def test_failed_frames_are_retried_once_then_assembled(tmp_path: Path, vpipe: Callable[..., Result],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4)
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    state = tmp_path / "faults"
    state.mkdir()
    faults = {"frames": {"3": "raise"}, "times": 2, "state": str(state)}  # fails its 2 attempts, then works
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps(faults))
    result = vpipe("run", str(clip), "--job", "r", "--engine", "posterize", "--style", str(tmp_path / "model.bin"),
                   "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "retrying 1 failed frames: 3" in result.output
    assert counts(tmp_path / "jobs" / "r") == {"done": 12}
    assert video.count_frames(tmp_path / "jobs" / "r" / "output.mp4") == 12


def test_frames_still_failed_stop_before_assembling(tmp_path: Path, vpipe: Callable[..., Result],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4)
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"5": "raise"}}))
    result = vpipe("run", str(clip), "--job", "f", "--engine", "posterize", "--style", str(tmp_path / "model.bin"),
                   "--workers", "1")
    assert result.exit_code == 1
    assert "1 frames still failed after one retry" in result.output
    assert not (tmp_path / "jobs" / "f" / "output.mp4").exists()
    monkeypatch.delenv("VPIPE_FAULTS")
    filled = vpipe("run", str(clip), "--job", "f")  # the fault is gone: running it again retries the frame
    assert filled.exit_code == 0 and "retrying 1 failed frames: 5" in filled.output, filled.output
    assert video.count_frames(tmp_path / "jobs" / "f" / "output.mp4") == 12


def test_run_resumes_after_a_kill(tmp_path: Path, env: dict[str, str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    args = ["run", str(clip), "--job", "k", "--engine", "posterize", "--style", str(tmp_path / "model.bin"),
            "--workers", "1", "--chunk", "4"]
    job = tmp_path / "jobs" / "k"
    proc = vpipe_process(args, {**env, "POSTERIZE_DELAY": "0.1"})
    deadline = time.monotonic() + 120
    while not ((job / "manifest.sqlite").exists() and counts(job).get("done", 0) >= 6):
        assert time.monotonic() < deadline and proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done_before = counts(job).get("done", 0)
    assert done_before < 30
    resumed = vpipe_process(args, env)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out + err
    assert f"{30 - done_before} frames styled" in out  # only what was left
    assert video.count_frames(job / "output.mp4") == 30
