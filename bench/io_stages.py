"""Where one worker's time goes (bench/bench_io.py runs this in a process of its own, like a worker).

`python bench/io_stages.py FRAMES_DIR STYLED_DIR IO_THREADS BATCH FRAMES [ENGINE]`: one pipeline.worker.Worker
in this process, its protocol lines to /dev/null, with timers around each stage (decode, network,
encode, hash, publish and its fsyncs, protocol lines, the network thread's waits); prints per frame the
wall time and the CPU time of the thread that ran each stage. On a shared machine wall time includes
waiting for a core (and for the GIL); CPU time is what the stage costs.
"""

from __future__ import annotations

import collections
import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import storage, worker  # noqa: E402
from pipeline.executors.protocol import WorkerConfig  # noqa: E402

WALL: collections.Counter[str] = collections.Counter()
CPU: collections.Counter[str] = collections.Counter()
CALLS: collections.Counter[str] = collections.Counter()
LOCK = threading.Lock()


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            with LOCK:
                WALL[name] += wall
                CPU[name] += cpu
                CALLS[name] += 1
    return inner


STAGES = [  # (label, owner, attribute): the stages in the order a frame meets them
    ("network thread waits for its frame", worker.Prefetch, "get"),
    ("  decode (file read, PNG decode, RGB)", storage, "read_rgb"),
    ("network (engine call)", worker.Worker, "_network"),
    ("network thread waits for room to write", worker.Behind, "wait_room"),
    ("write (encode + publish + hash + events)", worker.Worker, "_write"),
    ("  encode (RGB->BGR, PNG encode)", storage, "encode"),
    ("  publish (write, fsync, rename, fsync dir)", storage, "publish"),
    ("    of which fsync (file and folder)", storage.os, "fsync"),
    ("  hash (sha256)", storage, "digest"),
    ("protocol lines (all threads)", worker.Worker, "emit"),
]


def main() -> int:
    frames_dir, styled_dir = Path(sys.argv[1]), Path(sys.argv[2])
    io_threads, batch, count = (int(a) for a in sys.argv[3:6])
    engine = sys.argv[6] if len(sys.argv) > 6 else "accelerator"
    for label, owner, attribute in STAGES:
        setattr(owner, attribute, timed(label, getattr(owner, attribute)))
    config = WorkerConfig(engine=engine, model=os.devnull, frames_dir=str(frames_dir), styled_dir=str(styled_dir),
                          name_width=6, ext="png", io_threads=io_threads, batch=batch)
    with open(os.devnull, "w") as out:
        one = worker.Worker(config, out)
        wall, cpu = time.perf_counter(), time.process_time()
        one.run_chunk(list(range(1, count + 1)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    pool = (f"pool {io_threads}" if io_threads else "pool off") + f", batch {batch}"
    print(f"  {engine}, 1 worker, {pool}: {count / wall:.1f} frames/s; per frame {1000 * wall / count:.1f} ms wall, "
          f"{1000 * cpu / count:.1f} ms CPU (all threads)")
    for label, _, _ in STAGES:
        print(f"    {label:<44} {1000 * WALL[label] / count:6.1f} ms wall {1000 * CPU[label] / count:6.1f} ms CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
