"""The Ray executor: the local executor's interface, its worker slots anywhere on a Ray cluster.

Each slot is one Ray actor (max_restarts=0, max_task_retries=0: the coordinator alone decides
retries, per frame) that runs `python -m pipeline.worker` and streams its events back. An actor
that dies (its node removed, or killed on a frame timeout) ends like a killed local worker; an
actor that Ray cannot place within `placement_timeout` gives its chunk back and its slot is retired.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import secrets
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import storage
from ..errors import JobError, UsageError, VpipeError
from .local import worker_pythonpath
from .plan import Plan
from .protocol import Event, Kind, WorkerConfig, decode_event
from .ray_node import TOKEN_FILE, SlotActor, Spec, chunk_task

try:
    import ray
    from ray.exceptions import RayError
except ImportError as exc:  # the optional extra is not installed
    raise UsageError("--executor ray needs Ray: pip install 'vpipe[ray]'") from exc

FORWARDED = ("VPIPE_", "TF_")  # environment the coordinator passes on to workers on every node


@dataclass(frozen=True)
class Cluster:
    started: bool  # this process started a local Ray instance, and stops it at the end
    nodes: int
    gpus: float


def connect(address: str | None) -> Cluster:
    """Join the cluster at address ("auto", "HOST:PORT"), or start a local Ray instance."""
    started = not ray.is_initialized()
    if started and address and address != "auto":
        _check_reachable(address)  # Ray itself would retry an unreachable address for minutes
    if started:
        quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(include_dashboard=False, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise VpipeError(f"cannot connect to {where}: {str(exc).strip().splitlines()[0]}") from None
    workable = [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) >= 1]
    return Cluster(started, len(workable), float(ray.cluster_resources().get("GPU", 0)))


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address!r}: expected auto or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise VpipeError(f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}") from None


def placement(cluster: Cluster, device: str, workers: int | None, gpus_per_worker: int | None) -> tuple[int, int]:
    """(workers, GPUs per worker): by default one worker per GPU, else one per node with a CPU to give."""
    if gpus_per_worker is None:
        gpus_per_worker = 1 if device != "cpu" and cluster.gpus >= 1 else 0
    if device == "cpu" and gpus_per_worker:
        raise UsageError("--device cpu and --gpus-per-worker contradict each other")
    if device == "gpu" and not gpus_per_worker:
        raise UsageError("--device gpu: the Ray cluster has no GPU" if cluster.gpus < 1 else
                         "--device gpu needs --gpus-per-worker 1 or more")
    if gpus_per_worker > cluster.gpus:
        raise UsageError(f"--gpus-per-worker {gpus_per_worker}: the Ray cluster has {cluster.gpus:g} GPUs")
    default = int(cluster.gpus // gpus_per_worker) if gpus_per_worker else cluster.nodes
    return workers or max(1, default), gpus_per_worker


def worker_env(env: dict[str, str], gpus_per_worker: int) -> dict[str, str]:
    """What workers on other nodes get from here: vpipe's and TensorFlow's settings, nothing machine-specific."""
    picked = {k: v for k, v in env.items() if k.startswith(FORWARDED)}
    return {**picked, "CUDA_VISIBLE_DEVICES": "-1"} if not gpus_per_worker else picked


@dataclass
class Handle:
    """One actor (or, per chunk, one task) serving a slot; pid is a run-unique number, not an OS pid."""

    pid: int
    actor: Any = None
    stream: Any = None  # the task's stream (per chunk mode)
    placed: bool = False


class RayExecutor:
    placement_timeout = 120.0  # seconds an actor may wait for Ray to place and start it
    # One Ray task (a fresh worker, so a model load) per chunk instead of one actor per slot: slower
    # (bench/bench_ray.py measures it), kept so the choice stays measurable.
    per_chunk = False

    def __init__(self, config: WorkerConfig, plan: Plan, env: dict[str, str], logs: Path, job_root: Path,
                 cluster: Cluster) -> None:
        workers, gpus_per_worker = plan.workers, plan.gpus
        self.config = config
        self.plan = plan
        self.size = workers
        self.cluster = cluster
        self.gpus = gpus_per_worker
        self.events: queue.Queue[Event] = queue.Queue()
        self.handles: dict[int, Handle] = {}
        self.threads: list[threading.Thread] = []
        self._ids = itertools.count(1)
        self.token_path = job_root / TOKEN_FILE
        token = secrets.token_hex(16)
        storage.publish(self.token_path, token.encode())
        self.specs = {slot: Spec(config, worker_env(env, gpus_per_worker), str(logs / f"worker-{slot}.log"),
                                 str(job_root), token) for slot in range(workers)}
        path = worker_pythonpath(os.environ.get("PYTHONPATH"))
        # num_cpus=1 reserves a core per worker for scheduling; the engine's threads are set in the config.
        self.options: dict[str, Any] = {"num_cpus": 1, "num_gpus": gpus_per_worker, "scheduling_strategy": "SPREAD",
                                        "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
        self.actor_class = ray.remote(max_restarts=0, max_task_retries=0)(SlotActor).options(**self.options)
        self.task = ray.remote(max_retries=0, num_returns="streaming")(chunk_task).options(**self.options)

    # ------------------------------------------------------------ the interface the coordinator uses

    def start(self, slots: int) -> None:
        """Nothing to do ahead: an actor (or a per-chunk task) starts with its first chunk, where Ray places it."""

    def submit(self, slot: int, frames: list[int]) -> Handle:
        handle = self.handles.get(slot)
        if self.per_chunk:
            handle = Handle(next(self._ids), stream=self.task.remote(self.specs[slot], frames))
        elif handle is None:
            handle = Handle(next(self._ids), actor=self.actor_class.remote(self.specs[slot]))
        self.handles[slot] = handle
        thread = threading.Thread(target=self._follow, args=(slot, handle, frames), daemon=True)
        thread.start()
        self.threads.append(thread)
        return handle

    def next_event(self, timeout: float) -> Event | None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if event.kind == Kind.REFUSED:
            raise JobError(str(event.data["message"]))
        handle = self.handles.get(event.slot)
        if event.kind in (Kind.EXIT, Kind.RETIRED) and handle and handle.pid == event.data["pid"]:
            self._drop(event.slot)
        return event

    def kill(self, slot: int) -> None:
        handle = self.handles.get(slot)
        if handle:
            self._end(handle)

    def shutdown(self) -> None:
        """Kill every actor and wait until Ray says it is gone, so none writes after the coordinator stops."""
        for slot in list(self.handles):
            self._drop(slot)
        for thread in self.threads:
            thread.join(timeout=30)
        self.threads.clear()
        self.token_path.unlink(missing_ok=True)
        if self.cluster.started:
            ray.shutdown()

    # ------------------------------------------------------------ following one chunk

    def _follow(self, slot: int, handle: Handle, frames: list[int]) -> None:
        """Turn one chunk's stream into events; runs on its own thread, one per submitted chunk."""
        try:
            stream = handle.stream
            if stream is None:
                if not (handle.placed or self._placed(slot, handle)):
                    return
                stream = handle.actor.run.remote(frames)
            for ref in stream:
                event = decode_event(ray.get(ref), slot)
                if event is not None and event.kind == Kind.EXIT:  # the run-unique number, not the node's pid
                    event = Event(slot, Kind.EXIT, {**event.data, "pid": handle.pid})
                if event is not None:
                    self.events.put(event)
        except RayError as exc:
            self.events.put(Event(slot, Kind.EXIT, {"returncode": -9, "pid": handle.pid, "lost": True,
                                                 "reason": f"Ray worker lost ({lost_reason(exc)})"}))

    def _placed(self, slot: int, handle: Handle) -> bool:
        hello = handle.actor.hello.remote()
        ready, _ = ray.wait([hello], timeout=self.placement_timeout)
        if not ready:
            self.events.put(Event(slot, Kind.RETIRED, {"pid": handle.pid, "reason": (
                f"Ray could not place a worker within {self.placement_timeout:g} s "
                f"(needs 1 CPU{f' and {self.gpus} GPUs' if self.gpus else ''} on a node)")}))
            return False
        refusal = ray.get(hello)
        if refusal:
            self.events.put(Event(slot, Kind.REFUSED, {"message": refusal}))
            return False
        handle.placed = True
        return True

    def _drop(self, slot: int) -> None:
        handle = self.handles.pop(slot, None)
        if handle:
            self._end(handle)

    @staticmethod
    def _end(handle: Handle) -> None:
        try:
            if handle.actor is not None:
                ray.kill(handle.actor, no_restart=True)
            elif handle.stream is not None:
                ray.cancel(handle.stream, force=True)
        except (RayError, ValueError, TypeError):
            pass  # already gone


def lost_reason(exc: BaseException) -> str:
    """The first telling line of a Ray error: the node died, the actor was killed, ..."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith("The actor is dead") or "node" in line.lower()]
    return (telling or lines or [type(exc).__name__])[0][:200]
