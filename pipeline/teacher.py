"""The teacher of `vpipe train-style`: an engine that already stylizes well (the arbitrary engine)
paints every training image once, and the student network learns to reproduce what it painted.

The teacher's outputs are cached in the style's folder, one file per part of PART images, each
written atomically: an interrupted run resumes without repainting, and the cache key (painting,
teacher model, training images) makes a changed input repaint rather than reuse stale targets.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import storage

PART = 32  # images per cache file


@dataclass(frozen=True)
class Teacher:
    name: str  # what it is, shown in progress and in style.toml
    identity: str  # changes whenever its output would (model files, painting, options)
    paint: Callable[[np.ndarray], np.ndarray]  # RGB uint8 -> styled RGB uint8 of the same size


def arbitrary(models: Path, painting: Path, threads: int = 0) -> Teacher:
    """The arbitrary engine (Magenta) for one painting, as a teacher."""
    from .engines.arbitrary import ArbitraryEngine
    from .models import lookup

    engine = ArbitraryEngine(models, storage.read_rgb(painting), threads=threads)
    identity = hashlib.sha256((lookup.fingerprint(models) + lookup.fingerprint(painting)).encode()).hexdigest()
    return Teacher("arbitrary", identity, lambda image: engine.stylize([image])[0])


def key(teacher: Teacher, images: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256(teacher.identity.encode())
    for image in images:
        digest.update(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:16]


def _cached(path: Path, images: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    """The cached outputs for these images, or None when absent or not matching (then they are repainted)."""
    try:
        with np.load(path) as saved:
            out = [saved[f"arr_{i}"] for i in range(len(images))]
    except (OSError, ValueError, KeyError):
        return None
    if any(o.shape != i.shape or o.dtype != np.uint8 for o, i in zip(out, images, strict=True)):
        return None
    return out


def targets(teacher: Teacher, images: Sequence[np.ndarray], folder: Path,
            report: Callable[[int, int], None] = lambda done, total: None) -> list[np.ndarray]:
    """The teacher's output for each image, from the cache in `folder` where present, painted otherwise."""
    tag = key(teacher, images)
    out: list[np.ndarray] = []
    for part, start in enumerate(range(0, len(images), PART)):
        chunk = images[start:start + PART]
        path = folder / f"{tag}-{part:04d}.npz"
        painted = _cached(path, chunk)
        if painted is None:
            painted = [teacher.paint(image) for image in chunk]
            buffer = io.BytesIO()
            np.savez(buffer, *painted)
            folder.mkdir(parents=True, exist_ok=True)
            storage.publish(path, buffer.getvalue())
        out += painted
        report(len(out), len(images))
    return out


CACHE_FILE = re.compile(r"[0-9a-f]{16}-[0-9]{4}\.npz")  # what targets() writes, and all that forget() removes


def forget(folder: Path) -> int:
    """Remove the cached outputs in `folder` once a style is trained (about 190 MB for the default data); only
    files named as targets() names them, then the folder if that left it empty. Returns the bytes freed."""
    freed = 0
    if not folder.is_dir() or folder.is_symlink():
        return 0
    for path in folder.iterdir():
        if CACHE_FILE.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            freed += path.stat().st_size
            path.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()
    return freed
