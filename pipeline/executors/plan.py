"""A run's plan: how many workers, how many compute threads each, how much memory each may use.

Pure: the machine's facts (cores, GPUs, available memory) come in as arguments, so the same rules
size a local run and a Ray run, and a test states the machine it assumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import resources


@dataclass(frozen=True)
class Plan:
    workers: int
    threads: int  # compute threads per worker; 0: the engine's default (GPU workers)
    max_memory: int  # the memory budget of one worker, in bytes
    gpus: int = 0  # local: the GPUs the workers share out (one each); Ray: the GPUs of each worker
    io_threads: int = 0  # frame I/O threads per worker (resources.plan_io); 0: I/O in the worker's loop
    batch: int = 1  # frames per network call (resources.GPU_BATCH on GPUs, else 1)


def plan(cores: int, gpus: int, available: int | None, workers: int | None = None, threads: int | None = None,
         max_memory: int | None = None, io_threads: int | None = None, batch: int | None = None) -> Plan:
    """The plan for `workers`/`threads`/`max_memory`/`io_threads`/`batch` as asked (None: decide) on a
    machine with `cores` cores, `gpus` GPUs and `available` bytes of memory available (None: unknown).

    The rules are resources.plan_workers (workers and threads), resources.default_budget (memory) and
    resources.plan_io (I/O threads).
    """
    workers, threads = resources.plan_workers(cores, gpus, workers, threads)
    budget = max_memory if max_memory is not None else resources.default_budget(workers, available)
    io = io_threads if io_threads is not None else resources.plan_io(cores, workers, threads)
    batch = batch if batch is not None else (resources.GPU_BATCH if gpus else 1)
    return Plan(workers, threads, budget, gpus, io, batch)
