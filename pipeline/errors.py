"""The errors vpipe raises on purpose. The CLI turns each into one line and an exit code."""

from __future__ import annotations

import errno
import sqlite3


class VpipeError(Exception):
    """A runtime problem the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(VpipeError):
    """The command line asks for something impossible (exit code 2)."""

    exit_code = 2


class MediaError(VpipeError):
    """A video could not be probed, decoded or encoded."""


class ModelError(VpipeError):
    """Model weights are missing, corrupt or of the wrong shape."""


class JobError(VpipeError):
    """The job folder or its manifest is not in a usable state."""


class JobLockedError(JobError):
    """Another vpipe process holds the job."""


class DiskFullError(VpipeError):
    """No space left on the device: the run stopped cleanly, nothing was lost."""

    exit_code = 3


class Interrupted(VpipeError):
    """Ctrl-C or SIGTERM: in-flight frames went back to pending."""

    exit_code = 130


def is_disk_full(exc: BaseException | None) -> bool:
    """ENOSPC/EDQUOT from the OS, or SQLite's "database or disk is full", here or in what caused it."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


DISK_FULL_HINT = "free some space and run the same command to resume (nothing done is lost)"
