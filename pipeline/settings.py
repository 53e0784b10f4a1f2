"""A run's settings: what the command line asked, what the job already holds, and what workers are told.

The settings that make a styled frame what it is (engine, model and image digests, working size,
engine parameters, video mode: IDENTITY) are stored with the job; a run that would change them on
a job with styled frames is refused unless --restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import engines, storage, styles
from .coordinator import FRAME_TIMEOUT, LOAD_TIMEOUT
from .engines.spec import VideoMode
from .errors import UsageError
from .executors.protocol import WorkerConfig
from .frames import FrameRange
from .job import Job, JobMeta
from .manifest import Manifest
from .models import lookup, store


@dataclass(frozen=True)
class RunOptions:
    style: str | None = None
    engine: str | None = None
    frames: FrameRange | None = None
    chunk: int = 50
    workers: int | None = None
    threads: int | None = None  # compute threads per worker
    max_side: int | None = None
    max_attempts: int = 2
    frame_timeout: float = FRAME_TIMEOUT  # seconds a loaded worker may be silent on its chunk
    load_timeout: float = LOAD_TIMEOUT  # seconds a fresh worker may take to load its engine
    device: str = "auto"
    executor: str = "local"  # local | ray
    ray_address: str | None = None
    gpus_per_worker: int | None = None
    restart: bool = False
    max_memory: int | None = None  # bytes per worker; None: resources.default_budget
    params: dict[str, Any] = field(default_factory=dict)  # engine parameters given on the command line
    temporal: float | bool | None = None  # None: the engine's default; False: off; True: on; a weight
    frame_format: str | None = None  # styled frames' storage: png | jpg | webp (None: the frames' own)
    quality: int | None = None  # of jpg/webp styled frames


IDENTITY = ("engine", "model_sha256", "image_sha256", "max_side", "params", "temporal", "format", "quality")


def resolve(manifest: Manifest, options: RunOptions) -> dict[str, Any]:
    """The style settings of this run; with no --style/--engine a resume reuses the job's."""
    stored = manifest.meta("settings")
    resume = bool(stored) and options.style is None and options.engine is None
    if resume:
        style = styles.resolve(stored["style"], stored["engine"], store.obtain)
        max_side = options.max_side if options.max_side is not None else stored.get("max_side")
        params = {**stored.get("params", {}), **options.params}
    else:
        style = styles.resolve(options.style, options.engine, store.obtain)
        max_side, params = options.max_side, {**style.params, **options.params}
    spec = engines.spec_of(style.engine)
    style, params = runnable(style, params)
    if style.image:
        styles.check_painting(style.image)
    video_mode = _temporal(spec.video, options.temporal, stored.get("temporal") if resume else None, resume)
    fmt, quality = options.frame_format, options.quality
    if resume and fmt is None:  # like the style: kept on a resume unless asked again
        fmt, quality = stored.get("format"), stored.get("quality") if quality is None else quality
    try:
        fmt, quality = storage.styled_format(str(manifest.meta("ext")), fmt, quality)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return {**style.settings(), "max_side": max_side, "params": params, "temporal": video_mode,
            "format": fmt, "quality": quality}


def runnable(style: styles.Style, params: dict[str, Any]) -> tuple[styles.Style, dict[str, Any]]:
    """The style with the model its engine will run, and the engine's params checked; a one-line error
    when there is no model."""
    spec = engines.spec_of(style.engine)
    params = engines.check_params(spec.name, params)
    if spec.model_option:  # the engine's model is picked by one of its options (gatys: --net)
        params.setdefault(spec.model_option, spec.option(spec.model_option).default)
        name = spec.models[params[spec.model_option]]
        store.obtain(name)  # fetched first when missing (not offline)
        style = style.with_model(lookup.verified(name))
    if style.model is None:
        raise UsageError(f"the {style.engine!r} engine needs a style model, not an image")
    return style, params


def _temporal(default: VideoMode, asked: float | bool | None, stored: dict[str, Any] | None,
              resume: bool) -> dict[str, Any] | None:
    """The worker's video-mode config: what was asked, else the job's on a resume, else the engine's default."""
    on, weight = default.on, default.weight
    if asked is None:
        return stored if resume else ({"weight": weight} if on else None)
    if asked is False:
        return None
    return {"weight": weight if asked is True else float(asked)}


def identity(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings.get(k) or None for k in IDENTITY}


def differences(stored: dict[str, Any], settings: dict[str, Any]) -> str:
    """What changed between the job's settings and these, for the refusal message."""
    return ", ".join(f"{k}: {stored.get(k)} -> {settings.get(k)}"
                     for k in ("style", *IDENTITY) if (stored.get(k) or None) != (settings.get(k) or None))


def worker_config(job: Job, meta: JobMeta, settings: dict[str, Any]) -> WorkerConfig:
    """What every worker of a run is told, before the run's plan (WorkerConfig.planned adds its threads and budget)."""
    engine_options = dict(settings.get("params", {}))
    if settings.get("image"):
        engine_options["style_image"] = settings["image"]
    return WorkerConfig(engine=settings["engine"], model=settings["model"], frames_dir=str(job.frames_dir),
                        styled_dir=str(job.styled_dir), name_width=meta.name_width, ext=meta.ext,
                        max_side=settings.get("max_side"), styled_ext=storage.styled_ext(settings, meta.ext),
                        quality=settings.get("quality"), temporal=settings.get("temporal"), options=engine_options)


def worker_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
