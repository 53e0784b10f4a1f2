"""Executors run worker processes and turn what they say (or how they die) into events.

`local` (the default) runs them on this machine; `ray` (the optional extra) anywhere on a Ray cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import resources
from ..errors import UsageError
from .local import LocalExecutor
from .plan import Plan, plan
from .protocol import WorkerConfig

if TYPE_CHECKING:
    from .ray import RayExecutor

__all__ = ["Placement", "Plan", "WorkerConfig", "create", "plan"]


@dataclass(frozen=True)
class Placement:
    """Where the workers of a run go: the command line's --executor, --device, --workers and friends."""

    executor: str = "local"  # local | ray
    device: str = "auto"  # auto | cpu | gpu
    workers: int | None = None
    threads: int | None = None  # compute threads per worker
    max_memory: int | None = None  # memory budget per worker (None: from this machine's available memory)
    gpus_per_worker: int | None = None  # ray only
    ray_address: str | None = None  # ray only: auto, HOST:PORT, or None to start a local Ray instance


def create(where: Placement, config: WorkerConfig, env: dict[str, str], logs: Path,
           job_root: Path) -> LocalExecutor | RayExecutor:
    """The executor for a run: its plan first (executor.plan), then its workers' config with that plan."""
    if where.executor == "ray":
        return _ray(where, config, env, logs, job_root)
    if where.gpus_per_worker is not None:
        raise UsageError("--gpus-per-worker is for --executor ray (locally each worker gets one GPU)")
    if where.ray_address is not None:
        raise UsageError("--ray-address is for --executor ray")
    gpus = 0 if where.device == "cpu" else resources.gpu_count()
    if where.device == "gpu" and not gpus:
        raise UsageError("--device gpu: no GPU is visible (nvidia-smi finds none)")
    run_plan = plan(len(os.sched_getaffinity(0)), gpus, resources.available_memory(), where.workers, where.threads,
                    where.max_memory, *io_tuning())
    env = {**env, "CUDA_VISIBLE_DEVICES": "-1"} if not gpus else env
    return LocalExecutor(config.planned(run_plan), run_plan, env, logs)


IO_THREADS_ENV = "VPIPE_IO_THREADS"  # frame I/O threads per worker (0: off); default resources.plan_io
BATCH_ENV = "VPIPE_BATCH"  # frames per network call; default resources.GPU_BATCH on GPUs, else 1


def io_tuning() -> tuple[int | None, int | None]:
    """(I/O threads, batch) as VPIPE_IO_THREADS and VPIPE_BATCH set them (None: the plan decides)."""
    found: list[int | None] = []
    for name, least in ((IO_THREADS_ENV, 0), (BATCH_ENV, 1)):
        text = os.environ.get(name, "").strip()
        if text and (not text.isdigit() or int(text) < least):
            raise UsageError(f"{name}={text!r} is not a whole number >= {least}")
        found.append(int(text) if text else None)
    return found[0], found[1]


def _ray(where: Placement, config: WorkerConfig, env: dict[str, str], logs: Path, job_root: Path) -> RayExecutor:
    from . import ray as ray_executor  # a one-line UsageError when the extra is not installed

    cluster = ray_executor.connect(where.ray_address)
    try:
        workers, gpus = ray_executor.placement(cluster, where.device, where.workers, where.gpus_per_worker)
        # the coordinator cannot see the nodes' cores or memory: planned with this machine's
        run_plan = plan(len(os.sched_getaffinity(0)), gpus, resources.available_memory(), workers, where.threads,
                        where.max_memory, *io_tuning())
        return ray_executor.RayExecutor(config.planned(run_plan), run_plan, env, logs, job_root, cluster)
    except BaseException:
        if cluster.started:
            ray_executor.ray.shutdown()
        raise
