"""What a coordinator and its workers say to each other, in one place.

The wire is JSON lines. stdin of a worker: one config line (a WorkerConfig), then one line per chunk
{"frames": [...]}. stdout of a worker: {"event": kind, ...} lines; a frame goes start -> styled ->
writing -> done (or failed at any step), so the coordinator knows which frames a dead worker had in
its network, which it was writing and which merely waited (worker.py). The worker, the local executor
and the Ray node all read and write them through the encode/decode pairs here, and the coordinator
sees only Events; `exit`, `retired` and `refused` are made by the executors themselves, never by a worker.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ..manifest import ErrorKind

if TYPE_CHECKING:
    from .plan import Plan


class Kind(StrEnum):
    READY = "ready"  # the engine loaded; {pid}
    START = "start"  # {frame}: the frame goes into the network (one event per frame of a batch)
    STYLED = "styled"  # {frame}: out of the network, queued for writing
    WRITING = "writing"  # {frame}: a writer encodes and publishes it
    DONE = "done"  # {frame, seconds, hash, stats}: the styled file is published (durable)
    FAILED = "failed"  # {frame, kind (an ErrorKind), message}: this frame only, the worker goes on
    CHUNK_END = "chunk_end"  # the worker is through its chunk and waits for the next
    FATAL = "fatal"  # {message}: the engine could not be loaded; the worker exits
    EXIT = "exit"  # executor: the worker ended; {pid, returncode, stderr_tail} or, lost on Ray, {lost, reason}
    RETIRED = "retired"  # executor (Ray): no worker could be placed for this slot; {pid, reason}
    REFUSED = "refused"  # executor (Ray): a node cannot see the job folder; {message}


CHUNK_OVER = (Kind.CHUNK_END, Kind.EXIT)  # the last event of a chunk: the worker finished it, or died


@dataclass(frozen=True)
class Event:
    slot: int
    kind: Kind
    data: dict[str, Any] = field(default_factory=dict)


class WorkerHandle(Protocol):
    @property
    def pid(self) -> int: ...  # changes whenever the slot gets a fresh worker


class Executor(Protocol):
    """What the coordinator needs from an executor (LocalExecutor, RayExecutor, the tests' StubExecutor)."""

    size: int  # worker slots, numbered 0 .. size - 1

    def start(self, slots: int) -> None: ...  # start slots 0 .. slots - 1 ahead of their first chunk
    def submit(self, slot: int, frames: list[int]) -> WorkerHandle: ...
    def next_event(self, timeout: float) -> Event | None: ...
    def kill(self, slot: int) -> None: ...
    def shutdown(self) -> None: ...


def describe_exit(returncode: int) -> tuple[ErrorKind, str]:
    """(error kind, readable reason) for a worker that exited on its own or by a signal."""
    if returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGSEGV:
            return ErrorKind.SEGFAULT, f"worker died with {name} (segmentation fault)"
        if sig == signal.SIGKILL:
            return ErrorKind.KILLED, f"worker was killed with {name} (likely out of memory)"
        return ErrorKind.CRASHED, f"worker died with {name}"
    return ErrorKind.CRASHED, f"worker exited with code {returncode}"


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of a run is told, once, before its first chunk (built whole: nothing adds to it later)."""

    engine: str
    model: str
    frames_dir: str
    styled_dir: str
    name_width: int
    ext: str
    max_side: int | None = None
    styled_ext: str | None = None  # stylize --format; None: the frames' own
    quality: int | None = None  # jpg/webp quality of the styled frames
    temporal: dict[str, Any] | None = None  # video mode (temporal.Temporal.from_config), None: off
    options: dict[str, Any] = field(default_factory=dict)  # the engine's parameters, batch, style_image
    threads: int = 0  # compute threads; 0: the engine's default
    max_memory: int | None = None  # the worker's memory budget in bytes; None: none
    io_threads: int = 0  # frame I/O threads (decode ahead, write behind); 0: I/O in the worker's own loop
    batch: int = 1  # frames per network call (1 in video mode and for guided engines, whatever this says)

    def planned(self, plan: Plan) -> WorkerConfig:
        """This config with the run's plan: its threads, memory budget, I/O threads and batch per worker."""
        return replace(self, threads=plan.threads, max_memory=plan.max_memory, io_threads=plan.io_threads,
                       batch=plan.batch)

    def engine_options(self) -> dict[str, Any]:
        """What `engines.load` gets: the engine's options with the threads, the budget and the batch."""
        return {**self.options, "threads": self.threads, "max_memory": self.max_memory, "batch": self.batch}


# ---------------------------------------------------------------- the codec (one JSON object per line)


def _line(message: Mapping[str, Any]) -> str:
    return json.dumps(message) + "\n"


def encode_config(config: WorkerConfig) -> str:
    return _line(asdict(config))


def decode_config(line: str) -> WorkerConfig:
    message = json.loads(line)
    known = {f.name for f in fields(WorkerConfig)}
    unknown = set(message) - known
    if unknown:
        raise ValueError(f"unknown worker config fields: {', '.join(sorted(unknown))}")
    return WorkerConfig(**message)


def encode_chunk(frames: list[int]) -> str:
    return _line({"frames": frames})


def decode_chunk(line: str) -> list[int]:
    return [int(i) for i in json.loads(line)["frames"]]


def encode_event(event: Kind, /, **data: Any) -> str:
    """One event as the worker (or the Ray node) writes it: the slot is the reader's to add.
    (Positional-only: a `failed` event has a field named `kind`, its ErrorKind.)"""
    return _line({"event": event.value, **data})


def decode_event(line: str, slot: int) -> Event | None:
    """The event on this line from the worker in `slot`; None for a line that is not one."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    try:
        kind = Kind(message.pop("event", None))
    except ValueError:
        return None
    return Event(slot, kind, message)
