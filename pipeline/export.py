"""What `vpipe assemble` hands to an editor besides a video: the gapless frame sequence it encodes
from, and that sequence written out as image files (`--frames-out`), whole or not at all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import storage
from .errors import UsageError
from .frames import frame_name
from .job import Job


def link_sequence(job: Job, total: int, width: int, ext: str, frames_ext: str, from_source: set[int],
                  quality: int | None = None) -> Path:
    """A gapless 1..N sequence of links to styled frames (or source frames filling the gaps).

    ffmpeg's image2 decodes every file of a sequence as the format its name says, so a source frame
    stored in another format than the styled ones (split as jpg, stylized as webp) is converted.
    """
    sequence = job.root / ".assemble"
    shutil.rmtree(sequence, ignore_errors=True)
    sequence.mkdir()
    for i in range(1, total + 1):
        name = frame_name(i, width, ext)
        if i not in from_source:
            (sequence / name).symlink_to((job.styled_dir / name).absolute())
        elif frames_ext == ext:
            (sequence / name).symlink_to((job.frames_dir / name).absolute())
        else:
            rgb = storage.read_rgb(job.frames_dir / frame_name(i, width, frames_ext))
            (sequence / name).write_bytes(storage.encode(rgb, ext, quality))
    return sequence


def check_frames_out(folder: Path, job: Job, source: Path, force: bool) -> Path:
    """The folder `--frames-out` may fill, or a one-line refusal: never a job's folder (or one that
    holds a job, or the source video), never a non-empty folder without --force."""
    folder = folder.expanduser().resolve()
    root = job.root.resolve()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--frames-out {folder} is a file, not a folder")
    if folder == root or root in folder.parents or folder in root.parents:
        raise UsageError(f"--frames-out {folder}: that is the job's own folder or holds it; choose a folder outside the job")
    for place in (job.frames_dir.resolve(), job.styled_dir.resolve()):  # also where a link moved them
        if folder == place or place in folder.parents or folder in place.parents:
            raise UsageError(f"--frames-out {folder}: that is the job's frames or styled folder ({place}) or "
                             "holds it; choose a folder outside the job")
    if any((p / "manifest.sqlite").is_file() for p in (folder, *folder.parents)):
        raise UsageError(f"--frames-out {folder} is inside a job's folder; choose a folder outside the jobs")
    if folder in source.resolve().parents:
        raise UsageError(f"--frames-out {folder} holds the source video; choose another folder")
    if not folder.parent.is_dir():
        raise UsageError(f"--frames-out {folder}: the folder {folder.parent} does not exist")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise UsageError(f"--frames-out {folder} is not empty: choose another folder, or --force to replace it")
    return folder


def write_frames(sequence: Path, names: list[str], folder: Path) -> None:
    """Copy the sequence's files into a partial folder beside `folder`, then rename it into place
    (replacing what --force allowed to replace): the folder holds every frame or is left as it was."""
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        for name in names:
            shutil.copyfile(sequence / name, partial / name)  # follows the links: real files, not the job's
            storage.fsync_path(partial / name)
        storage.fsync_path(partial)
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if folder.is_dir() and any(folder.iterdir()):
            folder.replace(old)
        partial.replace(folder)  # over an empty folder, or where the old one was
        storage.fsync_path(folder.parent)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
