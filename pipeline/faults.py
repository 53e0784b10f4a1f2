"""Failures on purpose, for the test suite and `make soak` (inert unless VPIPE_FAULTS is set).

VPIPE_FAULTS is JSON: {"frames": {"7": "segfault"}, "point": "engine", "times": 1, "state": DIR}
- mode: raise | exit | segfault | sigkill | hang | slow | oom | enospc | kill_coordinator | sigstop |
  deadlock | block_pipe | fork_sigkill (fork_sigkill: the process forks a child that keeps its pipes open
  and sleeps, as a library's helper process would, then SIGKILLs itself; kill_coordinator: a worker SIGKILLs
  its parent, the coordinator, then waits to die with it; slow: SLOW seconds' pause, e.g. a writer that
  falls behind the network; sigstop: the process stops itself, as `kill -STOP` would; deadlock: two threads
  each wait for the lock the other holds, and this one waits for them; block_pipe: a write into a full pipe)
- point: where in a frame's life it strikes: engine (before stylizing), written (tmp file
  written), synced (after fsync), renamed (after the rename), after (its result reported, before
  the next frame starts), idle (its chunk's `chunk_end` sent, before the next chunk: the chunk's last
  frame), load (as the worker starts, before it reads its config and loads the engine: frame 0), all
  in the worker; commit_before and commit_after (around the manifest commit of `done`), in the
  coordinator. A frame's mode may name its own point: {"frames": {"5": "slow@written", "7": "sigkill"},
  "point": "engine"}
- times: strike only on the first N attempts at that frame (counted with files in `state`),
  so `retry-failed` can then succeed; omit for always.
- pause: a named point (split_decided: split has found no job of that name) where the process waits
  for the test (see pause()).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import threading
import time
from pathlib import Path

SLOW = 0.5  # seconds


def _config() -> dict[str, object] | None:
    raw = os.environ.get("VPIPE_FAULTS")
    return json.loads(raw) if raw else None


def strike(frame: int, point: str) -> None:
    """Misbehave here if the test asked for it."""
    config = _config()
    if not config:
        return
    mode, _, at = str(dict(config.get("frames", {})).get(str(frame), "")).partition("@")  # type: ignore[call-overload]
    if not mode or (at or config.get("point", "engine")) != point:
        return
    times = config.get("times")
    if times is not None:
        marker = Path(str(config["state"])) / f"frame-{frame}-{point}"
        struck = int(marker.read_text()) if marker.exists() else 0
        if struck >= int(str(times)):
            return
        marker.write_text(str(struck + 1))
    _misbehave(str(mode), frame)


def pause(point: str) -> None:
    """Stop here until the test lets go, if it asked to ({"pause": POINT, "state": DIR}): this process
    writes DIR/paused-POINT (its pid) and waits, at most a minute, for DIR/go-POINT. Races between two
    real processes are replayed this way, in the order the test chooses."""
    config = _config()
    if not config or config.get("pause") != point:
        return
    state = Path(str(config["state"]))
    (state / f"paused-{point}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not (state / f"go-{point}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _misbehave(mode: str, frame: int) -> None:
    if mode == "raise":
        raise RuntimeError(f"injected failure on frame {frame}")
    if mode == "exit":
        os._exit(1)
    if mode == "segfault":
        ctypes.string_at(0)  # a real invalid read: the kernel sends SIGSEGV
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "hang":
        time.sleep(3600)
    if mode == "slow":
        time.sleep(SLOW)
        return
    if mode == "oom":
        hog = []
        while True:  # under an address-space limit this ends in MemoryError (or the OOM killer)
            hog.append(bytearray(256 << 20))
    if mode == "fork_sigkill":
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "kill_coordinator":
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)  # PR_SET_PDEATHSIG ends this worker as its parent dies
        os._exit(1)
    if mode == "sigstop":
        os.kill(os.getpid(), signal.SIGSTOP)
        return
    if mode == "deadlock":
        _deadlock()
    if mode == "block_pipe":
        _, writer = os.pipe()  # nobody reads it: the write blocks once the pipe's buffer is full
        while True:
            os.write(writer, bytes(1 << 16))
    if mode == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    raise ValueError(f"unknown fault mode {mode!r}")


def _deadlock() -> None:
    first, second = threading.Lock(), threading.Lock()
    both_hold = threading.Barrier(2)

    def take(mine: threading.Lock, theirs: threading.Lock) -> None:
        with mine:
            both_hold.wait()
            with theirs:
                pass

    threads = [threading.Thread(target=take, args=pair, daemon=True) for pair in ((first, second), (second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
