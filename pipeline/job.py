"""Where a job lives on disk, how it is named and found, and the lock that guards it."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import storage
from .errors import DiskFullError, JobError, JobLockedError, UsageError
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
    storage.publish(base / LAST_JOB_FILE, (name + "\n").encode())


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
    """An flock on the job's folder: the kernel drops it when the holder dies, so a crash never needs
    --unlock. The folder is locked, not the `lock` file (that only says which pid holds it), so deleting
    or replacing that file cannot let a second writer in. Once locked, the path must still name the
    locked folder (a split that failed removes the folder it created), else it locks again.

    `create`: make the job folder when it does not exist (split); otherwise it must exist."""

    def __init__(self, job: Job, create: bool = False) -> None:
        self.job = job
        self.create = create
        self.created = False  # this lock made the job folder (a split that fails removes it again)
        self._fd: int | None = None

    def __enter__(self) -> JobLock:
        for _ in range(100):
            fd = self._open_folder()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = lock_holder(self.job)
                raise JobLockedError(f"job {self.job.name!r} is in use by "
                                     f"{f'pid {holder}' if holder else 'another process'}; "
                                     "wait for it to finish or stop it (Ctrl-C)") from None
            if self._still_named(fd):
                self._fd = fd
                break
            os.close(fd)  # the folder was removed (or replaced) while this process waited: lock the new one
        else:
            raise JobError(f"cannot lock job {self.job.name!r}: its folder keeps changing")
        try:
            write_pid(self.job.lock_path, os.getpid())
        except BaseException as exc:
            os.close(self._fd)
            self._fd = None
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(f"cannot write the job lock {self.job.lock_path}: no space left on the device; "
                                    "free some space and run the command again (nothing was changed)") from exc
            if isinstance(exc, OSError):
                raise JobError(f"cannot write the job lock {self.job.lock_path}: {exc.strerror}") from exc
            raise
        return self

    def _open_folder(self) -> int:
        if self.create:
            try:
                self.job.root.mkdir()
                self.created = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise JobError(f"cannot create the job folder {self.job.root}: {exc.strerror}") from exc
        try:
            return os.open(self.job.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise JobError(f"cannot open the job folder {self.job.root}: {exc.strerror}") from exc

    def _still_named(self, fd: int) -> bool:
        try:
            now = os.stat(self.job.root)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            try:
                write_pid(self.job.lock_path, 0)
            except (OSError, JobError):
                pass  # the pid record only informs `status`; the flock below is what guards the job
            finally:
                os.close(self._fd)
                self._fd = None


def write_pid(path: Path, pid: int) -> None:
    """Record the lock holder's pid (0: none) in the job's `lock` file, never through a symlink."""
    try:
        fd = storage.open_own(path, os.O_RDWR | os.O_CREAT)
    except FileNotFoundError:
        return  # the folder went away under a failed split's cleanup
    try:
        os.ftruncate(fd, 0)
        if pid:
            os.pwrite(fd, f"{pid}\n".encode(), 0)
    finally:
        os.close(fd)
