"""Local worker processes: spawned fresh interpreters, each in its own process group."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def worker_pythonpath(existing: str | None) -> str:
    """PYTHONPATH for a worker process: this package's root first, so `-m pipeline.worker` finds it."""
    return os.pathsep.join(filter(None, [PACKAGE_ROOT, existing]))


@dataclass(frozen=True)
class Event:
    slot: int
    kind: str  # ready | start | done | failed | chunk_end | fatal | exit
    data: dict[str, Any] = field(default_factory=dict)


def describe_exit(returncode: int) -> tuple[str, str]:
    """(error kind, readable reason) for a worker that exited on its own or by a signal."""
    if returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGSEGV:
            return "segfault", f"worker died with {name} (segmentation fault)"
        if sig == signal.SIGKILL:
            return "killed", f"worker was killed with {name} (likely out of memory)"
        return "crashed", f"worker died with {name}"
    return "crashed", f"worker exited with code {returncode}"


class WorkerProcess:
    """One `python -m pipeline.worker`; a reader thread turns its stdout lines into events."""

    def __init__(self, slot: int, config: dict[str, Any], env: dict[str, str], log: Path,
                 events: queue.Queue[Event]) -> None:
        self.slot = slot
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-X", "faulthandler", "-m", "pipeline.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1,
                start_new_session=True, env=env)
        self.started = time.monotonic()
        self._events = events
        self._stdin: IO[str] = self.proc.stdin  # type: ignore[assignment]
        self._write(config)
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _write(self, message: dict[str, Any]) -> None:
        try:
            self._stdin.write(json.dumps(message) + "\n")
            self._stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it died; the reader thread reports the exit

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._events.put(Event(self.slot, str(message.pop("event")), message))
        returncode = self.proc.wait()
        self._events.put(Event(self.slot, "exit", {"returncode": returncode, "pid": self.pid,
                                                   "stderr_tail": self.stderr_tail()}))

    def send(self, frames: list[int]) -> None:
        self._write({"frames": frames})

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


def preflight(config: dict[str, Any], env: dict[str, str], timeout: float = 300.0) -> str | None:
    """Load the engine once in a throwaway worker: None when it loads, else its one-line reason.

    Used before an action that cannot be undone (--restart discarding styled frames), so that a
    broken model or style image stops the command while the old frames are still there.
    """
    env = {**env, "CUDA_VISIBLE_DEVICES": "-1",
           "PYTHONPATH": worker_pythonpath(env.get("PYTHONPATH"))}
    config = {**config, "options": {**config.get("options", {}), "threads": 1}}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)
    assert proc.stdin is not None and proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if message.get("event") == "ready":
                return None
            if message.get("event") == "fatal":
                return str(message.get("message"))
        return describe_exit(proc.wait())[1]
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()


class LocalExecutor:
    """N worker slots on this machine. A slot gets a fresh process whenever its last one died."""

    def __init__(self, config: dict[str, Any], workers: int, env: dict[str, str], logs: Path,
                 gpus: int = 0) -> None:
        self.config = config
        self.size = workers
        self.env = {**env, "PYTHONPATH": worker_pythonpath(env.get("PYTHONPATH"))}
        self.logs = logs
        self.gpus = gpus
        self.events: queue.Queue[Event] = queue.Queue()
        self.procs: dict[int, WorkerProcess] = {}

    def _spawn(self, slot: int) -> WorkerProcess:
        env = dict(self.env)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot % self.gpus)
        proc = WorkerProcess(slot, self.config, env, self.logs / f"worker-{slot}.log", self.events)
        self.procs[slot] = proc
        return proc

    def submit(self, slot: int, frames: list[int]) -> WorkerProcess:
        proc = self.procs.get(slot) or self._spawn(slot)
        proc.send(frames)
        return proc

    def next_event(self, timeout: float) -> Event | None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if event.kind == "exit" and self.procs.get(event.slot) and self.procs[event.slot].pid == event.data["pid"]:
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
