"""The coordinator's answers to a lost or unplaceable Ray worker, with a scripted executor (no Ray needed)."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.coordinator import Coordinator, Limits
from pipeline.errors import VpipeError
from pipeline.executors.local import Event
from pipeline.manifest import Manifest, Status


@dataclass
class Handle:
    pid: int


class Scripted:
    """Each submit gets a fresh worker; `script(slot, pid, frames)` says what it reports."""

    def __init__(self, size: int, script: Callable[[int, int, list[int]], list[tuple[str, dict[str, object]]]]) -> None:
        self.size = size
        self.script = script
        self.events: queue.Queue[Event] = queue.Queue()
        self.pids = iter(range(1, 10_000))

    def submit(self, slot: int, frames: list[int]) -> Handle:
        handle = Handle(next(self.pids))
        for kind, data in self.script(slot, handle.pid, frames):
            self.events.put(Event(slot, kind, {**data, "pid": handle.pid} if kind in ("exit", "retired") else data))
        return handle

    def next_event(self, timeout: float) -> Event | None:
        try:
            return self.events.get(timeout=0.01)
        except queue.Empty:
            return None

    def kill(self, slot: int) -> None:
        pass

    def shutdown(self) -> None:
        pass


class Quiet:
    def frame_done(self, frame: int, seconds: float) -> None: ...
    def frame_failed(self, frame: int, kind: str, message: str, final: bool) -> None: ...
    def chunk_done(self, frames: list[int], done: int, failed: int, seconds: float) -> None: ...


def works(frames: list[int]) -> list[tuple[str, dict[str, object]]]:
    events: list[tuple[str, dict[str, object]]] = [("ready", {})]
    for frame in frames:
        events += [("start", {"frame": frame}), ("done", {"frame": frame, "seconds": 0.01, "hash": "h"})]
    return [*events, ("chunk_end", {})]


LOST = {"returncode": -9, "lost": True, "reason": "Ray worker lost (its node has died)"}


def run(tmp_path: Path, size: int, script: Callable[[int, int, list[int]], list[tuple[str, dict[str, object]]]]
        ) -> Manifest:
    Manifest.create(tmp_path / "m.sqlite", 8, {})
    manifest = Manifest.open(tmp_path / "m.sqlite")
    coordinator = Coordinator(manifest, Scripted(size, script), manifest.start_run("test", 1), Limits(max_attempts=1),
                              Quiet(), lambda frame: True)
    try:
        coordinator.run([[1, 2, 3, 4], [5, 6, 7, 8]])
    finally:
        assert manifest.counts()[Status.RUNNING] == 0
    return manifest


def test_a_worker_lost_mid_chunk_costs_its_frame_in_flight_and_hands_back_the_rest(tmp_path: Path) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[tuple[str, dict[str, object]]]:
        if pid == 1:  # done 1, dies on 2
            return [("ready", {}), ("start", {"frame": 1}), ("done", {"frame": 1, "seconds": 0.1, "hash": "h"}),
                    ("start", {"frame": 2}), ("exit", LOST)]
        return works(frames)

    m = run(tmp_path, 1, script)
    assert m.frames(Status.FAILED) == [2] and m.frames(Status.DONE) == [1, 3, 4, 5, 6, 7, 8]
    assert (m.record(2).error_kind, m.record(2).last_error) == ("crashed", LOST["reason"])


def test_a_worker_lost_while_loading_hands_its_chunk_back_without_a_failure(tmp_path: Path) -> None:
    m = run(tmp_path, 1, lambda slot, pid, frames: [("exit", LOST)] if pid == 1 else works(frames))
    assert m.counts()[Status.DONE] == 8 and all(m.record(i).attempts == 0 for i in range(1, 9))


def test_workers_that_keep_getting_lost_stop_the_run(tmp_path: Path) -> None:
    with pytest.raises(VpipeError, match="keep dying before their engine loads"):
        run(tmp_path, 2, lambda slot, pid, frames: [("exit", LOST)])


def test_a_retired_slot_gives_its_chunk_to_the_others(tmp_path: Path) -> None:
    m = run(tmp_path, 2, lambda slot, pid, frames: [("retired", {"reason": "no room"})] if slot == 1 else works(frames))
    assert m.counts()[Status.DONE] == 8


def test_when_every_slot_is_retired_the_run_stops(tmp_path: Path) -> None:
    with pytest.raises(VpipeError, match="no worker could be started: no room"):
        run(tmp_path, 2, lambda slot, pid, frames: [("retired", {"reason": "no room"})])
