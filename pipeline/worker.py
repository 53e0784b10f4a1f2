"""`python -m pipeline.worker`: a crash-isolated process that stylizes the frames it is sent.

Protocol (JSON lines, executors/protocol.py). stdin: one WorkerConfig line, then one line per chunk.
stdout: `ready` once the engine is loaded; per frame `start`, then `done` or `failed`; `chunk_end`
after a chunk; `fatal` instead of `ready` when the engine cannot be loaded.
The worker never touches the manifest. It exits as soon as stdin closes, and the kernel kills it
if its parent dies, so no worker outlives its coordinator.
"""

from __future__ import annotations

import errno
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from . import children, engines, faults, resources, storage
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


AHEAD = 2  # frames decoded ahead of the network


class Prefetch:
    """Decodes a chunk's frames ahead of the network in a thread (cv2 releases the GIL while it decodes).

    `get(i)` returns frame i or raises what reading it raised, in the caller's thread, so a bad file
    still fails only its own frame, at the same point of the protocol as without prefetching.
    """

    def __init__(self, read: Callable[[int], np.ndarray], frames: list[int], ahead: int = AHEAD) -> None:
        self._read, self._frames, self._ahead = read, frames, ahead
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._pending: dict[int, Future[np.ndarray]] = {}
        self._next = 0

    def get(self, index: int) -> np.ndarray:
        while self._next < len(self._frames) and (len(self._pending) <= self._ahead or index not in self._pending):
            frame = self._frames[self._next]
            self._pending[frame] = self._pool.submit(self._read, frame)
            self._next += 1
        future = self._pending.pop(index, None)
        return future.result() if future is not None else self._read(index)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pending.clear()


class Worker:
    def __init__(self, config: WorkerConfig, out: IO[str]) -> None:
        self.config = config
        self.out = out
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

    def emit(self, event: Kind, /, **fields: Any) -> None:
        self.out.write(encode_event(event, **fields))

    def run_chunk(self, frames: list[int]) -> None:
        source = Prefetch(self.source_frame, frames)
        try:
            self._run_frames(frames, source)
        finally:
            source.close()
        self.emit(Kind.CHUNK_END)
        faults.strike(frames[-1], "idle")

    def _run_frames(self, frames: list[int], source: Prefetch) -> None:
        for index in frames:
            self.emit(Kind.START, frame=index)
            started = time.monotonic()
            out_of_memory = False
            try:
                digest, stats = self.stylize_one(index, source.get(index))
            except MemoryError:  # reported below, once leaving here freed what its traceback holds
                out_of_memory = True
            except OSError as exc:
                kind = ErrorKind.DISK_FULL if exc.errno == errno.ENOSPC else ErrorKind.EXCEPTION
                self.emit(Kind.FAILED, frame=index, kind=kind, message=f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # any engine error fails this frame only
                traceback.print_exc(file=sys.stderr)
                kind = ErrorKind.OUT_OF_MEMORY if resources.is_out_of_memory(exc) else ErrorKind.EXCEPTION
                self.emit(Kind.FAILED, frame=index, kind=kind, message=f"{type(exc).__name__}: {exc}")
            else:
                self.emit(Kind.DONE, frame=index, seconds=round(time.monotonic() - started, 4), hash=digest, stats=stats)
            if out_of_memory:
                self.emit(Kind.FAILED, frame=index, kind=ErrorKind.OUT_OF_MEMORY,
                          message=resources.out_of_memory_message())
            faults.strike(index, "after")

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

    def stylize_one(self, index: int, frame: np.ndarray) -> tuple[str, dict[str, Any]]:
        name = frame_name(index, self.width, self.styled_ext)
        faults.strike(index, "engine")
        styled, stats = self.sequence.stylize(index, fit(frame, self.max_side))
        data = storage.encode(restore(styled, frame.shape), self.styled_ext, self.quality)
        storage.publish(self.styled_dir / name, data, lambda point: faults.strike(index, point))
        return storage.digest(data), stats


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
