"""What runs on a Ray node: the same `python -m pipeline.worker` as locally, its events relayed as protocol lines.

The relay never stylizes anything itself: a frame that segfaults kills the worker subprocess, not
the Ray actor, so its exit code reaches the coordinator exactly as it does locally. Only metadata
travels back (frame numbers, hashes, timings); pixels stay in the job folder on shared storage.
"""

from __future__ import annotations

import os
import queue
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .local import WorkerProcess, worker_pythonpath
from .protocol import CHUNK_OVER, Event, Kind, WorkerConfig, encode_event

TOKEN_FILE = ".ray-token"


@dataclass(frozen=True)
class Spec:
    """Everything a node needs to start a worker; plain data, sent once per actor or task."""

    config: WorkerConfig
    env: dict[str, str]  # set for the worker on top of the node's own environment
    log: str
    job_root: str
    token: str


def storage_refusal(job_root: str, token: str) -> str | None:
    """None when this node sees the job folder the coordinator wrote its token into, else why not."""
    try:
        seen = (Path(job_root) / TOKEN_FILE).read_text().strip()
    except OSError:
        seen = None
    if seen == token:
        return None
    return (f"the Ray worker on {socket.gethostname()} cannot see the job folder {job_root}: on a Ray cluster "
            "the jobs folder must be on shared storage mounted at the same path on every node")


def start_worker(spec: Spec, events: queue.Queue[Event]) -> WorkerProcess:
    env = {**os.environ, **spec.env, "PYTHONPATH": worker_pythonpath(os.environ.get("PYTHONPATH"))}
    return WorkerProcess(0, spec.config, env, Path(spec.log), events)


def relay(worker: WorkerProcess, events: queue.Queue[Event], frames: list[int]) -> Iterator[str]:
    """Send one chunk; yield the worker's events (protocol lines) up to the end of the chunk or its exit."""
    worker.send(frames)
    while True:
        event = events.get()
        yield encode_event(event.kind, **event.data)
        if event.kind in CHUNK_OVER:
            return


class SlotActor:
    """One per worker slot (wrapped by ray.remote in the coordinator): the engine loads once per slot."""

    def __init__(self, spec: Spec) -> None:
        self.refusal = storage_refusal(spec.job_root, spec.token)
        self.events: queue.Queue[Event] = queue.Queue()
        # Started on the actor's main thread, which lives as long as the actor: the worker's
        # PR_SET_PDEATHSIG then fires only when the actor process itself dies.
        self.worker = None if self.refusal else start_worker(spec, self.events)

    def hello(self) -> str | None:
        """Answers once the actor is placed and started; the refusal when the job folder is not shared."""
        return self.refusal

    def run(self, frames: list[int]) -> Iterator[str]:
        assert self.worker is not None
        yield from relay(self.worker, self.events, frames)


def chunk_task(spec: Spec, frames: list[int]) -> Iterator[str]:
    """The task variant (a fresh worker, so a model load, per chunk): kept to measure against the actor."""
    refusal = storage_refusal(spec.job_root, spec.token)
    if refusal:
        yield encode_event(Kind.REFUSED, message=refusal)
        return
    events: queue.Queue[Event] = queue.Queue()
    worker = start_worker(spec, events)
    try:
        yield from relay(worker, events, frames)
    finally:
        worker.kill()
        worker.proc.wait()
