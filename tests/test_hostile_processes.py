"""A stopped or wedged worker costs at most one frame, in every state, and no run waits forever; ffmpeg
dies with the vpipe command that started it. Real worker subprocesses (the quick engine), stopped or
wedged on purpose by pipeline/faults.py; a real ffmpeg under a real `vpipe split` / `assemble`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.coordinator import Coordinator, Limits
from pipeline.errors import VpipeError
from pipeline.manifest import Manifest, Status
from tests.helpers import DEADLINE, Quiet, alive, children, kill_all, make_clip, quick_executor, vpipe_run, workers_of

FRAME_TIMEOUT = "5"  # seconds: a healthy worker of the quick engine is never silent that long


# ---------------------------------------------------------------- a worker stopped or wedged


@pytest.fixture()
def job(tmp_path: Path, env: dict[str, str]) -> Path:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4)  # 12 frames
    assert vpipe_run(["split", str(clip), "--job", "t"], env).returncode == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine: no weights")
    return tmp_path / "jobs" / "t"


def stylize(tmp_path: Path, *extra: str) -> list[str]:
    # one worker, chunks [1-4] [5-8] [9-12]: which frame a stuck worker owes is known
    return ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--workers", "1",
            "--chunk", "4", "--frame-timeout", FRAME_TIMEOUT, *extra]


def attempts(job: Path) -> dict[int, int]:
    with Manifest.open(job / "manifest.sqlite") as m:
        return {i: m.record(i).attempts for i in range(1, m.frame_count() + 1)}


# (state, fault point, frame it strikes after or on, mode, extra options, the frame that pays one attempt)
STATES = [
    ("loading: stopped", "load", 0, "sigstop", ("--load-timeout", "8"), None),
    ("between chunks: stopped", "idle", 4, "sigstop", (), 5),
    ("between frames: stopped", "after", 2, "sigstop", (), 3),
    ("between frames: deadlocked threads", "after", 2, "deadlock", (), 3),
    ("end of a chunk, before chunk_end: stopped", "after", 4, "sigstop", (), None),
    ("in a frame: stopped", "engine", 6, "sigstop", (), 6),
    ("in a frame: deadlocked threads", "engine", 6, "deadlock", (), 6),
    ("in a frame: blocked on a full pipe", "engine", 6, "block_pipe", (), 6),
]


@pytest.mark.parametrize(("state", "point", "frame", "mode", "extra", "pays"), STATES, ids=[s[0] for s in STATES])
def test_a_stuck_worker_costs_at_most_one_frame_and_the_run_finishes(
        tmp_path: Path, env: dict[str, str], job: Path, state: str, point: str, frame: int, mode: str,
        extra: tuple[str, ...], pays: int | None) -> None:
    faults = tmp_path / "faults"
    faults.mkdir()
    env = {**env, "VPIPE_FAULTS": json.dumps({"frames": {str(frame): mode}, "point": point, "times": 1,
                                              "state": str(faults)})}
    started = time.monotonic()
    result = vpipe_run(stylize(tmp_path, *extra), env)
    assert result.returncode == 0, result.stderr
    assert (faults / f"frame-{frame}-{point}").read_text() == "1", "the fault did not strike"
    spent = attempts(job)
    assert spent == {i: int(i == pays) for i in range(1, 13)}  # one frame pays one attempt, or none does
    with Manifest.open(job / "manifest.sqlite") as m:
        assert m.counts()[Status.DONE] == 12
        assert all(m.events(i).count(("done", None)) == 1 for i in range(1, 13)), "a frame was made twice"
        if pays is not None:
            assert ("attempt_failed", "timeout") in m.events(pays)
        if point == "load":  # its chunk went back untouched, saying why
            assert ("released", None) in m.events(1)
    assert workers_of(tmp_path / "jobs") == [], "a stopped worker was left behind"
    assert time.monotonic() - started < DEADLINE


def test_workers_that_never_load_stop_the_run_in_one_line_and_spend_nothing(
        tmp_path: Path, env: dict[str, str], job: Path) -> None:
    env = {**env, "VPIPE_FAULTS": json.dumps({"frames": {"0": "sigstop"}, "point": "load"})}  # every worker
    result = vpipe_run(stylize(tmp_path, "--load-timeout", "2"), env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("vpipe: error:")]
    assert len(errors) == 1 and "did not load its engine within 2 s" in errors[0] and "--load-timeout" in errors[0]
    assert attempts(job) == {i: 0 for i in range(1, 13)}
    with Manifest.open(job / "manifest.sqlite") as m:
        assert m.counts()[Status.PENDING] == 12
    assert workers_of(tmp_path / "jobs") == []


def test_a_killed_worker_is_seen_at_once_though_a_process_it_forked_holds_its_pipe(
        tmp_path: Path, env: dict[str, str], job: Path) -> None:
    """A worker SIGKILLed on frame 6 after forking a child that keeps its stdout open (as OpenVINO's
    telemetry did): the coordinator sees the death when the worker exits, not when the pipe closes
    (the frame timeout, 10 minutes here), and the child goes with its worker."""
    state = tmp_path / "state"
    state.mkdir()
    env = {**env, "VPIPE_FAULTS": json.dumps({"frames": {"6": "fork_sigkill"}, "times": 1, "state": str(state)})}
    args = stylize(tmp_path)
    args[args.index("--frame-timeout") + 1] = "600"
    result = vpipe_run(args, env, deadline=60)
    assert result.returncode == 0, result.stderr
    assert attempts(job) == {i: int(i == 6) for i in range(1, 13)}  # the death charged to frame 6 alone
    assert workers_of(tmp_path / "jobs") == []


def test_a_worker_that_stops_reading_its_pipe_never_blocks_the_coordinator(
        tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk line longer than a pipe holds (30000 frames: ~200 kB) to a worker that stopped before
    reading anything: the coordinator must still see the load timeout, not sit in write() forever."""
    frames = 30000
    Manifest.create(tmp_path / "manifest.sqlite", frames, {})
    (tmp_path / "model.bin").write_bytes(b"quick")
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"0": "sigstop"}, "point": "load"}))
    executor = quick_executor(tmp_path, tmp_path)
    outcome: list[BaseException | None] = []
    pending: list[int] = []

    def run() -> None:  # SQLite connections stay in the thread that made them
        with Manifest.open(tmp_path / "manifest.sqlite") as manifest:
            coordinator = Coordinator(manifest, executor, manifest.start_run("test", os.getpid()),
                                      Limits(load_timeout=2), Quiet(), lambda frame: True)
            try:
                coordinator.run([list(range(1, frames + 1))])
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)
            pending.append(manifest.counts()[Status.PENDING])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE / 2)
    stuck = thread.is_alive()
    if stuck:
        kill_all(workers_of(tmp_path / "jobs"))  # frees the coordinator's write
        thread.join(30)
    assert not stuck, "the coordinator blocked writing to a stopped worker"
    assert isinstance(outcome[0], VpipeError) and "--load-timeout" in str(outcome[0])
    assert pending == [frames]
    assert workers_of(tmp_path / "jobs") == []


# ---------------------------------------------------------------- ffmpeg dies with its vpipe


def catch_ffmpeg(vpipe: subprocess.Popen[str], marker: str) -> int:
    """The ffmpeg child of `vpipe` whose command line holds `marker`, stopped (SIGSTOP) as soon as it is
    seen, so that it is certainly still there, mid-work, when vpipe is killed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and vpipe.poll() is None:
        for pid in children(vpipe.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ffmpeg" in command and marker.encode() in command:
                os.kill(pid, signal.SIGSTOP)
                return pid
        time.sleep(0.002)
    out, err = vpipe.communicate()
    pytest.fail(f"no ffmpeg with {marker!r} seen under vpipe (exit {vpipe.returncode}): {err[-500:]}")


def kill_and_watch(vpipe: subprocess.Popen[str], ffmpeg: int) -> bool:
    """SIGKILL vpipe; True when its ffmpeg child is gone within 5 s (it is cleaned up either way)."""
    os.kill(vpipe.pid, signal.SIGKILL)
    vpipe.communicate()
    deadline = time.monotonic() + 5
    while alive(ffmpeg) and time.monotonic() < deadline:
        time.sleep(0.02)
    gone = not alive(ffmpeg)
    kill_all([] if gone else [ffmpeg])
    return gone


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_killed_split_leaves_no_ffmpeg_and_runs_again_at_once(tmp_path: Path, env: dict[str, str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="320x240", seconds=3.0, audio=0)  # 90 frames
    split = start(["split", str(clip), "--job", "s"], env)
    ffmpeg = catch_ffmpeg(split, "frames.partial")  # the decode itself, not a probe
    assert kill_and_watch(split, ffmpeg), "ffmpeg kept running after `vpipe split` was killed"
    again = vpipe_run(["split", str(clip), "--job", "s"], env)
    assert again.returncode == 0, again.stderr
    assert "90 frames" in again.stdout
    assert len(list((tmp_path / "jobs" / "s" / "frames").iterdir())) == 90


def test_a_killed_assemble_leaves_no_ffmpeg_and_runs_again_at_once(tmp_path: Path, env: dict[str, str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="320x240", seconds=3.0)
    (tmp_path / "model.bin").write_bytes(b"quick")
    assert vpipe_run(["split", str(clip), "--job", "a"], env).returncode == 0
    done = vpipe_run(["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--workers", "1"], env)
    assert done.returncode == 0, done.stderr
    assemble = start(["assemble"], env)
    ffmpeg = catch_ffmpeg(assemble, ".assemble")  # the encode, reading the job's gapless sequence
    assert kill_and_watch(assemble, ffmpeg), "ffmpeg kept running after `vpipe assemble` was killed"
    again = vpipe_run(["assemble"], env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "jobs" / "a" / "output.mp4").is_file()
