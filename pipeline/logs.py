"""Logging: JSON lines into the job's log.jsonl always; on a TTY a progress line, else JSON on stderr.

Each process configures its own logging; workers only print to stderr (their log file).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any, TextIO, cast

from . import storage


def _json_logger(stream: IO[str]) -> Any:
    import structlog  # here, not at the top: only a run logs, and every command would pay its import

    return structlog.wrap_logger(
        structlog.PrintLogger(cast(TextIO, stream)),
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer()])


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class RunLog:
    """The coordinator's reporter: per-frame and per-chunk records, plus what the user watches."""

    def __init__(self, log_path: Path, total: int, job: str, console: IO[str] | None = None) -> None:
        self._file = storage.open_log(log_path)
        self.file = _json_logger(self._file).bind(job=job)
        self.console = console or sys.stderr
        self.tty = self.console.isatty()
        self.stderr = None if self.tty else _json_logger(self.console).bind(job=job)
        self.total = total
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self._last_draw = 0.0

    def close(self) -> None:
        if self.tty:
            self.console.write("\n")
        self._file.close()

    def event(self, name: str, **fields: Any) -> None:
        self.file.info(name, **fields)
        if self.stderr is not None:
            self.stderr.info(name, **fields)

    def frame_done(self, frame: int, seconds: float) -> None:
        self.done += 1
        self.file.info("frame_done", frame=frame, seconds=seconds)
        self._draw()

    def frame_failed(self, frame: int, kind: str, message: str, final: bool) -> None:
        self.failed += final
        fields = {"frame": frame, "kind": kind, "error": message, "final": final}
        self.file.warning("frame_failed", **fields)
        if self.stderr is not None:
            self.stderr.warning("frame_failed", **fields)
        elif self.tty:
            self.console.write(f"\rframe {frame} failed ({kind}): {message}" + " " * 10 + "\n")
        self._draw(force=True)

    def chunk_done(self, frames: list[int], done: int, failed: int, seconds: float) -> None:
        fields = {"first": frames[0], "last": frames[-1], "done": done, "failed": failed,
                  "seconds": round(seconds, 3), "progress": f"{self.done}/{self.total}",
                  "fps": round(self.rate(), 3)}
        self.file.info("chunk_done", **fields)
        if self.stderr is not None:
            self.stderr.info("chunk_done", **fields, eta_s=round(self.eta() or 0))

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-6)

    def eta(self) -> float | None:
        left = self.total - self.done - self.failed
        return left / self.rate() if self.done else None

    def _draw(self, force: bool = False) -> None:
        if not self.tty or (not force and time.monotonic() - self._last_draw < 0.2):
            return
        self._last_draw = time.monotonic()
        width = 30
        filled = int(width * (self.done + self.failed) / max(self.total, 1))
        eta = self.eta()
        self.console.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} frames"
            f"  {self.rate():.2f} fps  ETA {format_seconds(eta) if eta is not None else '--'}"
            f"  failed {self.failed}  ")
        self.console.flush()
