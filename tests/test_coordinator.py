"""The scheduling loop on scripted workers (tests/stub_executor.py): what each event does to the manifest."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from pipeline.coordinator import Coordinator, Limits, Outcome
from pipeline.errors import DiskFullError, VpipeError
from pipeline.manifest import ErrorKind, Manifest, Status
from tests.stub_executor import (
    Step,
    StubExecutor,
    chunk_end,
    died,
    done,
    failed,
    fatal,
    ready,
    start,
    styled,
    works,
    writing,
)

CHUNKS = [[1, 2, 3, 4], [5, 6, 7, 8]]


class Recorder:
    def __init__(self) -> None:
        self.failures: list[tuple[int, str, bool]] = []
        self.chunks: list[tuple[list[int], int, int]] = []

    def frame_done(self, frame: int, seconds: float) -> None: ...

    def frame_failed(self, frame: int, kind: str, message: str, final: bool) -> None:
        self.failures.append((frame, kind, final))

    def chunk_done(self, frames: list[int], done: int, failed: int, seconds: float) -> None:
        self.chunks.append((frames, done, failed))


@pytest.fixture()
def manifest(tmp_path: Path) -> Manifest:
    Manifest.create(tmp_path / "m.sqlite", 8, {})
    return Manifest.open(tmp_path / "m.sqlite")


def run(manifest: Manifest, executor: StubExecutor, limits: Limits | None = None, reporter: Recorder | None = None,
        file_ok: bool = True) -> Outcome:
    coordinator = Coordinator(manifest, executor, manifest.start_run("test", 1), limits or Limits(),
                              reporter or Recorder(), lambda frame: file_ok)
    try:
        return coordinator.run([list(c) for c in CHUNKS])
    finally:
        assert executor.shut_down
        assert manifest.counts()[Status.RUNNING] == 0


def test_every_frame_done(manifest: Manifest) -> None:
    executor = StubExecutor(2, lambda slot, pid, frames: works(frames))
    outcome = run(manifest, executor)
    assert (outcome.done, outcome.failed, outcome.attempts_failed) == (8, 0, 0)
    assert manifest.frames(Status.DONE) == list(range(1, 9))
    assert {pid for _, pid, _ in executor.submitted} == {1, 2}  # one worker per slot, kept


def test_a_worker_death_charges_the_frame_in_flight_and_requeues_the_rest_of_its_chunk(manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        if pid == 1:  # segfaults on frame 3, after 1 and 2
            return [ready(), start(1), done(1), start(2), done(2), start(3), died(-signal.SIGSEGV)]
        return works(frames)

    executor = StubExecutor(1, script)
    recorder = Recorder()
    outcome = run(manifest, executor, Limits(max_attempts=2), recorder)
    assert manifest.frames(Status.DONE) == list(range(1, 9))
    assert [manifest.record(i).attempts for i in range(1, 9)] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert ("failed", None) not in manifest.events(3) and ("attempt_failed", "segfault") in manifest.events(3)
    assert recorder.failures == [(3, "segfault", False)]
    assert outcome.attempts_failed == 1
    # the rest of the dead worker's chunk goes first, to a fresh worker, before the next chunk
    assert executor.submitted[1] == (0, 2, [4])
    assert executor.submitted[2] == (0, 2, [5, 6, 7, 8])
    assert executor.submitted[3] == (0, 2, [3])  # frame 3's retry after the queue


def test_a_worker_death_on_the_last_attempt_fails_the_frame_for_good(manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        if 6 in frames:
            return [ready(), start(6), died(-signal.SIGKILL)]
        return works(frames)

    outcome = run(manifest, StubExecutor(1, script), Limits(max_attempts=1))
    assert manifest.frames(Status.FAILED) == [6]
    assert manifest.frames(Status.DONE) == [1, 2, 3, 4, 5, 7, 8]
    assert (manifest.record(6).error_kind, manifest.record(6).attempts) == (ErrorKind.KILLED, 1)
    assert "likely out of memory" in str(manifest.record(6).last_error)
    assert (outcome.done, outcome.failed) == (7, 1)


def test_a_failed_frame_is_retried_and_the_worker_goes_on(manifest: Manifest) -> None:
    tries: list[int] = []

    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        steps = [ready()]
        for frame in frames:
            if frame == 2 and not tries:
                tries.append(frame)
                steps += [start(2), failed(2)]
            else:
                steps += [start(frame), done(frame)]
        return [*steps, chunk_end()]

    executor = StubExecutor(1, script)
    run(manifest, executor, Limits(max_attempts=2))
    assert manifest.frames(Status.DONE) == list(range(1, 9))
    assert manifest.record(2).attempts == 1
    assert {pid for _, pid, _ in executor.submitted} == {1}  # a failed frame does not cost the worker


def test_a_full_disk_stops_the_run_without_spending_an_attempt(manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        return [ready(), start(1), done(1), start(2), failed(2, ErrorKind.DISK_FULL, "OSError: ENOSPC")]

    with pytest.raises(DiskFullError, match="frame 2"):
        run(manifest, StubExecutor(1, script))
    assert manifest.frames(Status.DONE) == [1]
    assert manifest.frames(Status.PENDING) == list(range(2, 9))
    assert all(manifest.record(i).attempts == 0 for i in range(1, 9))


def test_an_engine_that_does_not_load_stops_the_run_and_spends_nothing(manifest: Manifest) -> None:
    with pytest.raises(VpipeError, match="could not be loaded: not a style model"):
        run(manifest, StubExecutor(2, lambda slot, pid, frames: [fatal("not a style model"), died(1)]))
    assert manifest.frames(Status.PENDING) == list(range(1, 9))


def test_a_worker_that_dies_while_loading_stops_the_run_with_its_stderr(manifest: Manifest) -> None:
    with pytest.raises(VpipeError, match=r"failed while loading the engine \(worker died with SIGABRT\): boom"):
        run(manifest, StubExecutor(1, lambda slot, pid, frames: [died(-signal.SIGABRT, "boom")]))
    assert manifest.frames(Status.PENDING) == list(range(1, 9))


def test_a_frame_past_its_timeout_gets_its_worker_killed_and_fails_as_a_timeout(manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        if pid == 1:
            return [ready(), start(1), done(1), start(2)]  # then nothing: it hangs on frame 2
        return works(frames)

    executor = StubExecutor(1, script)
    run(manifest, executor, Limits(max_attempts=1, frame_timeout=0.2))
    assert executor.killed == [0]
    assert manifest.frames(Status.FAILED) == [2]
    assert (manifest.record(2).error_kind, manifest.record(2).last_error) == ("timeout", "no result within 0.2 s")
    assert manifest.frames(Status.DONE) == [1, *range(3, 9)]


def test_done_without_its_file_is_not_done(manifest: Manifest) -> None:
    outcome = run(manifest, StubExecutor(1, lambda slot, pid, frames: works(frames)), Limits(max_attempts=1),
                  file_ok=False)
    assert manifest.frames(Status.FAILED) == list(range(1, 9)) and outcome.done == 0
    assert manifest.record(1).last_error == "worker reported done but no output file"


def test_the_stub_kills_and_replaces_a_worker_as_an_executor_does() -> None:
    executor = StubExecutor(1, lambda slot, pid, frames: works(frames))
    worker = executor.submit(0, [1])
    events = [executor.next_event(0.01) for _ in range(4)]
    assert [e.kind.value for e in events if e] == ["ready", "start", "done", "chunk_end"]
    executor.kill(0)
    exit_event = executor.next_event(0.01)
    assert exit_event is not None and exit_event.data["pid"] == worker.pid
    assert executor.submit(0, [2]).pid != worker.pid  # a fresh worker after the old one died


# ---------------------------------------------------------------- workers with an I/O pool: stages in flight


def released(manifest: Manifest, frame: int) -> list[str]:
    rows = manifest._conn.execute("SELECT message FROM events WHERE idx=? AND event='released'", (frame,))
    return [str(r[0]) for r in rows]


def test_a_death_in_the_network_charges_it_and_the_frames_queued_for_writing_spend_nothing(
        manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        if pid == 1:  # 1 written; 2 and 3 out of the network, queued for writing; dies with 4 in it
            return [ready(), start(1), styled(1), writing(1), done(1), start(2), styled(2), start(3), styled(3),
                    start(4), died(-signal.SIGSEGV)]
        return works(frames)

    executor = StubExecutor(1, script)
    run(manifest, executor, Limits(max_attempts=2))
    assert manifest.frames(Status.DONE) == list(range(1, 9))
    assert [manifest.record(i).attempts for i in range(1, 9)] == [0, 0, 0, 1, 0, 0, 0, 0]
    assert ("attempt_failed", "segfault") in manifest.events(4)
    assert [len(released(manifest, i)) for i in (2, 3)] == [1, 1]  # back to pending, no attempt spent
    assert "queued" in released(manifest, 2)[0]
    assert executor.submitted[1] == (0, 2, [2, 3])


def test_a_death_with_nothing_in_the_network_charges_the_frame_being_written(manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        if pid == 1:  # 3 was the chunk's last into the network; it dies writing 2 with 3 queued
            return [ready(), start(1), styled(1), writing(1), done(1), start(2), styled(2), writing(2),
                    start(3), styled(3), died(-signal.SIGKILL)]
        return works(frames)

    run(manifest, StubExecutor(1, script), Limits(max_attempts=2))
    assert [manifest.record(i).attempts for i in range(1, 9)] == [0, 1, 0, 0, 0, 0, 0, 0]
    assert ("attempt_failed", "killed") in manifest.events(2)


def test_a_death_with_several_frames_in_flight_retries_each_alone_and_charges_the_one_that_dies_alone(
        manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        if 6 in frames:  # frame 6 kills its worker, alone or not: in the network with 5 being written
            steps = [ready()]
            for frame in frames:
                if frame == 6:
                    return [*steps, start(6), died(-signal.SIGSEGV)]
                steps += [start(frame), styled(frame), writing(frame)]
            return steps
        return works(frames)

    executor = StubExecutor(1, script)
    outcome = run(manifest, executor, Limits(max_attempts=2))
    assert manifest.frames(Status.FAILED) == [6]
    assert [manifest.record(i).attempts for i in range(1, 9)] == [0, 0, 0, 0, 0, 2, 0, 0]
    assert "retried alone" in released(manifest, 5)[0] and "retried alone" in released(manifest, 6)[0]
    assert "queued" in released(manifest, 7)[0]
    assert (outcome.done, outcome.failed, outcome.attempts_failed) == (7, 1, 2)
    # 7-8 go on at once; 5 and 6 each alone, where 6's deaths are its own
    assert [frames for _, _, frames in executor.submitted[2:]] == [[7, 8], [5], [6], [6]]


def test_a_worker_that_keeps_dying_between_frames_cannot_requeue_them_forever(manifest: Manifest) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        return [ready(), died(-signal.SIGKILL)]  # every worker dies before its first frame

    outcome = run(manifest, StubExecutor(1, script), Limits(max_attempts=2))
    assert manifest.frames(Status.FAILED) == list(range(1, 9))  # each alone, then charged: the run ends
    assert (outcome.failed, outcome.attempts_failed) == (8, 16)
