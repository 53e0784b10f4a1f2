"""The job manifest: one SQLite row per frame, plus a history of every transition.

The coordinator is its only writer. Each transition is one transaction (WAL, synchronous=FULL),
so a kill at any moment leaves either the old state or the new one. Opening checks it (SQLite's quick
check): a damaged manifest is refused before anything reads or writes it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import disk
from .errors import DISK_FULL_HINT, DiskFullError, JobError, VpipeError, is_disk_full
from .job import JobMeta

SCHEMA_VERSION = 2  # 2: frames.stats (per-frame engine figures, JSON)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE frames (
    idx INTEGER PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error_kind TEXT, last_error TEXT, worker TEXT,
    started_at REAL, finished_at REAL, seconds REAL, output_hash TEXT, run_id INTEGER, stats TEXT
);
CREATE INDEX frames_status ON frames(status);
CREATE TABLE events (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, run_id INTEGER, idx INTEGER,
    event TEXT NOT NULL, error_kind TEXT, message TEXT
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, command TEXT NOT NULL, pid INTEGER NOT NULL,
    started_at REAL NOT NULL, finished_at REAL, outcome TEXT
);
"""


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ErrorKind(StrEnum):
    EXCEPTION = "exception"
    SEGFAULT = "segfault"
    KILLED = "killed"  # SIGKILL: most often the kernel's out-of-memory killer
    CRASHED = "crashed"  # any other abnormal exit (abort, exit code)
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"  # MemoryError under the worker's address-space limit
    DISK_FULL = "disk_full"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class FrameRecord:
    idx: int
    status: Status
    attempts: int
    error_kind: str | None
    last_error: str | None
    seconds: float | None


class Manifest:
    """`with Manifest.open(path) as manifest:` closes the connection however the block ends."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # ------------------------------------------------------------ opening

    @staticmethod
    def create(path: Path, frame_count: int, meta: dict[str, Any]) -> None:
        """Write a complete manifest under a temporary name, then rename it into place."""
        partial = path.with_name(path.name + ".partial")
        partial.unlink(missing_ok=True)
        conn = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO meta VALUES (?, ?)",
                             [(k, json.dumps(v)) for k, v in {**meta, "schema_version": SCHEMA_VERSION}.items()])
            conn.executemany("INSERT INTO frames (idx) VALUES (?)", ((i,) for i in range(1, frame_count + 1)))
            conn.execute("COMMIT")
        finally:
            conn.close()
        partial.replace(path)

    @staticmethod
    def open(path: Path) -> Manifest:
        if not path.is_file():
            raise JobError(f"no manifest at {path}: run `vpipe split` first")
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise JobError(damaged(path, problem))
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = json.loads(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise JobError(f"manifest {path} has schema version {version}, newer than this vpipe "
                               f"understands ({SCHEMA_VERSION}): upgrade vpipe")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if version < SCHEMA_VERSION:
                _migrate(conn, version)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise _open_error(path, exc) from exc
        except JobError:
            conn.close()
            raise
        return Manifest(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")  # a failed COMMIT (disk full) leaves the transaction open
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if _disk_full(exc, self.path):
                raise DiskFullError(f"no space left on the device for the manifest {self.path.name}; "
                                    f"{DISK_FULL_HINT}") from exc
            raise

    def _event(self, conn: sqlite3.Connection, run_id: int | None, idx: int | None, event: str,
               kind: str | None = None, message: str | None = None) -> None:
        conn.execute("INSERT INTO events (ts, run_id, idx, event, error_kind, message) VALUES (?,?,?,?,?,?)",
                     (time.time(), run_id, idx, event, kind, message))

    # ------------------------------------------------------------ metadata

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def job_meta(self) -> JobMeta:
        """The video facts split recorded (one query); a manifest without them is not a job's."""
        marks = ",".join("?" * len(JobMeta.KEYS))
        rows = self._conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", JobMeta.KEYS).fetchall()
        record = {k: json.loads(v) for k, v in rows}
        missing = [k for k in JobMeta.KEYS if k not in record]
        if missing:
            raise JobError(f"manifest {self.path} lacks {', '.join(missing)}: it was not written by `vpipe split`")
        return JobMeta.from_record(record)

    def set_meta(self, key: str, value: Any) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # ------------------------------------------------------------ reading

    def frame_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0])

    def counts(self) -> dict[Status, int]:
        rows = self._conn.execute("SELECT status, COUNT(*) FROM frames GROUP BY status").fetchall()
        found = {Status(s): n for s, n in rows}
        return {s: found.get(s, 0) for s in Status}

    def frames(self, status: Status, first: int = 1, last: int | None = None) -> list[int]:
        last = self.frame_count() if last is None else last
        rows = self._conn.execute("SELECT idx FROM frames WHERE status=? AND idx BETWEEN ? AND ? ORDER BY idx",
                                  (status.value, first, last)).fetchall()
        return [r[0] for r in rows]

    def records(self, status: Status) -> list[FrameRecord]:
        rows = self._conn.execute(
            "SELECT idx, status, attempts, error_kind, last_error, seconds FROM frames "
            "WHERE status=? ORDER BY idx", (status.value,)).fetchall()
        return [FrameRecord(r[0], Status(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def record(self, idx: int) -> FrameRecord:
        r = self._conn.execute("SELECT idx, status, attempts, error_kind, last_error, seconds FROM frames "
                               "WHERE idx=?", (idx,)).fetchone()
        return FrameRecord(r[0], Status(r[1]), r[2], r[3], r[4], r[5])

    def done_hashes(self) -> dict[int, str]:
        rows = self._conn.execute("SELECT idx, output_hash FROM frames WHERE status='done'").fetchall()
        return dict(rows)

    def events(self, idx: int | None = None) -> list[tuple[str, str | None]]:
        rows = self._conn.execute("SELECT event, error_kind FROM events WHERE (? IS NULL OR idx=?) ORDER BY id",
                                  (idx, idx)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def throughput(self) -> tuple[int, float] | None:
        """(frames done, seconds) for the latest run that finished frames: the basis of an ETA."""
        row = self._conn.execute(
            "SELECT run_id, COUNT(*), MIN(started_at), MAX(finished_at) FROM frames "
            "WHERE status='done' AND run_id=(SELECT MAX(run_id) FROM frames WHERE status='done')").fetchone()
        if not row or not row[1] or row[3] is None or row[2] is None:
            return None
        return int(row[1]), max(float(row[3]) - float(row[2]), 1e-6)

    # ------------------------------------------------------------ runs and transitions

    def start_run(self, command: str, pid: int) -> int:
        with self._write() as conn:
            cur = conn.execute("INSERT INTO runs (command, pid, started_at) VALUES (?,?,?)",
                               (command, pid, time.time()))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, outcome: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE runs SET finished_at=?, outcome=? WHERE id=?", (time.time(), outcome, run_id))

    def reclaim(self, run_id: int) -> list[int]:
        """Frames left `running` by a run that died: back to pending, attempts untouched."""
        with self._write() as conn:
            stale = [r[0] for r in conn.execute("SELECT idx FROM frames WHERE status='running'")]
            conn.execute("UPDATE frames SET status='pending', worker=NULL WHERE status='running'")
            for idx in stale:
                self._event(conn, run_id, idx, "reclaimed")
        return stale

    def mark_running(self, frames: Iterable[int], run_id: int, worker: str) -> None:
        with self._write() as conn:
            conn.executemany("UPDATE frames SET status='running', run_id=?, worker=? WHERE idx=?",
                             [(run_id, worker, i) for i in frames])

    def mark_started(self, idx: int) -> None:
        """When a worker begins the frame: the clock for timings (not an event, to keep writes few)."""
        with self._write() as conn:
            conn.execute("UPDATE frames SET started_at=? WHERE idx=?", (time.time(), idx))

    def mark_done(self, idx: int, run_id: int, seconds: float, output_hash: str,
                  stats: dict[str, Any] | None = None) -> None:
        with self._write() as conn:
            conn.execute("UPDATE frames SET status='done', finished_at=?, seconds=?, output_hash=?, stats=?, "
                         "error_kind=NULL, last_error=NULL WHERE idx=?",
                         (time.time(), seconds, output_hash, json.dumps(stats) if stats else None, idx))
            self._event(conn, run_id, idx, "done")

    def mark_attempt_failed(self, idx: int, run_id: int, kind: ErrorKind, message: str, final: bool) -> None:
        """A failed attempt costs one attempt; the frame is `failed` once it has no attempts left."""
        status = Status.FAILED if final else Status.PENDING
        with self._write() as conn:
            conn.execute("UPDATE frames SET status=?, attempts=attempts+1, error_kind=?, last_error=?, "
                         "finished_at=? WHERE idx=?", (status.value, kind.value, message, time.time(), idx))
            self._event(conn, run_id, idx, "failed" if final else "attempt_failed", kind.value, message)

    def release(self, frames: Iterable[int], run_id: int, reason: str) -> None:
        """Running frames back to pending without spending an attempt (interruption, requeue)."""
        with self._write() as conn:
            for idx in frames:
                cur = conn.execute("UPDATE frames SET status='pending' WHERE idx=? AND status='running'", (idx,))
                if cur.rowcount:
                    self._event(conn, run_id, idx, "released", None, reason)

    def requeue_failed(self, run_id: int | None, first: int = 1, last: int | None = None) -> list[int]:
        """Failed frames back to pending for another try; their history stays in `events`."""
        frames = self.frames(Status.FAILED, first, last)
        with self._write() as conn:
            for idx in frames:
                conn.execute("UPDATE frames SET status='pending' WHERE idx=?", (idx,))
                self._event(conn, run_id, idx, "retry")
        return frames

    def reset(self, run_id: int | None, frames: Iterable[int], reason: str) -> None:
        """Frames back to a clean pending (used by --restart and by verification)."""
        with self._write() as conn:
            for idx in frames:
                conn.execute("UPDATE frames SET status='pending', output_hash=NULL, error_kind=NULL, "
                             "last_error=NULL WHERE idx=?", (idx,))
                self._event(conn, run_id, idx, "reset", None, reason)


FULL_BELOW = 1 << 20  # bytes free under which an SQLite I/O error is taken for a full disk


def _disk_full(exc: sqlite3.DatabaseError | BaseException, path: Path) -> bool:
    """SQLITE_FULL, or an I/O error on a disk with (almost) no room left: growing the shared-memory
    file of WAL mode fails as SQLITE_IOERR_SHMSIZE, not SQLITE_FULL."""
    io_error = isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_IOERR
    return is_disk_full(exc) or (io_error and disk.free(path.parent) < FULL_BELOW)


def _open_error(path: Path, exc: sqlite3.DatabaseError) -> VpipeError:
    """What stops a manifest from opening, in one line: a full disk, a read-only folder, damage."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if _disk_full(exc, path):  # opening in WAL mode creates and grows files next to it
        return DiskFullError(f"no space left on the device to open the manifest {path}; {DISK_FULL_HINT}")
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR) and not (
            os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)):
        why = "a read-only file system" if os.statvfs(path.parent).f_flag & os.ST_RDONLY else "no write permission"
        return JobError(f"the job folder {path.parent} is read-only ({why}): vpipe writes its manifest, lock and "
                        "log there; make it writable, or copy the job to a disk that is")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return JobError(damaged(path, str(exc)))
    return JobError(f"manifest {path} is unreadable ({exc}); the frame files are intact")


def damaged(path: Path, problem: str) -> str:
    """The one line for a manifest that fails its integrity check."""
    problem = "; ".join(line.strip() for line in problem.splitlines() if line.strip() and not line.startswith("***"))
    return (f"manifest {path} is damaged ({problem[:120]}): no command stylizes or assembles on it. The frame "
            "files are intact, but vpipe cannot rebuild a manifest from them (and `vpipe verify` needs it too): "
            f"restore {path.name} from a backup, salvage it with `sqlite3 {path.name} .recover`, "
            "or split the video again into a new job")


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring an older manifest up to this schema in one transaction (additive changes only)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(frames)")}
        if version < 2 and "stats" not in columns:
            conn.execute("ALTER TABLE frames ADD COLUMN stats TEXT")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
