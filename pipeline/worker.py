"""`python -m pipeline.worker`: a crash-isolated process that stylizes the frames it is sent.

Protocol (JSON lines, executors/protocol.py). stdin: one WorkerConfig line, then one line per chunk.
stdout: `ready` once the engine is loaded; per frame `start` (into the network), `styled` (out of it,
queued for writing), `writing`, then `done` once its file is durable, or `failed` at any step;
`chunk_end` after a chunk, once all its frames are written; `fatal` instead of `ready` when the engine
cannot be loaded. With I/O threads (WorkerConfig.io_threads, from the plan) frames are decoded ahead
and written behind the network in a pool; without, each is written before the next goes in.
The worker never touches the manifest. It exits as soon as stdin closes, and the kernel kills it
if its parent dies, so no worker outlives its coordinator.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar

import cv2
import numpy as np

from . import children, engines, faults, resources, storage
from .engines.base import GuidedEngine
from .executors.protocol import Kind, WorkerConfig, decode_chunk, decode_config, encode_event
from .frames import frame_name
from .manifest import ErrorKind
from .temporal import Sequence, Temporal


def _protocol_channel() -> IO[str]:
    """Keep fd 1 for protocol lines only; route anything libraries print there to stderr."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return channel


def _stdin_lines() -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in sys.stdin:
            lines.put(line)
        os._exit(0)  # the coordinator closed the pipe or died: stop at once

    threading.Thread(target=pump, daemon=True).start()
    return lines


def fit(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink so the longer side is at most max_side (the engine's working size)."""
    h, w = frame.shape[:2]
    size = resources.working_size(w, h, max_side)
    return frame if size == (w, h) else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def restore(styled: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if styled.shape == shape:
        return styled
    return cv2.resize(styled, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


AHEAD = 2  # frames decoded ahead of the network (at least)
T = TypeVar("T")


class Failure(NamedTuple):
    """Why a frame failed (its `failed` event), kept without the exception and what its traceback holds."""

    kind: ErrorKind
    message: str


def failure(exc: Exception) -> Failure:
    """The failure an exception makes; called in its `except` block (the traceback goes to stderr)."""
    if isinstance(exc, MemoryError):
        return Failure(ErrorKind.OUT_OF_MEMORY, resources.out_of_memory_message())
    if isinstance(exc, OSError):
        kind = ErrorKind.DISK_FULL if exc.errno == errno.ENOSPC else ErrorKind.EXCEPTION
        return Failure(kind, f"{type(exc).__name__}: {exc}")
    traceback.print_exc(file=sys.stderr)  # any engine error fails this frame only
    kind = ErrorKind.OUT_OF_MEMORY if resources.is_out_of_memory(exc) else ErrorKind.EXCEPTION
    return Failure(kind, f"{type(exc).__name__}: {exc}")


READ, WRITE = 0, 1  # I/O pool priorities: the network waits on reads, writes can lag


class IOPool:
    """The worker's frame I/O threads (cv2 and hashlib release the GIL): reads go before writes."""

    def __init__(self, threads: int) -> None:
        self._jobs: queue.PriorityQueue[tuple[int, int, Future[Any], Callable[[], Any]]] = queue.PriorityQueue()
        self._order = itertools.count()
        for number in range(threads):
            threading.Thread(target=self._serve, name=f"io-{number}", daemon=True).start()

    def submit(self, job: Callable[[], T], priority: int) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((priority, next(self._order), future, job))
        return future

    def _serve(self) -> None:
        while True:
            _, _, future, job = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:
                    future.set_exception(exc)


class Prefetch:
    """Decodes a chunk's frames ahead of the network in the worker's I/O pool.

    `get(i)` returns frame i or raises what reading it raised, in the caller's thread, so a bad file
    still fails only its own frame, at the same point of the protocol as without prefetching.
    """

    def __init__(self, read: Callable[[int], np.ndarray], frames: list[int], pool: IOPool, ahead: int = AHEAD) -> None:
        self._read, self._frames, self._pool, self._ahead = read, frames, pool, ahead
        self._pending: dict[int, Future[np.ndarray]] = {}
        self._next = 0

    def get(self, index: int) -> np.ndarray:
        while self._next < len(self._frames) and (len(self._pending) <= self._ahead or index not in self._pending):
            frame = self._frames[self._next]
            self._pending[frame] = self._pool.submit(functools.partial(self._read, frame), READ)
            self._next += 1
        future = self._pending.pop(index, None)
        return future.result() if future is not None else self._read(index)

    def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()


class Behind:
    """Frames written behind the network, in the I/O pool's threads, at most `limit` at a time (the
    network waits for room); without a pool each is written at once, in the caller's thread."""

    def __init__(self, pool: IOPool | None, limit: int) -> None:
        self._pool, self._limit = pool, limit
        self._pending: set[Future[None]] = set()

    def submit(self, write: Callable[[], None]) -> None:
        if self._pool is None:
            write()
        else:
            self._pending.add(self._pool.submit(write, WRITE))

    def wait_room(self) -> None:
        self._pending = {f for f in self._pending if not f.done()}
        while len(self._pending) >= self._limit:
            _, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)

    def drain(self) -> None:
        for future in self._pending:
            future.result()  # a write reports its own failure; this raises only on a bug
        self._pending.clear()


class Worker:
    """Per chunk: frames decoded ahead, through the network (in batches where the plan says so), and
    written behind (encode, hash, publish), each step announced (start, styled, writing, done)."""

    def __init__(self, config: WorkerConfig, out: IO[str]) -> None:
        self.config = config
        self.out = out
        self._emitting = threading.Lock()  # the network and the writers share the channel
        self.frames_dir = Path(config.frames_dir)
        self.styled_dir = Path(config.styled_dir)
        self.width = int(config.name_width)
        self.ext = str(config.ext)
        self.styled_ext = config.styled_ext or self.ext  # stylize --format
        self.quality = config.quality
        self.max_side = config.max_side
        self.engine = engines.load(config.engine, Path(config.model), config.engine_options())
        self.sequence = Sequence(self.engine, Temporal.from_config(config.temporal),
                                 self.working_frame, self.done_frame)
        # a frame waits on the one before it in video mode, and a guided engine optimizes one frame
        together = config.temporal is None and not isinstance(self.engine, GuidedEngine)
        self.batch = max(1, config.batch) if together else 1
        self.pool = IOPool(max(1, config.io_threads))  # without I/O threads: one, for reads only
        self.writers = self.pool if config.io_threads else None
        self.ahead = max(AHEAD, config.io_threads + self.batch)
        self.behind = 2 * config.io_threads + self.batch  # writes pending before the network waits

    def emit(self, event: Kind, /, **fields: Any) -> None:
        line = encode_event(event, **fields)
        with self._emitting:
            self.out.write(line)

    def run_chunk(self, frames: list[int]) -> None:
        source = Prefetch(self.source_frame, frames, self.pool, self.ahead)
        behind = Behind(self.writers, self.behind)
        try:
            for first in range(0, len(frames), self.batch):
                behind.wait_room()
                self._run_batch(frames[first:first + self.batch], source, behind)
        finally:
            source.close()
            behind.drain()  # every frame durable (or failed) before the chunk ends
        self.emit(Kind.CHUNK_END)
        faults.strike(frames[-1], "idle")

    def _run_batch(self, batch: list[int], source: Prefetch, behind: Behind) -> None:
        for index in batch:
            self.emit(Kind.START, frame=index)
        started = time.monotonic()
        loaded: list[tuple[int, np.ndarray]] = []
        for index in batch:
            try:
                loaded.append((index, source.get(index)))
            except Exception as exc:
                self._fail(index, failure(exc))
        for (index, frame), result in zip(loaded, self._network(loaded), strict=True):
            if isinstance(result, Failure):
                self._fail(index, result)
                continue
            self.emit(Kind.STYLED, frame=index)
            styled, stats = result
            behind.submit(functools.partial(self._write, index, frame.shape, styled, stats, started))

    def _network(self, loaded: list[tuple[int, np.ndarray]]) -> list[tuple[np.ndarray, dict[str, Any]] | Failure]:
        """Each frame styled (at its working size), or why not: a batch in one call, and where that
        raises, each frame alone, so only the frame at fault fails."""
        results: list[tuple[np.ndarray, dict[str, Any]] | Failure | None] = [None] * len(loaded)
        ready = []
        for i, (index, _) in enumerate(loaded):
            try:
                faults.strike(index, "engine")
                ready.append(i)
            except Exception as exc:
                results[i] = failure(exc)
        if len(ready) > 1:
            try:
                styled = self.engine.stylize([fit(loaded[i][1], self.max_side) for i in ready])
                for i, image in zip(ready, styled, strict=True):
                    results[i] = (image, {})
                ready = []
            except Exception:
                traceback.print_exc(file=sys.stderr)
        for i in ready:
            index, frame = loaded[i]
            try:
                results[i] = self.sequence.stylize(index, fit(frame, self.max_side))
            except Exception as exc:
                results[i] = failure(exc)
        return [r for r in results if r is not None]

    def _write(self, index: int, shape: tuple[int, ...], styled: np.ndarray, stats: dict[str, Any],
               started: float) -> None:
        """Encode, hash and publish one styled frame; `done` once its file is durable."""
        self.emit(Kind.WRITING, frame=index)
        try:
            data = storage.encode(restore(styled, shape), self.styled_ext, self.quality)
            storage.publish(self.styled_dir / frame_name(index, self.width, self.styled_ext), data,
                            lambda point: faults.strike(index, point))
            digest = storage.digest(data)
        except Exception as exc:
            why = failure(exc)
        else:
            self.emit(Kind.DONE, frame=index, seconds=round(time.monotonic() - started, 4), hash=digest, stats=stats)
            faults.strike(index, "after")
            return
        self._fail(index, why)

    def _fail(self, index: int, why: Failure) -> None:
        self.emit(Kind.FAILED, frame=index, kind=why.kind, message=why.message)

    def source_frame(self, index: int) -> np.ndarray:
        return storage.read_rgb(self.frames_dir / frame_name(index, self.width, self.ext))

    def working_frame(self, index: int) -> np.ndarray:
        return fit(self.source_frame(index), self.max_side)

    def done_frame(self, index: int) -> np.ndarray | None:
        """A styled frame already in the job (published files are complete), at the working size."""
        path = self.styled_dir / frame_name(index, self.width, self.styled_ext)
        try:
            return fit(storage.read_rgb(path), self.max_side) if path.is_file() else None
        except (OSError, ValueError):
            return None


def main() -> int:
    out = _protocol_channel()
    children.die_with_parent()
    faults.strike(0, "load")
    lines = _stdin_lines()
    config = decode_config(lines.get())
    try:
        resources.apply_memory_limit()
        worker = Worker(config, out)
    except Exception as exc:  # reported as one line, the coordinator stops the run
        traceback.print_exc(file=sys.stderr)
        message = resources.out_of_memory_message() if resources.is_out_of_memory(exc) else str(exc)
        out.write(encode_event(Kind.FATAL, message=message or type(exc).__name__))
        return 1
    worker.emit(Kind.READY, pid=os.getpid())
    while True:
        worker.run_chunk(decode_chunk(lines.get()))


if __name__ == "__main__":
    sys.exit(main())
