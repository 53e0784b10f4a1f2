"""Disk space: what a split or a run will write, measured on a few frames, against what is free, before
anything is written; and what a job takes now (`vpipe status`).

VPIPE_FREE_SPACE (bytes, or 2G, 500M) stands in for the free space of every folder: tests use it to
try the refusal without filling a disk.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import storage
from .errors import DiskFullError
from .resources import parse_size

if TYPE_CHECKING:
    import numpy as np

FREE_ENV = "VPIPE_FREE_SPACE"
MARGIN = 1.15  # frames differ from the sampled ones; better refuse a little early than fill the disk
# Brush texture compresses worse than footage: starry_night's styled PNGs of slow_traffic_small took 2.6x
# the source frames' bytes (484 vs 184 MB, 914 frames). Used until a job has styled frames of its own.
STYLED_GROWTH = 2.5


def human(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


def free(where: Path) -> int:
    """Free bytes for new files in `where` (its nearest existing folder; a symlinked folder's own disk)."""
    forced = os.environ.get(FREE_ENV)
    if forced:
        return parse_size(forced, FREE_ENV)
    place = where
    while not place.exists() and place != place.parent:
        place = place.parent
    return shutil.disk_usage(place).free


def per_frame(samples: Sequence[np.ndarray], fmt: str, quality: int | None = None) -> float:
    """Mean encoded size of these frames in this format: what each frame file will take."""
    return sum(len(storage.encode(f, fmt, quality)) for f in samples) / len(samples)


def largest(size: tuple[int, int], fmt: str) -> float | None:
    """The most bytes a frame of this (width, height) can take in this format, where that is bounded: a
    PNG (deflate never grows data by more than its stored blocks' framing) takes at most its raw pixels
    (16-bit RGB here) plus a filter byte per row and the chunk headers. JPEG and WebP: None."""
    width, height = size
    return (6 * width + 1) * height * 1.01 + 4096 if fmt == "png" else None


def surely_fits(where: Path, frames: int, size: tuple[int, int], fmt: str) -> bool:
    """Whether `frames` frame files fit in `where` even at their `largest`: then none need be encoded to tell."""
    most = largest(size, fmt)
    return most is not None and frames * most * MARGIN <= free(where)


def check(where: Path, frames: int, each: float, what: str, hints: str) -> None:
    """Refuse, with the figures, when `frames` files of about `each` bytes would not fit in `where`."""
    need, room = int(frames * each * MARGIN), free(where)
    if need > room:
        raise DiskFullError(f"{what} needs about {human(need)} in {where} ({frames} frames of about "
                            f"{human(each)}), and {human(room)} is free: free some space{hints}")


def usage(folder: Path) -> int:
    """Bytes the files in `folder` take (followed when it is a symlink to another disk)."""
    if not folder.is_dir():
        return 0
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())
