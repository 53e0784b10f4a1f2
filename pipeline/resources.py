"""A memory ceiling for worker processes.

VPIPE_WORKER_MEMORY=6G caps each worker's address space (RLIMIT_AS, set by the worker itself before
it loads the engine). A frame that needs more then fails with MemoryError, reported as the error
kind `out_of_memory`, instead of the kernel's OOM killer picking a process (maybe the coordinator,
maybe another program). TensorFlow reserves a lot of address space up front: give it several GB.
"""

from __future__ import annotations

import os
import re
import resource

from .errors import UsageError

MEMORY_ENV = "VPIPE_WORKER_MEMORY"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """"6G", "512M", "1.5GiB", "1048576" as bytes (binary units)."""
    match = _SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{MEMORY_ENV}={text!r} is not a size such as 6G or 512M")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def memory_limit() -> int | None:
    text = os.environ.get(MEMORY_ENV)
    return parse_size(text) if text else None


def apply_memory_limit() -> int | None:
    """Lower this process's address-space limit to VPIPE_WORKER_MEMORY, when set; returns it."""
    limit = memory_limit()
    if limit is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    return limit


def is_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, or TensorFlow's (GPU) ResourceExhaustedError, known by name."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError"


def out_of_memory_message() -> str:
    limit = os.environ.get(MEMORY_ENV)
    return f"out of memory (worker limit {MEMORY_ENV}={limit})" if limit else "out of memory"


def plan_workers(cores: int, gpus: int, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(worker processes, compute threads per worker; 0 = the engine's default).

    With GPUs: one worker per GPU. On CPUs: one single-threaded worker per core (measured on 2 cores
    with the fast engine: 2 x 1 gave more frames/s than 1 x 2, since one worker's PNG I/O and Python
    work then overlap the other's network; README "Speed"), up to 4 workers, the cores shared out
    beyond that. --workers alone shares the cores among that many; --threads alone sets the threads
    and fits the workers to the cores.
    """
    cores = max(1, cores)
    if gpus:
        return workers or gpus, threads or 0
    if workers is None:
        workers = max(1, cores // threads) if threads else min(cores, MAX_CPU_WORKERS)
    return workers, threads or max(1, cores // workers)


MAX_CPU_WORKERS = 4  # each worker holds its own model and TF runtime in memory
