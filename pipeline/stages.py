"""split / stylize / retry-failed / assemble / status: the one module where the parts meet."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import engines, executors, models, probe, resources, storage, styles, temporal, video
from .coordinator import Coordinator, Limits, Outcome
from .errors import JobError, MediaError, ModelError, UsageError, VpipeError
from .executors.local import preflight
from .frames import FrameRange, count_sequence, describe_spans, frame_name, frame_pattern, name_width, plan_chunks
from .job import Job, JobLock, check_name, find_job, name_from_path, remember_last
from .logs import RunLog
from .manifest import Manifest, Status

# ---------------------------------------------------------------- split


@dataclass(frozen=True)
class SplitResult:
    job: Job
    frames: int
    info: probe.VideoInfo
    already: bool = False
    notes: tuple[str, ...] = ()


def _check_source(source: Path) -> None:
    if not source.exists():
        raise UsageError(f"{source}: no such file")
    if source.is_dir():
        raise UsageError(f"{source} is a folder, not a video file")
    if source.stat().st_size == 0:
        raise MediaError(f"{source.name} is empty (0 bytes)")


def _make_jobs_dir(base: Path) -> None:
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"cannot create the jobs folder {base}: {exc.strerror}") from exc
    if not os.access(base, os.W_OK | os.X_OK):
        raise JobError(f"the jobs folder {base} is not writable")


def split(source: Path, base: Path, name: str | None, fmt: str = "png") -> SplitResult:
    _check_source(source)
    job = Job(base / (check_name(name) if name else name_from_path(source)))
    source_hash = storage.file_digest(source)
    if job.exists():
        manifest = Manifest.open(job.manifest_path)
        try:
            if manifest.meta("source_sha256") != source_hash:
                raise UsageError(f"job {job.name!r} already holds another video ({manifest.meta('source')}); "
                                 "choose another --job")
            if not job.frames_dir.is_dir():
                raise JobError(f"job {job.name!r}: its frames folder {job.frames_dir} was deleted; "
                               "split the video into a new job")
            info = probe.VideoInfo.from_dict(manifest.meta("video"))
            return SplitResult(job, manifest.frame_count(), info, already=True)
        finally:
            manifest.close()
    info = video.probe(source)
    _make_jobs_dir(base)
    job.root.mkdir(exist_ok=True)
    with JobLock(job):
        try:
            count, width, notes = _decode_frames(source, job, info, fmt)
        except BaseException:  # no half frame set left behind, and its space is freed (disk full)
            shutil.rmtree(job.root / "frames.partial", ignore_errors=True)
            raise
        job.styled_dir.mkdir(exist_ok=True)
        Manifest.create(job.manifest_path, count, {
            "video": info.to_dict(), "source": str(source.resolve()), "source_sha256": source_hash,
            "ext": fmt, "name_width": width, "created": time.time(), "notes": list(notes)})
    remember_last(base, job.name)
    return SplitResult(job, count, info, notes=tuple(notes))


def _decode_frames(source: Path, job: Job, info: probe.VideoInfo, fmt: str) -> tuple[int, int, list[str]]:
    """Decode into frames.partial/, check the count, then rename: never a half frame set named frames/."""
    partial = job.root / "frames.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    rate = probe.rational(info.rate)
    estimate = info.frame_count or int((info.duration or 0) * float(rate or 30)) + 1
    width = name_width(estimate * 2)
    notes = []
    if info.variable_rate:
        notes.append(f"variable frame rate: converted to a constant {info.rate} fps (the source's average)")
    args = video.split_args(video.tools().ffmpeg, source, partial / frame_pattern(width, fmt), fmt,
                            info.rate if info.variable_rate else None, info.duration)
    done = video.run(args, f"decoding {source.name}")
    names = sorted(p.name for p in partial.iterdir())
    reported = video.progress_frames(done.stdout)
    if not names:
        raise MediaError(f"{source.name}: no frame could be decoded")
    try:
        count = count_sequence(names, width, fmt)
    except ValueError as exc:
        raise MediaError(f"{source.name}: {exc}") from exc
    if reported and reported != count:
        raise MediaError(f"{source.name}: ffmpeg reported {reported} frames but {count} were written")
    expected = round((info.duration or 0) * float(rate or 0))
    if expected and count < 0.9 * expected:
        notes.append(f"decoded {count} frames where the container's duration suggests about {expected}: "
                     "the file may be truncated or damaged")
    if job.frames_dir.exists():  # left by a split that died before writing the manifest
        shutil.rmtree(job.frames_dir)
    partial.replace(job.frames_dir)
    storage.fsync_path(job.root)
    return count, width, notes


# ---------------------------------------------------------------- stylize and retry-failed


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
    frame_timeout: float = 600.0
    device: str = "auto"
    executor: str = "local"  # local | ray
    ray_address: str | None = None
    gpus_per_worker: int | None = None
    restart: bool = False
    max_memory: int | None = None  # bytes per worker; None: resources.default_budget
    params: dict[str, Any] = field(default_factory=dict)  # engine parameters given on the command line
    temporal: float | bool | None = None  # None: the engine's default; False: off; True: on; a weight


@dataclass
class RunResult:
    job: Job
    todo: int
    outcome: Outcome
    seconds: float
    counts: dict[Status, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


IDENTITY = ("engine", "model_sha256", "image_sha256", "max_side", "params", "temporal")


def _settings(manifest: Manifest, options: RunOptions) -> dict[str, Any]:
    """The style settings of this run; with no --style/--engine a resume reuses the job's."""
    stored = manifest.meta("settings")
    resume = bool(stored) and options.style is None and options.engine is None
    if resume:
        style = styles.resolve(stored["style"], stored["engine"])
        max_side = options.max_side if options.max_side is not None else stored.get("max_side")
        params = {**stored.get("params", {}), **options.params}
    else:
        style = styles.resolve(options.style, options.engine)
        max_side, params = options.max_side, {**style.params, **options.params}
    engines.check_name(style.engine)
    engines.check_params(style.engine, params)
    if style.engine == "gatys":
        params.setdefault("net", "squeezenet")
        style = style.with_model(models.verified(models.FEATURE_NETS[params["net"]]))
    if style.model is None:
        raise UsageError(f"the {style.engine!r} engine needs a style model, not an image")
    if style.image:
        try:
            storage.read_rgb(style.image)
        except (OSError, ValueError) as exc:
            raise MediaError(f"style image {style.image.name} is not a readable image") from exc
    video_mode = _temporal(style.engine, options.temporal, stored.get("temporal") if resume else None, resume)
    return {**style.settings(), "max_side": max_side, "params": params, "temporal": video_mode}


def _temporal(engine: str, asked: float | bool | None, stored: dict[str, Any] | None,
              resume: bool) -> dict[str, Any] | None:
    """The worker's video-mode config: what was asked, else the job's on a resume, else the engine's default."""
    on, weight = temporal.DEFAULTS.get(engine, temporal.BLEND_DEFAULT)
    if asked is None:
        return stored if resume else ({"weight": weight} if on else None)
    if asked is False:
        return None
    return {"weight": weight if asked is True else float(asked)}


def _identity(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings.get(k) or None for k in IDENTITY}


def _check_settings(job: Job, manifest: Manifest, settings: dict[str, Any], restart: bool) -> list[str]:
    stored = manifest.meta("settings")
    done = manifest.counts()[Status.DONE]
    if stored and done and _identity(stored) != _identity(settings):
        if not restart:
            diffs = ", ".join(f"{k}: {stored.get(k)!s:.24} -> {settings.get(k)!s:.24}"
                              for k in ("style", *IDENTITY) if (stored.get(k) or None) != (settings.get(k) or None))
            raise UsageError(f"job {job.name!r} has {done} frames styled with other settings ({diffs}); "
                             "use the same settings, or --restart to discard them")
        problem = preflight(_worker_config(job, manifest, settings), _worker_env())
        if problem:  # keep the old frames: the new settings would not produce any
            raise ModelError(f"--restart: nothing discarded, the new settings do not load: {problem}")
        manifest.reset(None, manifest.frames(Status.DONE) + manifest.frames(Status.FAILED), "restart")
        for path in job.styled_dir.iterdir():
            path.unlink()
        return [f"--restart: discarded {done} styled frames"]
    return []


def stylize(base: Path, name: str | None, options: RunOptions, retry_failed: bool = False) -> RunResult:
    job, note = find_job(base, name)
    if not job.frames_dir.is_dir():
        raise JobError(f"job {job.name!r}: the frames folder {job.frames_dir} is missing; split the video again "
                       "into a new job")
    with JobLock(job):
        manifest = Manifest.open(job.manifest_path)
        try:
            return _stylize_locked(job, manifest, options, retry_failed, [note] if note else [])
        finally:
            manifest.close()


def _stylize_locked(job: Job, manifest: Manifest, options: RunOptions, retry_failed: bool,
                    notes: list[str]) -> RunResult:
    total = manifest.frame_count()
    first, last = options.frames.resolve(total) if options.frames else (1, total)
    settings = _settings(manifest, options)
    notes += _check_settings(job, manifest, settings, options.restart)
    manifest.set_meta("settings", settings)
    run_id = manifest.start_run(" ".join(["vpipe", *sys.argv[1:]]), os.getpid())
    reclaimed = manifest.reclaim(run_id)
    if reclaimed:
        notes.append(f"reclaimed {len(reclaimed)} frames left running by an earlier run that died")
    swept = storage.sweep_tmp(job.styled_dir)
    if swept:
        notes.append(f"removed {swept} partial files left by an earlier run")
    todo = manifest.frames(Status.PENDING, first, last)
    if retry_failed:  # only the frames that failed, not every pending one
        todo = manifest.requeue_failed(run_id, first, last)
        notes.append(f"retrying {len(todo)} failed frames" + (f": {describe_spans(todo)}" if todo else ""))
    started = time.monotonic()
    outcome = Outcome()
    if todo:
        outcome = _run(job, manifest, run_id, settings, todo, options)
    manifest.finish_run(run_id, "finished")
    return RunResult(job, len(todo), outcome, time.monotonic() - started, manifest.counts(), notes)


def _worker_config(job: Job, manifest: Manifest, settings: dict[str, Any]) -> dict[str, Any]:
    """What every worker of a run is told (the executor adds the threads)."""
    engine_options = {**settings.get("params", {}), "batch": 1}
    if settings.get("image"):
        engine_options["style_image"] = settings["image"]
    return {"engine": settings["engine"], "model": settings["model"], "frames_dir": str(job.frames_dir),
            "styled_dir": str(job.styled_dir), "name_width": int(manifest.meta("name_width")),
            "ext": str(manifest.meta("ext")), "max_side": settings.get("max_side"),
            "temporal": settings.get("temporal"), "options": engine_options}


def _worker_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(job: Job, manifest: Manifest, run_id: int, settings: dict[str, Any], todo: list[int],
         options: RunOptions) -> Outcome:
    resources.memory_limit()  # a malformed VPIPE_WORKER_MEMORY is a usage error here, not a worker crash
    width, ext = int(manifest.meta("name_width")), str(manifest.meta("ext"))
    config, env = _worker_config(job, manifest, settings), _worker_env()
    where = executors.Placement(options.executor, options.device, options.workers, options.threads,
                                options.max_memory, options.gpus_per_worker, options.ray_address)
    executor = executors.create(where, config, env, job.worker_logs, job.root)
    workers = executor.size
    size = resources.working_size(*probe.VideoInfo.from_dict(manifest.meta("video")).display_size,
                                  settings.get("max_side"))
    try:
        resources.check_budget(settings["engine"], *size, config["options"]["max_memory"])
    except UsageError:
        executor.shutdown()
        raise
    log = RunLog(job.log_path, len(todo), job.name)
    log.event("run_started", run=run_id, frames=len(todo), workers=workers, threads=config["options"]["threads"],
              max_memory=config["options"]["max_memory"], executor=options.executor, engine=settings["engine"],
              style=settings["style"])

    def file_ok(frame: int) -> bool:
        return (job.styled_dir / frame_name(frame, width, ext)).is_file()

    limits = Limits(max_attempts=options.max_attempts, frame_timeout=options.frame_timeout)
    coordinator = Coordinator(manifest, executor, run_id, limits, log, file_ok)
    try:
        outcome = coordinator.run(plan_chunks(todo, options.chunk))
        log.event("run_finished", run=run_id, done=outcome.done, failed=outcome.failed,
                  attempts_failed=outcome.attempts_failed)
        return outcome
    except VpipeError as exc:
        log.event("run_stopped", run=run_id, reason=str(exc))
        manifest.finish_run(run_id, type(exc).__name__)
        raise
    finally:
        storage.sweep_tmp(job.styled_dir)  # every worker is gone now: what a killed one left is stale
        log.close()


# ---------------------------------------------------------------- assemble


@dataclass(frozen=True)
class AssembleResult:
    job: Job
    output: Path
    frames: int
    filled: int
    audio_streams: int


def assemble(base: Path, name: str | None, output: Path | None, crf: int = 18, fill: str = "fail") -> AssembleResult:
    job, _ = find_job(base, name)
    output = (output or job.root / "output.mp4").absolute()
    if output.suffix.lower() not in video.COPYABLE_AUDIO:
        raise UsageError(f"output {output.name}: use a .mp4, .m4v, .mov or .mkv file name")
    if not output.parent.is_dir():
        raise UsageError(f"output folder {output.parent} does not exist")
    with JobLock(job):
        manifest = Manifest.open(job.manifest_path)
        try:
            info = probe.VideoInfo.from_dict(manifest.meta("video"))
            source = Path(manifest.meta("source"))
            width, ext = int(manifest.meta("name_width")), str(manifest.meta("ext"))
            total = manifest.frame_count()
            done = set(manifest.frames(Status.DONE))
        finally:
            manifest.close()
        missing = [i for i in range(1, total + 1)
                   if i not in done or not (job.styled_dir / frame_name(i, width, ext)).is_file()]
        if missing and fill == "fail":
            raise VpipeError(f"{len(missing)} of {total} frames are not styled yet ({describe_spans(missing)}): "
                             "run `vpipe stylize` / `vpipe retry-failed`, or assemble with --fill original")
        if missing and not job.frames_dir.is_dir():
            raise JobError(f"job {job.name!r}: {len(missing)} frames are not styled and the frames folder "
                           f"{job.frames_dir} to fill them from is missing")
        if info.audio and not source.is_file():
            raise MediaError(f"the source video {source} is gone, and its audio with it: put it back to assemble")
        sequence = _link_sequence(job, total, width, ext, set(missing))
        partial = output.with_name(f".{output.stem}.partial{output.suffix}")
        try:
            args = video.assemble_args(video.tools().ffmpeg, sequence / frame_pattern(width, ext), info,
                                       source, partial, crf)
            video.run(args, "encoding the output video")
            encoded = video.count_frames(partial)
            if encoded != total:
                raise MediaError(f"the encoded video has {encoded} frames, expected {total}")
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
            shutil.rmtree(sequence, ignore_errors=True)
    return AssembleResult(job, output, total, len(missing), len(info.audio))


def _link_sequence(job: Job, total: int, width: int, ext: str, from_source: set[int]) -> Path:
    """A gapless 1..N sequence of links to styled frames (or source frames filling the gaps)."""
    sequence = job.root / ".assemble"
    shutil.rmtree(sequence, ignore_errors=True)
    sequence.mkdir()
    for i in range(1, total + 1):
        name = frame_name(i, width, ext)
        target = (job.frames_dir if i in from_source else job.styled_dir) / name
        (sequence / name).symlink_to(target.absolute())
    return sequence
