"""The SQLite job manifest, on a real database file in tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import manifest as manifest_module
from pipeline.errors import JobError
from pipeline.manifest import SCHEMA_VERSION, ErrorKind, FrameRecord, Manifest, Status
from tests.helpers import frame_stats


@pytest.fixture()
def path(tmp_path: Path) -> Path:
    p = tmp_path / "manifest.db"
    Manifest.create(p, 10, {"source": "/videos/in.mp4", "name_width": 6})
    return p


@pytest.fixture()
def m(path: Path) -> Iterator[Manifest]:
    opened = Manifest.open(path)
    yield opened
    opened.close()


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(manifest_module, "time", fake)
    return fake


def row(path: Path, idx: int, columns: str) -> tuple:
    """Read a frame row with a separate connection (what another process would see)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {columns} FROM frames WHERE idx=?", (idx,)).fetchone()
    finally:
        conn.close()


# ---------------------------------------------------------------- create / open


def test_create_and_open(path: Path, m: Manifest) -> None:
    assert m.path == path
    assert m.frame_count() == 10
    assert m.frames(Status.PENDING) == list(range(1, 11))
    assert m.meta("source") == "/videos/in.mp4"
    assert m.meta("name_width") == 6
    assert m.meta("schema_version") == SCHEMA_VERSION
    assert not path.with_name(path.name + ".partial").exists()


def test_create_every_frame_starts_clean(m: Manifest) -> None:
    assert m.record(4) == FrameRecord(4, Status.PENDING, 0, None, None, None)


def test_create_replaces_an_earlier_manifest(path: Path) -> None:
    Manifest.create(path, 3, {"source": "other.mp4"})
    again = Manifest.open(path)
    try:
        assert again.frame_count() == 3
        assert again.meta("source") == "other.mp4"
    finally:
        again.close()


def test_create_removes_a_stale_partial(tmp_path: Path) -> None:
    target = tmp_path / "m.db"
    stale = tmp_path / "m.db.partial"
    stale.write_bytes(b"left over from a killed split")
    Manifest.create(target, 2, {})
    assert not stale.exists()
    opened = Manifest.open(target)
    try:
        assert opened.frame_count() == 2
    finally:
        opened.close()


def test_create_zero_frames(tmp_path: Path) -> None:
    target = tmp_path / "empty.db"
    Manifest.create(target, 0, {})
    opened = Manifest.open(target)
    try:
        assert opened.frame_count() == 0
        assert opened.frames(Status.PENDING) == []
        assert opened.counts() == {Status.PENDING: 0, Status.RUNNING: 0, Status.DONE: 0, Status.FAILED: 0}
    finally:
        opened.close()


def test_open_missing(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="no manifest"):
        Manifest.open(tmp_path / "absent.db")


def test_open_newer_schema(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(JobError, match="newer") as caught:
        Manifest.open(path)
    assert str(SCHEMA_VERSION + 1) in str(caught.value)


def test_open_garbage_file(tmp_path: Path) -> None:
    garbage = tmp_path / "manifest.db"
    garbage.write_bytes(b"this is not an SQLite database at all\n" * 100)
    with pytest.raises(JobError, match="is damaged"):
        Manifest.open(garbage)


def test_open_sqlite_without_meta(tmp_path: Path) -> None:
    other = tmp_path / "manifest.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE something (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JobError):
        Manifest.open(other)


def test_wal_journal_mode_after_open(path: Path, m: Manifest) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert m._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


# ---------------------------------------------------------------- meta


def test_meta_round_trip(path: Path, m: Manifest) -> None:
    video = {"width": 64, "height": 48, "rate": "30000/1001", "audio": [{"index": 1, "codec": "aac"}],
             "rotation": 90, "duration": 1.0, "frame_count": None}
    m.set_meta("video", video)
    assert m.meta("video") == video
    m.set_meta("video", {"width": 1})
    assert m.meta("video") == {"width": 1}
    assert m.meta("missing") is None
    assert m.meta("missing", {"d": 1}) == {"d": 1}
    m.close()
    reopened = Manifest.open(path)
    try:
        assert reopened.meta("video") == {"width": 1}
    finally:
        reopened.close()


# ---------------------------------------------------------------- counts / frames


def test_counts(m: Manifest) -> None:
    assert m.counts() == {Status.PENDING: 10, Status.RUNNING: 0, Status.DONE: 0, Status.FAILED: 0}
    run = m.start_run("stylize", 123)
    m.mark_running([1, 2, 3, 4], run, "w0")
    m.mark_done(1, run, 0.5, "h1")
    m.mark_attempt_failed(2, run, ErrorKind.SEGFAULT, "boom", final=True)
    assert m.counts() == {Status.PENDING: 6, Status.RUNNING: 2, Status.DONE: 1, Status.FAILED: 1}


def test_frames_range_filtering(m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([2, 3, 8], run, "w0")
    for idx in (2, 3, 8):
        m.mark_done(idx, run, 0.1, f"h{idx}")
    assert m.frames(Status.DONE) == [2, 3, 8]
    assert m.frames(Status.DONE, 3) == [3, 8]
    assert m.frames(Status.DONE, 3, 7) == [3]
    assert m.frames(Status.DONE, 1, 2) == [2]
    assert m.frames(Status.DONE, 9, 10) == []
    assert m.frames(Status.PENDING, 1, 5) == [1, 4, 5]
    assert m.frames(Status.PENDING, 6) == [6, 7, 9, 10]
    assert m.done_hashes() == {2: "h2", 3: "h3", 8: "h8"}


# ---------------------------------------------------------------- transitions


def test_mark_running_and_done(path: Path, m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([1, 2], run, "worker-3")
    assert m.frames(Status.RUNNING) == [1, 2]
    assert row(path, 1, "status, run_id, worker") == ("running", run, "worker-3")
    m.mark_done(1, run, 1.25, "abc123")
    assert m.record(1) == FrameRecord(1, Status.DONE, 0, None, None, 1.25)
    assert m.done_hashes() == {1: "abc123"}
    assert m.events(1) == [("done", None)]
    assert m.frames(Status.RUNNING) == [2]


def test_mark_attempt_failed_not_final(m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([5], run, "w0")
    m.mark_attempt_failed(5, run, ErrorKind.TIMEOUT, "took longer than 60 s", final=False)
    assert m.record(5) == FrameRecord(5, Status.PENDING, 1, "timeout", "took longer than 60 s", None)
    assert m.events(5) == [("attempt_failed", "timeout")]
    m.mark_running([5], run, "w1")
    m.mark_attempt_failed(5, run, ErrorKind.KILLED, "SIGKILL (out of memory?)", final=False)
    assert m.record(5) == FrameRecord(5, Status.PENDING, 2, "killed", "SIGKILL (out of memory?)", None)


def test_mark_attempt_failed_final(m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([5], run, "w0")
    m.mark_attempt_failed(5, run, ErrorKind.EXCEPTION, "first", final=False)
    m.mark_running([5], run, "w0")
    m.mark_attempt_failed(5, run, ErrorKind.SEGFAULT, "signal 11", final=True)
    assert m.record(5) == FrameRecord(5, Status.FAILED, 2, "segfault", "signal 11", None)
    assert m.records(Status.FAILED) == [FrameRecord(5, Status.FAILED, 2, "segfault", "signal 11", None)]
    assert m.events(5) == [("attempt_failed", "exception"), ("failed", "segfault")]
    assert m.frames(Status.FAILED) == [5]


def test_done_after_a_failed_attempt_clears_the_error_kind(m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([3], run, "w0")
    m.mark_attempt_failed(3, run, ErrorKind.CRASHED, "exit code 1", final=False)
    m.mark_running([3], run, "w0")
    m.mark_done(3, run, 0.2, "h")
    rec = m.record(3)
    assert rec.status is Status.DONE
    assert rec.attempts == 1
    assert rec.error_kind is None


def test_release(path: Path, m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([1, 2, 3], run, "w0")
    m.mark_attempt_failed(2, run, ErrorKind.EXCEPTION, "x", final=False)  # 2 is pending again, attempts 1
    m.mark_running([4], run, "w1")
    m.mark_done(4, run, 0.1, "h4")
    m.release([1, 2, 3, 4, 5], run, "interrupted")
    assert m.frames(Status.PENDING) == list(range(1, 4)) + list(range(5, 11))
    assert m.frames(Status.DONE) == [4]
    assert m.record(1).attempts == 0
    assert m.record(2).attempts == 1
    assert m.record(3).attempts == 0
    assert m.events(1) == [("released", None)]
    assert m.events(3) == [("released", None)]
    assert m.events(2) == [("attempt_failed", "exception")]  # was not running: no event
    assert m.events(4) == [("done", None)]
    assert m.events(5) == []
    conn = sqlite3.connect(path)
    try:
        messages = conn.execute("SELECT idx, message FROM events WHERE event='released' ORDER BY idx").fetchall()
    finally:
        conn.close()
    assert messages == [(1, "interrupted"), (3, "interrupted")]


def test_reclaim(m: Manifest) -> None:
    dead = m.start_run("stylize", 1)
    m.mark_running([2, 3, 4], dead, "w0")
    m.mark_done(2, dead, 0.3, "h2")
    m.mark_attempt_failed(3, dead, ErrorKind.EXCEPTION, "x", final=False)
    m.mark_running([3], dead, "w0")
    # the run dies here, leaving 3 and 4 running
    new = m.start_run("stylize", 2)
    assert m.reclaim(new) == [3, 4]
    assert m.frames(Status.RUNNING) == []
    assert m.frames(Status.DONE) == [2]
    assert m.record(3).status is Status.PENDING
    assert m.record(3).attempts == 1  # untouched
    assert m.record(4).attempts == 0
    assert m.events(4) == [("reclaimed", None)]
    assert m.events(3) == [("attempt_failed", "exception"), ("reclaimed", None)]
    assert m.reclaim(new) == []


def test_requeue_failed_keeps_history(m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([2, 6, 7], run, "w0")
    for idx in (2, 6, 7):
        m.mark_attempt_failed(idx, run, ErrorKind.SEGFAULT, "signal 11", final=True)
    retry = m.start_run("retry-failed", 2)
    assert m.requeue_failed(retry, 3, 10) == [6, 7]
    assert m.frames(Status.FAILED) == [2]
    assert m.frames(Status.PENDING, 6, 7) == [6, 7]
    assert m.events(6) == [("failed", "segfault"), ("retry", None)]
    rec = m.record(6)
    assert rec.status is Status.PENDING
    assert rec.attempts == 1  # history of attempts is kept
    assert rec.last_error == "signal 11"
    assert m.requeue_failed(retry) == [2]
    assert m.frames(Status.FAILED) == []
    assert m.events(2) == [("failed", "segfault"), ("retry", None)]


def test_reset(path: Path, m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([1, 2], run, "w0")
    m.mark_done(1, run, 0.5, "h1")
    m.mark_attempt_failed(2, run, ErrorKind.TIMEOUT, "slow", final=True)
    m.reset(None, [1, 2], "restart")
    assert m.frames(Status.PENDING) == list(range(1, 11))
    assert m.done_hashes() == {}
    assert row(path, 1, "output_hash, error_kind, last_error") == (None, None, None)
    assert row(path, 2, "output_hash, error_kind, last_error") == (None, None, None)
    assert m.events(1) == [("done", None), ("reset", None)]
    assert m.events(2) == [("failed", "timeout"), ("reset", None)]


def test_events_all(m: Manifest) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([1, 2], run, "w0")
    m.mark_done(2, run, 0.1, "h")
    m.mark_done(1, run, 0.1, "h")
    assert m.events() == [("done", None), ("done", None)]


def test_runs_are_recorded(path: Path, m: Manifest) -> None:
    first = m.start_run("stylize", 111)
    second = m.start_run("retry-failed", 222)
    assert second == first + 1
    m.finish_run(first, "interrupted")
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT id, command, pid, outcome, finished_at IS NOT NULL "
                            "FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()
    assert rows == [(first, "stylize", 111, "interrupted", 1), (second, "retry-failed", 222, None, 0)]


# ---------------------------------------------------------------- throughput


def test_throughput_none_before_any_frame_is_done(m: Manifest) -> None:
    assert m.throughput() is None
    run = m.start_run("stylize", 1)
    m.mark_running([1], run, "w0")
    m.mark_started(1)
    assert m.throughput() is None


def test_throughput_of_the_latest_run(m: Manifest, clock: FakeClock) -> None:
    first = m.start_run("stylize", 1)
    m.mark_running([1, 2], first, "w0")
    clock.now = 1000.0
    m.mark_started(1)
    m.mark_started(2)
    clock.now = 1100.0
    m.mark_done(1, first, 100.0, "h1")
    m.mark_done(2, first, 100.0, "h2")
    assert m.throughput() == (2, 100.0)

    second = m.start_run("stylize", 2)
    m.mark_running([3, 4, 5], second, "w0")
    clock.now = 2000.0
    m.mark_started(3)
    clock.now = 2004.0
    m.mark_done(3, second, 4.0, "h3")
    m.mark_started(4)
    clock.now = 2010.0
    m.mark_done(4, second, 6.0, "h4")
    assert m.throughput() == (2, 10.0)


def test_throughput_never_zero_seconds(m: Manifest, clock: FakeClock) -> None:
    run = m.start_run("stylize", 1)
    m.mark_running([1], run, "w0")
    clock.now = 5.0
    m.mark_started(1)
    m.mark_done(1, run, 0.0, "h")
    done, seconds = m.throughput()  # type: ignore[misc]
    assert done == 1
    assert 0 < seconds <= 1e-6


def test_version_1_manifest_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite"
    Manifest.create(path, 3, {"ext": "png"})
    with sqlite3.connect(path) as conn:  # what vpipe 0.1 wrote: no stats column, version 1
        conn.execute("ALTER TABLE frames DROP COLUMN stats")
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    m = Manifest.open(path)
    try:
        assert m.meta("schema_version") == SCHEMA_VERSION
        m.mark_done(2, 1, 0.5, "abc", {"iterations": 7, "loss": 1.5})
        assert frame_stats(path) == {2: {"iterations": 7, "loss": 1.5}}
    finally:
        m.close()
