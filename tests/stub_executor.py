"""An in-process executor for coordinator tests: scripted workers, no subprocess, no engine.

It follows the Executor Protocol (pipeline/executors/protocol.py) as LocalExecutor does: a slot keeps
its worker (and pid) from chunk to chunk until that worker exits; the next chunk on the slot gets a
fresh one. A script says what the worker reports for each chunk it is given; every scripted event
goes through the protocol's codec, as a real worker's line would, and `kill` ends the worker with
SIGKILL as it would a real one.
"""

from __future__ import annotations

import itertools
import queue
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.executors.protocol import Event, Kind, decode_event, encode_event
from pipeline.manifest import ErrorKind

Step = tuple[Kind, dict[str, Any]]
Script = Callable[[int, int, list[int]], list[Step]]  # (slot, pid, frames) -> what that worker reports


@dataclass
class StubWorker:
    pid: int
    alive: bool = True


class StubExecutor:
    def __init__(self, size: int, script: Script) -> None:
        self.size = size
        self.script = script
        self.events: queue.Queue[Event] = queue.Queue()
        self.workers: dict[int, StubWorker] = {}
        self.submitted: list[tuple[int, int, list[int]]] = []  # (slot, pid, frames) in order
        self.killed: list[int] = []  # slots
        self.shut_down = False
        self._pids = itertools.count(1)

    def start(self, slots: int) -> None:
        """Stub workers start with their first chunk."""

    def submit(self, slot: int, frames: list[int]) -> StubWorker:
        worker = self.workers.get(slot)
        if worker is None or not worker.alive:
            worker = self.workers[slot] = StubWorker(next(self._pids))
        self.submitted.append((slot, worker.pid, list(frames)))
        for kind, data in self.script(slot, worker.pid, list(frames)):
            if kind in (Kind.EXIT, Kind.RETIRED):
                worker.alive = False
                data = {**data, "pid": worker.pid}
            self._put(slot, kind, data)
        return worker

    def _put(self, slot: int, kind: Kind, data: dict[str, Any]) -> None:
        event = decode_event(encode_event(kind, **data), slot)
        assert event is not None
        self.events.put(event)

    def next_event(self, timeout: float) -> Event | None:
        try:
            return self.events.get(timeout=min(timeout, 0.01))
        except queue.Empty:
            return None

    def kill(self, slot: int) -> None:
        self.killed.append(slot)
        worker = self.workers.get(slot)
        if worker is not None and worker.alive:
            worker.alive = False
            self._put(slot, Kind.EXIT, {"returncode": -signal.SIGKILL, "pid": worker.pid, "stderr_tail": ""})

    def shutdown(self) -> None:
        self.shut_down = True


# ---------------------------------------------------------------- what scripted workers say


def ready() -> Step:
    return Kind.READY, {}


def start(frame: int) -> Step:
    return Kind.START, {"frame": frame}


def styled(frame: int) -> Step:
    return Kind.STYLED, {"frame": frame}


def writing(frame: int) -> Step:
    return Kind.WRITING, {"frame": frame}


def done(frame: int, seconds: float = 0.01) -> Step:
    return Kind.DONE, {"frame": frame, "seconds": seconds, "hash": f"h{frame}", "stats": {}}


def failed(frame: int, kind: ErrorKind = ErrorKind.EXCEPTION, message: str = "ValueError: bad frame") -> Step:
    return Kind.FAILED, {"frame": frame, "kind": kind, "message": message}


def chunk_end() -> Step:
    return Kind.CHUNK_END, {}


def fatal(message: str) -> Step:
    return Kind.FATAL, {"message": message}


def died(returncode: int, stderr_tail: str = "") -> Step:
    """The worker process ended (the executor's event; the stub adds the pid)."""
    return Kind.EXIT, {"returncode": returncode, "stderr_tail": stderr_tail}


def lost(reason: str) -> Step:
    """A Ray worker lost with its node."""
    return Kind.EXIT, {"returncode": -signal.SIGKILL, "lost": True, "reason": reason}


def retired(reason: str) -> Step:
    return Kind.RETIRED, {"reason": reason}


def works(frames: list[int]) -> list[Step]:
    """A worker that styles every frame of its chunk (ready first: harmless for one already loaded)."""
    return [ready(), *(step for frame in frames for step in (start(frame), done(frame))), chunk_end()]
