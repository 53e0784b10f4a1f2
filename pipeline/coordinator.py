"""The scheduling loop: chunks out to workers, their events in, every transition into the manifest.

Chunks are the unit of scheduling, frames the unit of record. A worker that dies costs one attempt
to the frame it was on: the one in its network or, with nothing there, the one it was writing; frames
it finished stay done; the rest of its chunk goes to a fresh worker without an attempt spent. When
more than one frame was in flight (a batch in the network, or a frame in it while another was being
written) the death cannot be pinned on one of them: each goes back alone, where the next death is
its own, and none spends an attempt for it. So every death either costs an attempt or leaves frames
alone for good, and no frame is sent back forever.
A worker that holds a chunk and says nothing for longer than its limit (the frame timeout once its
engine is loaded, the load timeout before) is killed, whatever it is stuck in (stopped, a blocked pipe,
a deadlock), and then counts as dead: it costs the frame it was on, or the next frame of its chunk
when it stopped between frames; one stuck loading costs no frame, and when loads keep timing out
the run stops. So no run waits on a worker forever.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import faults
from .errors import DiskFullError, Interrupted, VpipeError
from .executors.protocol import Event, Executor, Kind, describe_exit
from .manifest import ErrorKind, Manifest


class Reporter(Protocol):
    def frame_done(self, frame: int, seconds: float) -> None: ...
    def frame_failed(self, frame: int, kind: str, message: str, final: bool) -> None: ...
    def chunk_done(self, frames: list[int], done: int, failed: int, seconds: float) -> None: ...


@dataclass
class Slot:
    busy: bool = False  # from dispatch until the worker ends the chunk (or dies)
    chunk: list[int] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)
    pid: int | None = None
    ready: bool = False
    network: list[int] = field(default_factory=list)  # frames between `start` and `styled`
    writing: list[int] = field(default_factory=list)  # frames between `writing` and `done`/`failed`
    since: float = 0.0  # the worker's last sign of progress (ready, or a frame event)
    chunk_started: float = 0.0
    chunk_done: int = 0
    chunk_failed: int = 0
    timed_out: bool = False
    killed_at: float = 0.0  # when the coordinator killed this worker (it must exit within KILL_GRACE)
    retired: bool = False  # the executor cannot run this slot any more (no room on the Ray cluster)


FRAME_TIMEOUT = 600.0  # seconds: --frame-timeout's default
LOAD_TIMEOUT = 300.0  # seconds: --load-timeout's default (a TensorFlow engine loads in 2-30 s)
KILL_GRACE = 30.0  # seconds a SIGKILLed worker has to exit (one stuck in the kernel may not) before the run stops


@dataclass(frozen=True)
class Limits:
    max_attempts: int = 2
    frame_timeout: float = FRAME_TIMEOUT
    load_timeout: float = LOAD_TIMEOUT


@dataclass
class Outcome:
    done: int = 0
    failed: int = 0
    attempts_failed: int = 0


class Coordinator:
    def __init__(self, manifest: Manifest, executor: Executor, run_id: int, limits: Limits,
                 reporter: Reporter, file_ok: Callable[[int], bool]) -> None:
        self.manifest = manifest
        self.executor = executor
        self.run_id = run_id
        self.limits = limits
        self.reporter = reporter
        self.file_ok = file_ok
        self.slots = {i: Slot() for i in range(executor.size)}
        self.queue: deque[list[int]] = deque()
        self.tries: dict[int, int] = {}
        self.outcome = Outcome()
        self.stop: VpipeError | None = None
        self.lost_loads = 0
        self.slow_loads = 0  # loads that timed out since a worker last became ready

    def run(self, chunks: list[list[int]]) -> Outcome:
        self.queue.extend(chunks)
        try:
            while self.stop is None and (self.queue or any(s.busy for s in self.slots.values())):
                # dispatch first: a worker started ahead (executor.start) has its pid recorded by its first
                # chunk before any of its events (ready, or its exit) is handled
                self._dispatch()
                event = self.executor.next_event(timeout=0.25)
                if event is not None:
                    self._handle(event)
                self._check_timeouts()
        except KeyboardInterrupt:
            self.stop = Interrupted("interrupted: frames in flight went back to pending; "
                                    "run the same command to resume")
        finally:
            self.executor.shutdown()
            self._release_all()
        if self.stop is not None:
            raise self.stop
        return self.outcome

    # ------------------------------------------------------------ dispatch

    def _dispatch(self) -> None:
        for number, slot in self.slots.items():
            if slot.busy or slot.retired or not self.queue:
                continue
            chunk = self.queue.popleft()
            self.manifest.mark_running(chunk, self.run_id, f"slot-{number}")
            proc = self.executor.submit(number, chunk)
            if slot.pid != proc.pid:
                slot.pid, slot.ready = proc.pid, False
            slot.busy, slot.chunk, slot.remaining = True, list(chunk), list(chunk)
            slot.network, slot.writing, slot.timed_out, slot.killed_at = [], [], False, 0.0
            slot.since = time.monotonic()
            slot.chunk_started, slot.chunk_done, slot.chunk_failed = time.monotonic(), 0, 0

    # ------------------------------------------------------------ events

    def _handle(self, event: Event) -> None:
        slot = self.slots[event.slot]
        data = event.data
        if event.kind not in (Kind.EXIT, Kind.RETIRED):
            slot.since = time.monotonic()  # the worker spoke: the clock of its limit starts again
        if event.kind == Kind.READY:
            slot.ready, self.slow_loads = True, 0
        elif event.kind == Kind.START:
            slot.network.append(int(data["frame"]))
            self.manifest.mark_started(int(data["frame"]))
        elif event.kind == Kind.STYLED:
            self._forget(slot, int(data["frame"]), keep=True)
        elif event.kind == Kind.WRITING:
            slot.writing.append(int(data["frame"]))
        elif event.kind == Kind.DONE:
            self._done(slot, int(data["frame"]), float(data["seconds"]), str(data["hash"]), data.get("stats"))
        elif event.kind == Kind.FAILED:
            frame = int(data["frame"])
            self._forget(slot, frame)
            if data["kind"] == ErrorKind.DISK_FULL:
                self.manifest.release([frame], self.run_id, "disk full")
                self.stop = DiskFullError(f"no space left on the device while writing frame {frame}; "
                                          "free some space and run the same command to resume")
            else:
                self._attempt_failed(slot, frame, ErrorKind(data["kind"]), str(data["message"]))
        elif event.kind == Kind.CHUNK_END:
            self._end_chunk(slot)
        elif event.kind == Kind.FATAL:
            self.stop = VpipeError(f"the engine could not be loaded: {data['message']}")
        elif event.kind == Kind.EXIT and data["pid"] == slot.pid:
            self._worker_died(slot, data)
        elif event.kind == Kind.RETIRED and data["pid"] == slot.pid:
            self._retire(slot, str(data["reason"]))

    def _done(self, slot: Slot, frame: int, seconds: float, digest: str, stats: dict[str, Any] | None) -> None:
        self._forget(slot, frame)
        if not self.file_ok(frame):  # exit code 0 is not proof: the file must be there
            self._attempt_failed(slot, frame, ErrorKind.EXCEPTION, "worker reported done but no output file")
            return
        faults.strike(frame, "commit_before")
        self.manifest.mark_done(frame, self.run_id, seconds, digest, stats)
        faults.strike(frame, "commit_after")
        self.outcome.done += 1
        slot.chunk_done += 1
        self.reporter.frame_done(frame, seconds)

    def _forget(self, slot: Slot, frame: int, keep: bool = False) -> None:
        """The frame is no longer in the worker's network or writer; `keep`: still the worker's (queued)."""
        for held in (slot.network, slot.writing) if keep else (slot.network, slot.writing, slot.remaining):
            if frame in held:
                held.remove(frame)
        slot.since = time.monotonic()

    def _attempt_failed(self, slot: Slot, frame: int, kind: ErrorKind, message: str) -> None:
        self.tries[frame] = self.tries.get(frame, 0) + 1
        final = self.tries[frame] >= self.limits.max_attempts
        self.manifest.mark_attempt_failed(frame, self.run_id, kind, message, final)
        self.outcome.attempts_failed += 1
        slot.chunk_failed += 1
        if final:
            self.outcome.failed += 1
        else:
            self.queue.append([frame])
        self.reporter.frame_failed(frame, kind.value, message, final)

    def _end_chunk(self, slot: Slot) -> None:
        if slot.chunk:
            self.reporter.chunk_done(slot.chunk, slot.chunk_done, slot.chunk_failed,
                                     time.monotonic() - slot.chunk_started)
        slot.busy, slot.chunk, slot.remaining, slot.network, slot.writing = False, [], [], [], []

    def _worker_died(self, slot: Slot, data: dict[str, Any]) -> None:
        # "lost": a Ray actor died with its node (or was killed): its reason says so, and one that
        # dies before its engine loaded only hands its chunk back, like a slot that was never placed.
        lost = bool(data.get("lost"))
        stderr_tail = str(data.get("stderr_tail") or "")
        kind, reason = (ErrorKind.TIMEOUT, f"no result within {self.limits.frame_timeout:g} s") if slot.timed_out \
            else (ErrorKind.CRASHED, str(data["reason"])) if lost else describe_exit(int(data["returncode"]))
        slot.pid, slot.killed_at = None, 0.0
        if not slot.ready and slot.timed_out:
            self._slow_load(slot)
            return
        if not slot.ready and not slot.timed_out and not lost:
            self.stop = VpipeError(f"a worker failed while loading the engine ({reason})"
                                   + (f": {stderr_tail}" if stderr_tail else ""))
            return
        if not slot.ready and lost:
            self.lost_loads += 1
            if self.lost_loads > 3 * len(self.slots):  # the cluster keeps losing workers: not a frame's fault
                self.stop = VpipeError(f"Ray workers keep dying before their engine loads: {reason}")
        # the frames it was on; stuck between frames, the frame it owes next; with none (it died between
        # frames), all it held, so a death is never nobody's; a worker lost before it loaded was on none
        on = [f for f in slot.network + slot.writing if f in slot.remaining]
        if not on and slot.timed_out and slot.ready and slot.remaining:
            on = [slot.remaining[0]]
        suspects = sorted(on) or (list(slot.remaining) if slot.ready else [])
        rest = [f for f in slot.remaining if f not in suspects]
        slot.remaining = []
        if len(suspects) == 1:
            self._attempt_failed(slot, suspects[0], kind, reason)
        elif suspects:
            self.manifest.release(suspects, self.run_id, f"{reason} with {len(suspects)} frames in flight: "
                                  "each is retried alone")
            self.queue.extend([f] for f in suspects)
        if rest:
            self.manifest.release(rest, self.run_id, f"{reason}: queued, back to pending")
            self.queue.appendleft(rest)
        self._end_chunk(slot)

    def _slow_load(self, slot: Slot) -> None:
        """A worker killed for not loading its engine in time: its chunk goes back, no frame pays."""
        reason = f"the worker did not load its engine within {self.limits.load_timeout:g} s"
        self.slow_loads += 1
        if slot.remaining:
            self.manifest.release(slot.remaining, self.run_id, reason)
            self.queue.appendleft(slot.remaining)
        slot.remaining = []
        self._end_chunk(slot)
        if self.slow_loads > len(self.slots):  # every slot and once more: the engine is slow, not a worker stuck
            self.stop = VpipeError(f"{reason}, {self.slow_loads} times in a row: raise --load-timeout "
                                   f"(a slow disk or a busy machine can need more)")

    def _retire(self, slot: Slot, reason: str) -> None:
        slot.pid, slot.retired = None, True
        if slot.remaining:
            self.queue.appendleft(slot.remaining)
        slot.remaining = []
        self._end_chunk(slot)
        if all(s.retired for s in self.slots.values()):
            self.stop = VpipeError(f"no worker could be started: {reason}")

    def _check_timeouts(self) -> None:
        """Kill a worker that holds a chunk and has been silent past its limit, in whatever state."""
        now = time.monotonic()
        for number, slot in self.slots.items():
            if not slot.busy or slot.pid is None:
                continue
            if slot.timed_out:
                if now - slot.killed_at > KILL_GRACE:
                    self.stop = VpipeError(f"worker pid {slot.pid} did not exit within {KILL_GRACE:g} s of being "
                                           "killed (stuck in the kernel: a hung disk or network file system?)")
                continue
            if now - slot.since > (self.limits.frame_timeout if slot.ready else self.limits.load_timeout):
                slot.timed_out, slot.killed_at = True, now
                self.executor.kill(number)

    def _release_all(self) -> None:
        # Frames with a worker, and the rest of a dead worker's chunk waiting in the queue; only
        # rows still `running` change, so frames that failed an attempt keep their record.
        held = [f for slot in self.slots.values() for f in slot.remaining] + [f for c in self.queue for f in c]
        if held:
            self.manifest.release(held, self.run_id, "interrupted" if isinstance(self.stop, Interrupted)
                                  else "run stopped")
