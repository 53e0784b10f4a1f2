"""The coordinator's answers to a lost or unplaceable Ray worker, with a scripted executor (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.coordinator import Coordinator, Limits
from pipeline.errors import VpipeError
from pipeline.manifest import Manifest, Status
from tests.helpers import Quiet
from tests.stub_executor import Script, Step, StubExecutor, done, lost, ready, retired, start, works

REASON = "Ray worker lost (its node has died)"
LOST = lost(REASON)


def run(tmp_path: Path, size: int, script: Script) -> Manifest:
    Manifest.create(tmp_path / "m.sqlite", 8, {})
    manifest = Manifest.open(tmp_path / "m.sqlite")
    coordinator = Coordinator(manifest, StubExecutor(size, script), manifest.start_run("test", 1),
                              Limits(max_attempts=1), Quiet(), lambda frame: True)
    try:
        coordinator.run([[1, 2, 3, 4], [5, 6, 7, 8]])
    finally:
        assert manifest.counts()[Status.RUNNING] == 0
    return manifest


def test_a_worker_lost_mid_chunk_costs_its_frame_in_flight_and_hands_back_the_rest(tmp_path: Path) -> None:
    def script(slot: int, pid: int, frames: list[int]) -> list[Step]:
        if pid == 1:  # done 1, dies on 2
            return [ready(), start(1), done(1, 0.1), start(2), LOST]
        return works(frames)

    m = run(tmp_path, 1, script)
    assert m.frames(Status.FAILED) == [2] and m.frames(Status.DONE) == [1, 3, 4, 5, 6, 7, 8]
    assert (m.record(2).error_kind, m.record(2).last_error) == ("crashed", REASON)


def test_a_worker_lost_while_loading_hands_its_chunk_back_without_a_failure(tmp_path: Path) -> None:
    m = run(tmp_path, 1, lambda slot, pid, frames: [LOST] if pid == 1 else works(frames))
    assert m.counts()[Status.DONE] == 8 and all(m.record(i).attempts == 0 for i in range(1, 9))


def test_workers_that_keep_getting_lost_stop_the_run(tmp_path: Path) -> None:
    with pytest.raises(VpipeError, match="keep dying before their engine loads"):
        run(tmp_path, 2, lambda slot, pid, frames: [LOST])


def test_a_retired_slot_gives_its_chunk_to_the_others(tmp_path: Path) -> None:
    m = run(tmp_path, 2, lambda slot, pid, frames: [retired("no room")] if slot == 1 else works(frames))
    assert m.counts()[Status.DONE] == 8


def test_when_every_slot_is_retired_the_run_stops(tmp_path: Path) -> None:
    with pytest.raises(VpipeError, match="no worker could be started: no room"):
        run(tmp_path, 2, lambda slot, pid, frames: [retired("no room")])
