"""Misbehaving workers: each fault hits frame k only; everything else finishes; retry-failed recovers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from click.testing import Result

from pipeline import executors
from pipeline.coordinator import Coordinator, Limits
from pipeline.errors import UsageError
from pipeline.executors.protocol import Event, Kind
from pipeline.manifest import Manifest, Status
from pipeline.resources import parse_size, plan_workers
from tests.helpers import Quiet, make_clip, quick_executor, wait_until

K = 6  # the frame that misbehaves: mid-chunk, so the rest of its chunk must go to a fresh worker


@pytest.fixture()
def job(tmp_path: Path, vpipe: Callable[..., Result]) -> Path:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4)  # 12 frames
    result = vpipe("split", str(clip), "--job", "t")
    assert result.exit_code == 0, result.output
    (tmp_path / "model.bin").write_bytes(b"quick engine: no weights")
    return tmp_path / "jobs" / "t"


def stylize_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--chunk", "4", *extra]


def manifest(job: Path) -> Manifest:
    return Manifest.open(job / "manifest.sqlite")


def mtimes(job: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (job / "styled").glob("*.png")}


@pytest.mark.parametrize(("mode", "kind", "extra", "environ"), [
    ("raise", "exception", (), {}),
    ("exit", "crashed", (), {}),
    ("segfault", "segfault", (), {}),
    ("sigkill", "killed", (), {}),
    ("hang", "timeout", ("--frame-timeout", "2"), {}),
    # a real MemoryError: the worker allocates until its address-space limit (RLIMIT_AS) says no
    ("oom", "out_of_memory", (), {"VPIPE_WORKER_MEMORY": "1G"}),
    # with a budget as well: the budget plans, the ceiling still catches what runs away
    ("oom", "out_of_memory", ("--max-memory", "512M"), {"VPIPE_WORKER_MEMORY": "1G"}),
])
def test_only_frame_k_fails_then_retry_recovers(tmp_path: Path, job: Path, vpipe: Callable[..., Result],
                                                monkeypatch: pytest.MonkeyPatch, mode: str, kind: str,
                                                extra: tuple[str, ...], environ: dict[str, str]) -> None:
    state = tmp_path / "faults"
    state.mkdir()
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {str(K): mode}, "times": 1, "state": str(state)}))
    result = vpipe(*stylize_args(tmp_path, "--max-attempts", "1", *extra))
    assert result.exit_code == 1, result.output
    m = manifest(job)
    assert m.frames(Status.FAILED) == [K]
    assert m.frames(Status.DONE) == [i for i in range(1, 13) if i != K]
    record = m.record(K)
    assert (record.error_kind, record.attempts) == (kind, 1)
    m.close()
    before = mtimes(job)

    status = vpipe("status")
    assert f"{K}" in status.output and kind in status.output

    result = vpipe("retry-failed")
    assert result.exit_code == 0, result.output
    m = manifest(job)
    assert m.counts()[Status.DONE] == 12
    assert m.record(K).attempts == 1  # the successful retry does not count as a failure
    assert ("failed", kind) in m.events(K) and ("retry", None) in m.events(K)
    m.close()
    after = mtimes(job)
    assert {n: t for n, t in after.items() if n in before} == before, "done frames were recomputed"
    assert all(cv2.imread(str(p)) is not None for p in (job / "styled").glob("*.png"))


def test_a_frame_that_keeps_failing_ends_failed_and_the_job_goes_on(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {str(K): "segfault", "3": "raise"}}))
    result = vpipe(*stylize_args(tmp_path, "--max-attempts", "2"))
    assert result.exit_code == 1
    m = manifest(job)
    assert m.frames(Status.FAILED) == [3, K]
    assert m.record(K).attempts == 2 and m.record(3).attempts == 2
    assert m.counts()[Status.DONE] == 10
    m.close()


def test_an_engine_that_cannot_load_stops_the_run_with_one_line(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result]) -> None:
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    result = vpipe("stylize", "--engine", "fast", "--style", str(bad))
    assert result.exit_code == 1
    assert "could not be loaded" in result.output and "manifest.json" in result.output
    m = manifest(job)
    assert m.counts()[Status.PENDING] == 12 and m.counts()[Status.RUNNING] == 0
    m.close()


@pytest.mark.parametrize(("text", "size"), [("1G", 1 << 30), ("512M", 512 << 20), ("1.5GiB", 3 << 29),
                                            ("2 gb", 2 << 30), ("1048576", 1 << 20), ("64k", 64 << 10)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "abc", "0", "-1G", "5X", "G"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="VPIPE_WORKER_MEMORY"):
        parse_size(text)


def test_a_malformed_memory_limit_is_a_usage_error(tmp_path: Path, job: Path, vpipe: Callable[..., Result],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_WORKER_MEMORY", "lots")
    result = vpipe(*stylize_args(tmp_path))
    assert result.exit_code == 2 and "VPIPE_WORKER_MEMORY='lots' is not a size" in result.output


@pytest.mark.parametrize(("cores", "gpus", "workers", "threads", "plan"), [
    (2, 0, None, None, (2, 1)),  # one single-threaded worker per core (README "Speed")
    (16, 0, None, None, (4, 4)),  # at most 4 workers; the cores shared out
    (2, 0, 1, None, (1, 2)),
    (8, 0, None, 2, (4, 2)),
    (2, 0, 3, 1, (3, 1)),
    (16, 2, None, None, (2, 0)),  # one worker per GPU, the engine's own threads
    (1, 0, None, None, (1, 1)),
])
def test_workers_and_threads_from_the_machine(cores: int, gpus: int, workers: int | None, threads: int | None,
                                              plan: tuple[int, int]) -> None:
    assert plan_workers(cores, gpus, workers, threads) == plan


def test_prefetch_reads_ahead_in_order_and_raises_in_the_callers_frame() -> None:
    import threading

    import numpy as np

    from pipeline.worker import IOPool, Prefetch

    seen: list[int] = []
    lock = threading.Lock()

    def read(index: int) -> np.ndarray:
        with lock:
            seen.append(index)
        if index == 3:
            raise ValueError("000003.png does not decode as an image")
        return np.full((2, 2, 3), index, np.uint8)

    source = Prefetch(read, [1, 2, 3, 4, 5], IOPool(1), ahead=2)
    try:
        assert source.get(1)[0, 0, 0] == 1
        assert source.get(2)[0, 0, 0] == 2
        with pytest.raises(ValueError, match="000003.png"):
            source.get(3)
        assert source.get(4)[0, 0, 0] == 4 and source.get(5)[0, 0, 0] == 5
    finally:
        source.close()
    assert seen == [1, 2, 3, 4, 5]  # one reader thread, in chunk order: each frame read once


# ---------------------------------------------------------------- workers started ahead of their first chunk


def await_events(executor: executors.LocalExecutor, kind: Kind, key: Callable[[Event], int],
                 wanted: set[int]) -> None:
    """Read the executor's events until those of `kind` have given every key in `wanted`."""
    seen: set[int] = set()

    def all_seen() -> bool:
        event = executor.next_event(timeout=0.2)
        if event is not None and event.kind == kind:
            seen.add(key(event))
        return seen == wanted

    wait_until(all_seen)


def test_workers_started_ahead_load_their_engine_before_any_chunk_and_then_take_one(tmp_path: Path,
                                                                                   job: Path) -> None:
    executor = quick_executor(tmp_path, job, workers=2)
    try:
        executor.start(5)  # no more than the run's 2 slots
        pids = {slot: proc.pid for slot, proc in executor.procs.items()}
        assert sorted(pids) == [0, 1]
        await_events(executor, Kind.READY, lambda event: event.slot, {0, 1})  # loaded, with no chunk sent
        executor.start(2)
        assert {slot: proc.pid for slot, proc in executor.procs.items()} == pids  # the same processes
        assert executor.submit(1, [3, 4]).pid == pids[1]
        await_events(executor, Kind.DONE, lambda event: int(event.data["frame"]), {3, 4})
        assert (job / "styled" / "000003.png").is_file()
    finally:
        executor.shutdown()


def test_a_worker_ready_before_the_coordinator_runs_gets_the_frame_limit_not_the_load_limit(
        tmp_path: Path, job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its `ready` is queued before the coordinator records its pid: a frame that takes longer than the
    load limit (a 0.5 s pause against 0.1 s) must still finish, not be killed as a worker that never loaded."""
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"2": "slow"}, "point": "engine"}))
    executor = quick_executor(tmp_path, job, workers=1)
    killed: list[int] = []
    kill = executor.kill
    monkeypatch.setattr(executor, "kill", lambda slot: (killed.append(slot), kill(slot)))
    executor.start(1)
    wait_until(lambda: not executor.events.empty())  # its first event: ready
    with manifest(job) as m:
        coordinator = Coordinator(m, executor, m.start_run("test", os.getpid()),
                                  Limits(frame_timeout=60, load_timeout=0.1), Quiet(), lambda frame: True)
        outcome = coordinator.run([[1, 2, 3]])
        assert (outcome.done, outcome.failed, outcome.attempts_failed) == (3, 0, 0)
    assert killed == []  # its one worker did the whole chunk
