"""kill -9 of the coordinator, disk full, Ctrl-C, the job lock: nothing finished is ever lost."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from click.testing import Result

from pipeline.job import Job, JobLock
from pipeline.manifest import Manifest, Status
from pipeline.verify import verify
from tests.helpers import alive, children, split_job, vpipe_process, wait_until


@pytest.fixture()
def job(tmp_path: Path, vpipe: Callable[..., Result]) -> Path:
    return split_job(tmp_path, vpipe, seconds=1.0)  # 30 frames


def done_count(job: Path) -> int:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM frames WHERE status='done'").fetchone()[0])


def test_kill_9_of_the_coordinator_loses_nothing(tmp_path: Path, job: Path, env: dict[str, str]) -> None:
    env = {**env, "POSTERIZE_DELAY": "0.1"}
    args = ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--chunk", "4",
            "--workers", "2"]
    proc = vpipe_process(args, env)
    wait_until(lambda: done_count(job) >= 6)
    workers = children(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    wait_until(lambda: not any(alive(w) for w in workers), seconds=10)  # workers die with it
    before = {p.name: p.stat().st_mtime_ns for p in (job / "styled").glob("*.png")}
    m = Manifest.open(job / "manifest.sqlite")
    done_before = set(m.frames(Status.DONE))
    assert m.counts()[Status.RUNNING] > 0  # the dead run left frames claimed
    m.close()
    status = subprocess.run([sys.executable, "-m", "pipeline.cli", "status"], env=env, capture_output=True, text=True)
    assert "no run in progress" in status.stdout and "left by a run that died" in status.stdout

    resumed = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "reclaimed" in resumed.stdout
    m = Manifest.open(job / "manifest.sqlite")
    assert m.counts()[Status.DONE] == 30
    m.close()
    after = {p.name: p.stat().st_mtime_ns for p in (job / "styled").glob("*.png")}
    for name, mtime in before.items():
        if int(name.split(".")[0]) in done_before:
            assert after[name] == mtime, f"{name} was recomputed"
    assert len(after) == 30 and all(cv2.imread(str(p)) is not None for p in (job / "styled").glob("*.png"))
    assert not list((job / "styled").glob(".*"))  # no tmp files left


def test_ctrl_c_returns_frames_to_pending_without_spending_attempts(
        tmp_path: Path, job: Path, env: dict[str, str]) -> None:
    env = {**env, "POSTERIZE_DELAY": "0.1"}
    # as a terminal's foreground command: SIGINT at its default even where the test runner ignores it (a
    # shell starts background jobs with SIGINT ignored, which children inherit: Python then ignores Ctrl-C)
    proc = vpipe_process(["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin")], env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until(lambda: done_count(job) >= 3)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not any(alive(w) for w in workers)
    m = Manifest.open(job / "manifest.sqlite")
    assert m.counts()[Status.RUNNING] == 0 and m.counts()[Status.FAILED] == 0
    assert all(m.record(i).attempts == 0 for i in range(1, 31))
    m.close()


def test_disk_full_stops_cleanly_and_the_same_command_resumes(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--chunk", "5"]
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"8": "enospc"}, "point": "written"}))
    result = vpipe(*args)
    assert result.exit_code == 3, result.output
    assert "no space left" in result.output
    m = Manifest.open(job / "manifest.sqlite")
    assert m.record(8).status == Status.PENDING and m.record(8).attempts == 0
    assert m.counts()[Status.RUNNING] == 0
    m.close()
    monkeypatch.delenv("VPIPE_FAULTS")
    assert vpipe(*args).exit_code == 0
    assert done_count(job) == 30


def test_a_second_stylize_on_a_locked_job_names_the_holder(
        tmp_path: Path, job: Path, env: dict[str, str], vpipe: Callable[..., Result],
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**env, "POSTERIZE_DELAY": "0.2"}
    proc = vpipe_process(["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin")], env)
    try:
        wait_until(lambda: done_count(job) >= 1)
        second = vpipe("stylize")
        assert second.exit_code == 1
        assert f"pid {proc.pid}" in second.output
        assert f"run in progress (pid {proc.pid})" in vpipe("status").output  # status reads while it runs
    finally:
        proc.kill()
        proc.wait()
    # the kernel dropped the lock with the process: the next run starts at once
    monkeypatch.setenv("POSTERIZE_DELAY", "0")
    assert vpipe("stylize").exit_code == 0


# ---------------------------------------------------------------- crash points of publishing a frame

K = 6  # the frame the crash hits: mid-chunk (chunks of 4), with frames done before it


@pytest.fixture()
def small_job(tmp_path: Path, vpipe: Callable[..., Result]) -> Path:
    return split_job(tmp_path, vpipe, seconds=0.4)  # 12 frames


def done_events(job: Path) -> dict[int, int]:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        rows = conn.execute("SELECT idx, COUNT(*) FROM events WHERE event='done' GROUP BY idx").fetchall()
    return dict(rows)


def file_ids(job: Path, frames: set[int]) -> dict[int, tuple[int, int]]:
    return {i: ((s := (job / "styled" / f"{i:06d}.png").stat()).st_ino, s.st_mtime_ns) for i in frames}


def assert_sound(job: Path) -> None:
    """No frame `done` without a valid file (decodes, size, hash); no partial file under a final name."""
    report = verify(job.parent, job.name)
    assert report.bad == [], report.bad
    for path in (job / "styled").glob("*.png"):
        assert cv2.imread(str(path)) is not None, f"{path.name}: a partial file under a final name"


def run_watching_workers(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], set[int]]:
    """Run the coordinator to its end (or death), noting its workers; return once they are gone too."""
    proc = vpipe_process(args, env)
    workers: set[int] = set()
    while proc.poll() is None:
        workers.update(children(proc.pid))
        time.sleep(0.02)
    proc.communicate()
    wait_until(lambda: not any(alive(w) for w in workers), seconds=10)
    return proc, workers


@pytest.mark.parametrize(("point", "mode"), [
    # a worker dies at each step of publishing frame K: the run itself retries K and finishes
    ("written", "sigkill"), ("synced", "sigkill"), ("renamed", "sigkill"),
    ("written", "exit"), ("synced", "exit"), ("renamed", "exit"),
    # the coordinator dies while a worker is at each step of publishing frame K
    ("written", "kill_coordinator"), ("synced", "kill_coordinator"), ("renamed", "kill_coordinator"),
    # the coordinator dies just before or just after the manifest commits K as done
    ("commit_before", "sigkill"), ("commit_before", "exit"),
    ("commit_after", "sigkill"), ("commit_after", "exit"),
])
def test_a_crash_at_each_step_of_publishing_loses_and_corrupts_nothing(
        tmp_path: Path, small_job: Path, env: dict[str, str], vpipe: Callable[..., Result],
        point: str, mode: str) -> None:
    job = small_job
    state = tmp_path / "faults"
    state.mkdir()
    # one worker: chunk 1-4 is done before chunk 5-8 starts (the default runs one worker per core)
    args = ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--chunk", "4", "--workers", "1"]
    faults = json.dumps({"frames": {str(K): mode}, "point": point, "times": 1, "state": str(state)})
    proc, workers = run_watching_workers(args, {**env, "VPIPE_FAULTS": faults})
    assert workers, "no worker was seen"
    final = job / "styled" / f"{K:06d}.png"
    coordinator_died = mode == "kill_coordinator" or point.startswith("commit")

    if coordinator_died:
        assert proc.returncode == (1 if mode == "exit" else -signal.SIGKILL)
        m = Manifest.open(job / "manifest.sqlite")
        status, done_before = m.record(K).status, set(m.frames(Status.DONE))
        m.close()
        # the crash struck where asked
        assert final.exists() == (point not in ("written", "synced"))
        assert bool(list((job / "styled").glob(f".{final.name}.tmp-*"))) == (point in ("written", "synced"))
        assert status == (Status.DONE if point == "commit_after" else Status.RUNNING)
        # chunk 1-4 ended before chunk 5-8 was sent; frame 5's `done` may still be on its way when K strikes
        assert done_before >= {1, 2, 3, 4}
        assert_sound(job)
        before = file_ids(job, done_before)
        resumed = vpipe(*args)  # the same command, without faults
        assert resumed.exit_code == 0, resumed.output
        assert "reclaimed" in resumed.output
        assert file_ids(job, done_before) == before, "frames done before the crash were recomputed"
    else:
        assert proc.returncode == 0  # the run went on: K failed one attempt and was made again
        m = Manifest.open(job / "manifest.sqlite")
        assert ("attempt_failed", "killed" if mode == "sigkill" else "crashed") in m.events(K)
        m.close()

    m = Manifest.open(job / "manifest.sqlite")
    assert m.counts()[Status.DONE] == 12 and m.record(K).status == Status.DONE
    m.close()
    assert done_events(job) == {i: 1 for i in range(1, 13)}, "a frame was marked done twice"
    assert_sound(job)
    assert sorted(p.name for p in (job / "styled").iterdir()) == [f"{i:06d}.png" for i in range(1, 13)]


HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipeline.job import Job, JobLock
JobLock(Job(Path(sys.argv[1]))).__enter__()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_locked_job_refuses_every_writer_by_holder_pid_and_the_lock_dies_with_it(
        small_job: Path, env: dict[str, str], vpipe: Callable[..., Result]) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(small_job)], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for args in (["stylize"], ["retry-failed"], ["assemble", "--fill", "original"], ["verify", "--fix"]):
            refused = vpipe(*args)
            assert refused.exit_code == 1, (args, refused.output)
            assert f"job 't' is in use by pid {holder.pid}" in refused.output, refused.output
        assert f"run in progress (pid {holder.pid})" in vpipe("status").output  # readers still read
        assert vpipe("verify").exit_code == 0
    finally:
        holder.kill()
        holder.wait()
    with JobLock(Job(small_job)):  # free at once: the kernel dropped the flock with the process
        pass
    assert "no run in progress" in vpipe("status").output
