"""Files written where the user says (`assemble -o`, `preview -o`, `styles --sheet`): the one check that
vpipe never writes over a file it reads (the source video, a frame, a painting, a model), whatever link or
second name points at it, and replaces an existing file only with --force. `--frames-out` (a folder)
is checked in export.py with the same rules."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import UsageError


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: equal once links are resolved, or one inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check(path: Path, flag: str, reads: Mapping[Path, str], force: bool) -> Path:
    """`path` made absolute, or a one-line refusal. `reads`: what this command reads (files, or folders
    whose files it reads), each with words for the message ("the job's source video")."""
    path = path.expanduser().absolute()
    for read, what in reads.items():
        if same_file(path, read):
            raise UsageError(f"{flag} {path} is {what}, which vpipe reads: choose another file")
        if read.is_dir() and read.resolve() in path.resolve().parents:
            raise UsageError(f"{flag} {path} is inside {what} ({read}), which vpipe reads: choose another place")
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder: give a file name")
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(f"{flag} {path} exists: add --force to replace it")
    return path
