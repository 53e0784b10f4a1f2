"""One job, one writer, whatever the timing (issue 15, principle 2): real processes racing for one job.

A race is replayed in the order that loses data, with the fault hook `pause` (pipeline/faults.py): the
first process stops at the named point until the test lets it go, the second runs meanwhile.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.helpers import make_clip, vpipe_process


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)


def recorded_source(job: Path) -> str:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        return str(json.loads(conn.execute("SELECT value FROM meta WHERE key='source'").fetchone()[0]))


def test_two_splits_of_different_videos_into_one_name_never_both_win(tmp_path: Path, env: dict[str, str]) -> None:
    """The first split has found no job named "film" and stops there; a second split of another video into
    "film" runs meanwhile. Only one may say it split; the job holds the video of the one that did."""
    first_video = make_clip(tmp_path / "first.mp4", size="64x48", seconds=0.4)
    second_video = make_clip(tmp_path / "second.mp4", size="48x32", seconds=0.6)
    state = tmp_path / "state"
    state.mkdir()
    first = vpipe_process(["split", str(first_video), "--job", "film"],
                          {**env, "VPIPE_FAULTS": json.dumps({"pause": "split_decided", "state": str(state)})})
    try:
        wait_for(state / "paused-split_decided", first)
        second = subprocess.run([sys.executable, "-m", "pipeline.cli", "split", str(second_video), "--job", "film"],
                                env=env, text=True, capture_output=True, timeout=120)
    finally:
        (state / "go-split_decided").touch()
        out, err = first.communicate(timeout=120)
    succeeded = [video for video, code in ((first_video, first.returncode), (second_video, second.returncode))
                 if code == 0]
    assert len(succeeded) == 1, (first.returncode, out, err, second.returncode, second.stdout, second.stderr)
    assert recorded_source(tmp_path / "jobs" / "film") == str(succeeded[0].resolve())
    assert second.returncode == 1 and "in use by pid" in second.stderr  # the one that came second waits its turn
    assert "Traceback" not in second.stderr


HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipeline.job import Job, JobLock
JobLock(Job(Path(sys.argv[1]))).__enter__()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture()
def small_job(tmp_path: Path, vpipe: Callable[..., Result]) -> Path:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    assert vpipe("split", str(clip), "--job", "t").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    return tmp_path / "jobs" / "t"


@pytest.mark.parametrize("lock_file", ["deleted", "replaced"])
@pytest.mark.parametrize("command", [
    ["stylize", "--engine", "posterize", "--style", "{tmp}/model.bin"],
    ["retry-failed"],
    ["assemble", "--fill", "original"],
    ["verify", "--fix"],
    ["split", "{tmp}/clip.mp4", "--job", "t"],
], ids=["stylize", "retry-failed", "assemble", "verify-fix", "split"])
def test_deleting_the_lock_file_lets_no_second_writer_in(small_job: Path, tmp_path: Path, env: dict[str, str],
                                                         vpipe: Callable[..., Result], command: list[str],
                                                         lock_file: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(small_job)], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        (small_job / "lock").unlink()  # a user tidying up, or `rm jobs/t/lock` to "unlock" it
        if lock_file == "replaced":
            (small_job / "lock").write_text("")
        refused = vpipe(*[arg.format(tmp=tmp_path) for arg in command])
        assert refused.exit_code == 1, refused.output
        assert "job 't' is in use by " in refused.output
    finally:
        holder.kill()
        holder.wait()
    assert vpipe("verify", "--fix").exit_code == 0  # free again once the holder is gone


def test_a_failed_split_leaves_no_job_folder(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    """The lock is taken before split decides anything, so split makes the job folder first: when the split
    then fails, it removes that folder again (only what it wrote in it)."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    result = vpipe("split", str(junk), "--job", "j")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not (tmp_path / "jobs" / "j").exists()
