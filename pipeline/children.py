"""Child processes (ffmpeg, ffprobe; workers ask it themselves) die with the vpipe process that started them.

Linux's PR_SET_PDEATHSIG asks the kernel to SIGKILL a process when its parent dies, even by kill -9,
so a killed `vpipe split` or `assemble` leaves no ffmpeg writing behind it and can be rerun at once.
The signal follows the *thread* that started the child: start children from a thread that outlives
them (subprocess.run waits in the starting thread, so it does). Elsewhere it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()  # resolved here, so the child between fork and exec only makes the call


def die_with_parent(parent: int | None = None) -> None:
    """In the child: be SIGKILLed when the parent dies; exit at once if it died already
    (`parent`: its pid, when known; else being adopted by init says so)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    orphaned = os.getppid() != parent if parent is not None else os.getppid() == 1
    if orphaned:
        os._exit(1)


def tied() -> Callable[[], None] | None:
    """Popen's preexec_fn for a child that must die with this process (None where prctl is missing)."""
    if _prctl is None:
        return None
    parent = os.getpid()
    return lambda: die_with_parent(parent)
