"""`vpipe preview VIDEO --style A --style B`: how styles look on your own footage, before a night of work.

A few frames spread over the video are stylized by each style in this process, at a small size, and laid
out as one PNG: the source frames on top, then a band per style with its name, engine and painting.
Engines with a reduced preview budget in their spec (gatys: fewer iterations) run at it, and their band
says so. Nothing is written in any job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import engines, output, settings, storage, styles, video
from .errors import MediaError, UsageError
from .models import store
from .sheet import LABEL, Band, layout, load_here, style_files

FRAMES = 4
SIDE = 384  # the long side frames are stylized at: seconds per style for fast and arbitrary


@dataclass(frozen=True)
class Preview:
    path: Path
    frames: list[float]  # the seconds the frames were taken at
    styles: list[str]


def spread(duration: float, count: int) -> list[float]:
    """`count` times spread over the video, each in the middle of its share (never the black first frame)."""
    return [round(duration * (i + 0.5) / count, 3) for i in range(count)]


def stylized(name: str, frames: list[np.ndarray], style: styles.Style | None = None) -> tuple[Band, str]:
    """One style's band: its frames stylized in this process, at the engine's preview budget."""
    style = style or styles.resolve(name, None, store.obtain)
    spec = engines.spec_of(style.engine)
    style, params = settings.runnable(style, {**style.params, **spec.preview_budget})
    engine = load_here(style, params)
    budget = ", ".join(f"{k} {v}" for k, v in spec.preview_budget.items())
    caption = (Path(name).name, f"engine {style.engine}", *((f"preview: {budget}",) if budget else ()))
    painting = storage.read_rgb(style.reference, side=LABEL) if style.reference else None
    return Band(caption, painting, tuple(engine.stylize([f])[0] for f in frames)), style.engine


def preview(source: Path, names: list[str], out: Path, count: int = FRAMES, force: bool = False) -> Preview:
    if not source.is_file():
        raise UsageError(f"{source}: no such video file")
    output.check(out, "-o", {source: "the video itself"}, force)  # before any work
    chosen = [styles.resolve(name, None, store.obtain) for name in names]
    output.check(out, "-o", {source: "the video itself", **style_files(chosen)}, force)
    info = video.probe(source)
    if not info.duration:
        raise MediaError(f"{source.name}: its duration is unknown, so frames cannot be spread over it")
    times = spread(info.duration, count)
    frames = video.frames_at(source, times, SIDE)
    bands = [Band(("source", source.name[:26]), None, tuple(frames))]
    bands += [stylized(name, frames, style)[0] for name, style in zip(names, chosen, strict=True)]
    out.parent.mkdir(parents=True, exist_ok=True)
    storage.publish(out, storage.encode(layout(bands, frames[0].shape[1] / frames[0].shape[0]), "png"))
    return Preview(out, times, list(names))
