"""Where a job lives on disk, how it is named and found, and the lock that guards it."""

from __future__ import annotations

import fcntl
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import JobError, JobLockedError, UsageError
from .frames import frame_name, frame_pattern
from .probe import VideoInfo

JOBS_ENV = "VPIPE_JOBS_DIR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LAST_JOB_FILE = ".last-job"


def jobs_dir(explicit: Path | None = None) -> Path:
    """--jobs-dir, else $VPIPE_JOBS_DIR, else ./jobs under the current directory."""
    return (explicit or Path(os.environ.get(JOBS_ENV) or Path.cwd() / "jobs")).absolute()


def check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise UsageError(f"job name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
                         "(no slashes, at most 64 characters)")
    return name


def name_from_path(video: Path) -> str:
    """A safe job name from a file name: "Mon film (final).mp4" -> "Mon_film_final"."""
    ascii_stem = unicodedata.normalize("NFKD", video.stem).encode("ascii", "ignore").decode()
    name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem))
    return check_name(name.strip("._-")[:64].rstrip("._-") or "job")


@dataclass(frozen=True)
class JobMeta:
    """What `vpipe split` recorded about a job's video, read in one call (Manifest.job_meta)."""

    video: VideoInfo
    source: Path
    source_sha256: str
    name_width: int  # digits in frame names: name order is frame order
    ext: str  # frame file format: png or jpg

    KEYS = ("video", "source", "source_sha256", "name_width", "ext")

    def record(self) -> dict[str, Any]:
        """The manifest's meta rows (JSON values) for these facts."""
        return {"video": self.video.to_dict(), "source": str(self.source), "source_sha256": self.source_sha256,
                "name_width": self.name_width, "ext": self.ext}

    @staticmethod
    def from_record(record: dict[str, Any]) -> JobMeta:
        return JobMeta(VideoInfo.from_dict(record["video"]), Path(record["source"]), str(record["source_sha256"]),
                       int(record["name_width"]), str(record["ext"]))


@dataclass(frozen=True)
class FrameFiles:
    """Where frame i (1-based) of a job lives: its source image and its styled image, same name in both."""

    source_dir: Path
    styled_dir: Path
    width: int
    ext: str
    styled_ext: str = ""  # stylize --format; "": the frames' own

    def name(self, index: int) -> str:
        return frame_name(index, self.width, self.ext)

    def styled_name(self, index: int) -> str:
        return frame_name(index, self.width, self.styled_ext or self.ext)

    def source(self, index: int) -> Path:
        return self.source_dir / self.name(index)

    def styled(self, index: int) -> Path:
        return self.styled_dir / self.styled_name(index)

    @property
    def pattern(self) -> str:
        """The printf pattern ffmpeg reads and writes for the same names."""
        return frame_pattern(self.width, self.ext)


@dataclass(frozen=True)
class Job:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    @property
    def styled_dir(self) -> Path:
        return self.root / "styled"

    @property
    def partial_frames_dir(self) -> Path:
        """Where split decodes before renaming to frames/: never a half frame set under that name."""
        return self.root / "frames.partial"

    @property
    def assemble_dir(self) -> Path:
        """The gapless sequence of links assemble hands to ffmpeg (removed afterwards)."""
        return self.root / ".assemble"

    @property
    def default_output(self) -> Path:
        return self.root / "output.mp4"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.sqlite"

    @property
    def log_path(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.root / "lock"

    @property
    def worker_logs(self) -> Path:
        return self.root / "workers"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def files(self, meta: JobMeta, settings: dict[str, Any] | None = None) -> FrameFiles:
        """The job's frame paths: frames/NNNNNN.ext and styled/NNNNNN.ext (the run settings' --format)."""
        return FrameFiles(self.frames_dir, self.styled_dir, meta.name_width, meta.ext,
                          str((settings or {}).get("format") or ""))


def find_job(base: Path, name: str | None) -> tuple[Job, str | None]:
    """The job to act on, and a note when it was chosen for the user (several jobs, no --job)."""
    if name is not None:
        job = Job(base / check_name(name))
        if not job.exists():
            raise UsageError(f"no job named {name!r} in {base} (run `vpipe split VIDEO --job {name}`)")
        return job, None
    names = sorted({p.parent.name for p in base.glob("*/manifest.sqlite")}) if base.is_dir() else []
    if not names:
        raise UsageError(f"no jobs in {base}: start with `vpipe split VIDEO`")
    if len(names) == 1:
        return Job(base / names[0]), None
    last = base / LAST_JOB_FILE
    chosen = last.read_text().strip() if last.is_file() else ""
    if chosen not in names:
        raise UsageError(f"{len(names)} jobs in {base} ({', '.join(names)}): choose one with --job")
    return Job(base / chosen), f"using job {chosen!r} (the last one split; --job picks another)"


def remember_last(base: Path, name: str) -> None:
    tmp = base / (LAST_JOB_FILE + ".tmp")
    tmp.write_text(name + "\n")
    tmp.replace(base / LAST_JOB_FILE)


def lock_holder(job: Job) -> int | None:
    """The pid of a live process holding the job (read-only: never takes the lock itself)."""
    try:
        pid = int(job.lock_path.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if not pid:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


class JobLock:
    """An flock on the job: the kernel drops it when the holder dies, so a crash never needs --unlock."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._fd: int | None = None

    def __enter__(self) -> JobLock:
        try:
            fd = os.open(self.job.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JobError(f"cannot open the job lock {self.job.lock_path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise JobLockedError(f"job {self.job.name!r} is in use by pid {holder}; "
                                 "wait for it to finish or stop it (Ctrl-C)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None
