"""Local worker processes: spawned fresh interpreters, each in its own process group."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import IO

from .. import storage
from .plan import Plan
from .protocol import Event, Kind, WorkerConfig, decode_event, describe_exit, encode_chunk, encode_config

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def worker_pythonpath(existing: str | None) -> str:
    """PYTHONPATH for a worker process: this package's root first, so `-m pipeline.worker` finds it."""
    return os.pathsep.join(filter(None, [PACKAGE_ROOT, existing]))


class WorkerProcess:
    """One `python -m pipeline.worker`; a reader thread turns its stdout lines into events, and a writer
    thread feeds its stdin, so a worker that stops reading (stopped, wedged) never blocks the coordinator.
    Its exit kills its process group: nothing it started outlives it holding its stdout open, which would
    keep the reader (and the run) waiting for the pipe to close."""

    def __init__(self, slot: int, config: WorkerConfig, env: dict[str, str], log: Path,
                 events: queue.Queue[Event]) -> None:
        self.slot = slot
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        stderr = storage.append_fd(log)  # never through a symlink planted in the job folder
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-X", "faulthandler", "-m", "pipeline.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1,
                start_new_session=True, env=env)
        finally:
            os.close(stderr)
        self.started = time.monotonic()
        self._events = events
        self._stdin: IO[str] = self.proc.stdin  # type: ignore[assignment]
        self._outbox: queue.Queue[str | None] = queue.Queue()
        self._outbox.put(encode_config(config))
        threading.Thread(target=self._write, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._reap, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _write(self) -> None:
        while (line := self._outbox.get()) is not None:
            try:
                self._stdin.write(line)
                self._stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return  # it died; the reader thread reports the exit

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = decode_event(line, self.slot)
            if event is not None:
                self._events.put(event)
        self._outbox.put(None)  # the writer thread ends too
        returncode = self.proc.wait()
        self._events.put(Event(self.slot, Kind.EXIT, {"returncode": returncode, "pid": self.pid,
                                                      "stderr_tail": self.stderr_tail()}))

    def _reap(self) -> None:
        self.proc.wait()
        self.kill()

    def send(self, frames: list[int]) -> None:
        self._outbox.put(encode_chunk(frames))

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stderr_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])


def preflight(config: WorkerConfig, env: dict[str, str], timeout: float) -> str | None:
    """Load the engine once in a throwaway worker: None when it loads, else its one-line reason.

    Used before an action that cannot be undone (--restart discarding styled frames), so that a
    broken model or style image stops the command while the old frames are still there.
    """
    env = {**env, "CUDA_VISIBLE_DEVICES": "-1",
           "PYTHONPATH": worker_pythonpath(env.get("PYTHONPATH"))}
    config = replace(config, threads=1)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        proc.stdin.write(encode_config(config))
        proc.stdin.flush()
        for line in proc.stdout:
            event = decode_event(line, 0)
            if event is not None and event.kind == Kind.READY:
                return None
            if event is not None and event.kind == Kind.FATAL:
                return str(event.data.get("message"))
        returncode = proc.wait()
        return f"the engine did not load within {timeout:g} s (--load-timeout)" if expired.is_set() \
            else describe_exit(returncode)[1]
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()


class LocalExecutor:
    """N worker slots on this machine. A slot gets a fresh process whenever its last one died."""

    def __init__(self, config: WorkerConfig, plan: Plan, env: dict[str, str], logs: Path) -> None:
        self.config = config
        self.plan = plan
        self.size = plan.workers
        self.env = {**env, "PYTHONPATH": worker_pythonpath(env.get("PYTHONPATH"))}
        self.logs = logs
        self.gpus = plan.gpus
        self.events: queue.Queue[Event] = queue.Queue()
        self.procs: dict[int, WorkerProcess] = {}

    def _spawn(self, slot: int) -> WorkerProcess:
        env = dict(self.env)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % self.gpus)
        proc = WorkerProcess(slot, self.config, env, self.logs / f"worker-{slot}.log", self.events)
        self.procs[slot] = proc
        return proc

    def start(self, slots: int) -> None:
        """Start the workers of slots 0 .. slots - 1 now, so they load their engine before their first chunk."""
        for slot in range(min(slots, self.size)):
            if slot not in self.procs:
                self._spawn(slot)

    def submit(self, slot: int, frames: list[int]) -> WorkerProcess:
        proc = self.procs.get(slot) or self._spawn(slot)
        proc.send(frames)
        return proc

    def next_event(self, timeout: float) -> Event | None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if event.kind == Kind.EXIT and self.procs.get(event.slot) and self.procs[event.slot].pid == event.data["pid"]:
            del self.procs[event.slot]
        return event

    def kill(self, slot: int) -> None:
        proc = self.procs.get(slot)
        if proc:
            proc.kill()

    def shutdown(self) -> None:
        """Kill every worker and wait for it, so none writes after the coordinator stops."""
        for proc in list(self.procs.values()):
            proc.kill()
        for proc in list(self.procs.values()):
            try:
                proc.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()
