"""Failures on purpose, for the test suite and `make soak` (inert unless VPIPE_FAULTS is set).

VPIPE_FAULTS is JSON: {"frames": {"7": "segfault"}, "point": "engine", "times": 1, "state": DIR}
- mode: raise | exit | segfault | sigkill | hang | slow | oom | enospc | kill_coordinator
  (kill_coordinator: a worker SIGKILLs its parent, the coordinator, then waits to die with it;
  slow: SLOW seconds' pause, e.g. a writer that falls behind the network)
- point: where in a frame's life it strikes: engine (before stylizing), written (tmp file
  written), synced (after fsync), renamed (after the rename), all in the worker; commit_before
  and commit_after (around the manifest commit of `done`), in the coordinator. A frame's mode may
  name its own point: {"frames": {"5": "slow@written", "7": "sigkill"}, "point": "engine"}
- times: strike only on the first N attempts at that frame (counted with files in `state`),
  so `retry-failed` can then succeed; omit for always.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
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
    if mode == "kill_coordinator":
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)  # PR_SET_PDEATHSIG ends this worker as its parent dies
        os._exit(1)
    if mode == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    raise ValueError(f"unknown fault mode {mode!r}")
