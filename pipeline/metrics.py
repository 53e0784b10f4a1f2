"""`vpipe metrics`: how steady (warping error), how styled (Gram distance) and how much of the picture
is kept (structure) a job's frames are.

E_warp follows Lai et al. (2018): each styled frame is warped back onto the one before it with DIS
flow computed on the ORIGINAL frames, and the squared RGB difference in [0, 1] is averaged over the
pixels Ruder's mask trusts. The style loss is the Gram distance of a frame to the style image on
SqueezeNet features (the gatys engine's own style loss), so steadiness bought by washing out the
style shows up. Both are also given for the source frames as a reference. Structure kept catches the
failure both of those pass: objects dissolved into blobs of the painting's colours (see `structure`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import flow, storage
from .errors import ModelError, UsageError
from .frames import FrameRange
from .job import Job, find_job
from .manifest import Manifest, Status
from .models import lookup
from .worker import fit

MAX_SIDE = 640  # frames are measured at most this large (flow cost); the same for every job
STYLE_SAMPLES = 16  # frames whose style loss is averaged (evenly spread over the range)


@dataclass
class Report:
    job: str
    first: int
    last: int
    frames: int  # styled frames measured
    pairs: int
    warping_error: float | None
    source_warping_error: float | None
    style_loss: float | None = None
    source_style_loss: float | None = None
    structure: float | None = None  # mean structure kept over the sampled frames (1: the source's outlines)
    style_image: str | None = None
    notes: list[str] = field(default_factory=list)
    measured_at: float = field(default_factory=time.time)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two renderings of one frame on the 0..255 scale (either may be float: rounded to
    levels first); inf when they are equal."""
    mse = float(np.mean((np.round(np.asarray(a, np.float64)) - np.round(np.asarray(b, np.float64))) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


STRUCTURE_SIGMA = 2.0  # Gaussian blur in px at MAX_SIDE wide: brush texture goes, outlines stay


def outlines(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude (Sobel) of the blurred luminance: where the picture's edges are, without texture."""
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    sigma = STRUCTURE_SIGMA * max(gray.shape) / MAX_SIDE
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma)
    return np.hypot(cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3))


def structure(styled: np.ndarray, source: np.ndarray, where: np.ndarray | None = None) -> float:
    """Structure kept: Pearson correlation of the outlines of a styled frame and of its source (1: the same
    outlines; a blurred or blobby frame scores low, a flat one 0). Same size RGB uint8 frames; `where` (a
    boolean HxW mask) limits it to some pixels, e.g. moving objects, where video mode could leave ghosts."""
    if styled.shape != source.shape:
        raise ValueError(f"structure: frames differ in size ({styled.shape} vs {source.shape})")
    keep = slice(None) if where is None else where.ravel()
    a = outlines(styled).ravel()[keep].astype(np.float64)
    b = outlines(source).ravel()[keep].astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def moving(prev_source: np.ndarray, source: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """Where the picture moves between two source frames (flow longer than `threshold` px, dilated a little):
    the pixels on which ghosts of the previous frame would show."""
    motion = flow.compute(flow.gray(source), flow.gray(prev_source))  # on the current frame
    fast = (np.hypot(motion[..., 0], motion[..., 1]) > threshold).astype(np.uint8)
    return cv2.dilate(fast, np.ones((5, 5), np.uint8)).astype(bool)


def pair_errors(frames: list[np.ndarray], sources: list[np.ndarray]) -> list[float]:
    """E_pair for each consecutive pair of a run of frames."""
    return [flow.pair_error(frames[t - 1], frames[t], sources[t - 1], sources[t]) for t in range(1, len(frames))]


def warping_error(frames: list[np.ndarray], sources: list[np.ndarray]) -> float | None:
    """E_warp: mean E_pair over consecutive pairs (None with fewer than two frames)."""
    errors = pair_errors(frames, sources)
    return float(np.mean(errors)) if errors else None


def runs(indices: list[int]) -> list[list[int]]:
    """Split sorted frame indices into runs of consecutive frames (pairs never span a gap)."""
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][-1] == i - 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def spread(indices: list[int], count: int) -> list[int]:
    if len(indices) <= count:
        return indices
    return [indices[round(k * (len(indices) - 1) / (count - 1))] for k in range(count)] if count > 1 else indices[:1]


def _read(path: Path) -> np.ndarray:
    """A frame as measured: at most MAX_SIDE, whatever the job's size."""
    return fit(storage.read_rgb(path), MAX_SIDE)


# The judge's own layers and painting scale, pinned: the gatys engine's defaults may be tuned against this
# yardstick, so it must not move with them (these were the engine's defaults when the judge was made).
JUDGE_STYLE_LAYERS = {"conv1": 0.5, "fire2": 1.0, "fire3": 1.0, "fire5": 1.0, "fire7": 1.0}


def style_distance(style_image: Path, images: list[np.ndarray]) -> list[float]:
    """Gram distance of each image to the style image scaled to the image's long side (SqueezeNet,
    JUDGE_STYLE_LAYERS)."""
    import tensorflow as tf

    from .engines import features, gatys

    net = features.load("squeezenet", lookup.find(lookup.FEATURE_NETS["squeezenet"]))
    settings = gatys.Settings(style_layers=JUDGE_STYLE_LAYERS, style_scale=1.0)
    engine = gatys.GatysEngine(gatys.read_image(style_image), net, settings)
    out = []
    for image in images:
        feats = net(tf.constant(image[None], tf.float32), list(engine.style_weights))
        grams = {k: gatys.gram(feats[k]) for k in engine.style_weights}
        targets = engine.style_targets(*image.shape[:2])
        out.append(float(gatys.style_loss(grams, targets, engine.style_weights)))
    return out


def measure(base: Path, name: str | None, frames: FrameRange | None, style_image: Path | None) -> Report:
    job, _ = find_job(base, name)
    with Manifest.open(job.manifest_path) as manifest:
        total = manifest.frame_count()
        first, last = frames.resolve(total) if frames else (1, total)
        done = manifest.frames(Status.DONE, first, last)
        settings = manifest.meta("settings") or {}
        files = job.files(manifest.job_meta(), settings)
    if not done:
        raise UsageError(f"job {job.name!r}: no styled frames in {first}-{last} to measure")
    styled_errors: list[float] = []
    source_errors: list[float] = []
    notes: list[str] = []
    for run in runs(done):
        sources = [_read(files.source(i)) for i in run]
        styled_errors += pair_errors([_read(files.styled(i)) for i in run], sources)
        source_errors += pair_errors(sources, sources)
    pairs = len(styled_errors)
    report = Report(job.name, first, last, len(done), pairs, float(np.mean(styled_errors)) if pairs else None,
                    float(np.mean(source_errors)) if pairs else None, notes=notes)
    sample = spread(done, STYLE_SAMPLES)
    styled, sources = [_read(files.styled(i)) for i in sample], [_read(files.source(i)) for i in sample]
    report.structure = float(np.mean([structure(s, f) for s, f in zip(styled, sources, strict=True)]))
    image = style_image or (Path(settings["image"]) if settings.get("image") else None)
    if image is None:
        notes.append("no style image known for this job: pass --style-image to get the style loss")
    else:
        try:
            # one call: the feature network and the style targets are built once for both
            losses = style_distance(image, styled + sources)
            report.style_loss = float(np.mean(losses[:len(sample)]))
            report.source_style_loss = float(np.mean(losses[len(sample):]))
            report.style_image = str(image)
        except ModelError as exc:
            notes.append(f"style loss skipped: {exc}")
    _save(job, report)
    return report


def _save(job: Job, report: Report) -> None:
    """Keep the latest measurement per range in jobs/NAME/metrics.json (written atomically)."""
    path = job.metrics_path
    try:
        saved: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        saved = {}
    saved[f"{report.first}-{report.last}"] = asdict(report)
    storage.publish(path, json.dumps(saved, indent=1).encode())
