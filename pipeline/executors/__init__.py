"""Executors run worker processes and turn what they say (or how they die) into events.

`local` (the default) runs them on this machine; `ray` (the optional extra) anywhere on a Ray cluster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import resources
from ..errors import UsageError
from .local import LocalExecutor

if TYPE_CHECKING:
    from .ray import RayExecutor


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


def create(where: Placement, config: dict[str, Any], env: dict[str, str], logs: Path,
           job_root: Path) -> LocalExecutor | RayExecutor:
    """The executor for a run; config["options"] gets "threads" and "max_memory" once the worker count is known."""
    if where.executor == "ray":
        return _ray(where, config, env, logs, job_root)
    if where.gpus_per_worker is not None:
        raise UsageError("--gpus-per-worker is for --executor ray (locally each worker gets one GPU)")
    if where.ray_address is not None:
        raise UsageError("--ray-address is for --executor ray")
    gpus = 0 if where.device == "cpu" else resources.gpu_count()
    if where.device == "gpu" and not gpus:
        raise UsageError("--device gpu: no GPU is visible (nvidia-smi finds none)")
    workers, config["options"]["threads"] = resources.plan_workers(len(os.sched_getaffinity(0)), gpus, where.workers,
                                                                   where.threads)
    config["options"]["max_memory"] = resources.run_budget(where.max_memory, workers)
    env = {**env, "CUDA_VISIBLE_DEVICES": "-1"} if not gpus else env
    return LocalExecutor(config, workers, env, logs, gpus=gpus)


def _ray(where: Placement, config: dict[str, Any], env: dict[str, str], logs: Path, job_root: Path) -> RayExecutor:
    from . import ray as ray_executor  # a one-line UsageError when the extra is not installed

    cluster = ray_executor.connect(where.ray_address)
    try:
        workers, gpus = ray_executor.placement(cluster, where.device, where.workers, where.gpus_per_worker)
        # the coordinator cannot see the nodes' cores: the local rule on this machine's cores
        config["options"]["threads"] = resources.plan_workers(len(os.sched_getaffinity(0)), gpus, workers,
                                                              where.threads)[1]
        config["options"]["max_memory"] = resources.run_budget(where.max_memory, workers)
        return ray_executor.RayExecutor(config, workers, env, logs, job_root, cluster, gpus)
    except BaseException:
        if cluster.started:
            ray_executor.ray.shutdown()
        raise
