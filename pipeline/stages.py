"""split / stylize / retry-failed / assemble / status: the one module where the parts meet."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import disk, executors, export, faults, probe, resources, storage, video
from . import output as output_files
from .coordinator import Coordinator, Limits, Outcome
from .errors import JobError, MediaError, ModelError, UsageError, VpipeError
from .executors.local import preflight
from .frames import count_sequence, describe_spans, frame_name, frame_pattern, name_width, plan_chunks
from .job import Job, JobLock, JobMeta, check_name, find_job, name_from_path, remember_last
from .logs import RunLog
from .manifest import Manifest, Status
from .models import catalogue
from .settings import RunOptions, differences, identity, resolve, worker_config, worker_env

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
    _make_jobs_dir(base)
    with JobLock(job, create=True) as lock:  # before deciding anything: two splits into one name never both win
        try:
            result = _split_locked(source, job, fmt)
        except BaseException:
            if lock.created:  # leave no empty job folder behind a split that failed
                _remove_job_folder(job)
            raise
    if not result.already:
        remember_last(base, job.name)
    return result


def _split_locked(source: Path, job: Job, fmt: str) -> SplitResult:
    source_hash = storage.file_digest(source)
    if job.exists():
        with Manifest.open(job.manifest_path) as manifest:
            meta = manifest.job_meta()
            if meta.source_sha256 != source_hash:
                raise UsageError(f"job {job.name!r} already holds another video ({meta.source}); "
                                 "choose another --job")
            if not job.frames_dir.is_dir():
                raise JobError(f"job {job.name!r}: its frames folder {job.frames_dir} was deleted; "
                               "split the video into a new job")
            return SplitResult(job, manifest.frame_count(), meta.video, already=True)
    faults.pause("split_decided")
    info, timing_notes = video.timing(source, video.probe(source))
    _check_split_space(source, job.root.parent, info, fmt)
    try:
        count, width, notes = _decode_frames(source, job, info, fmt)
        notes = timing_notes + notes
    except BaseException:  # no half frame set left behind, and its space is freed (disk full)
        with contextlib.suppress(JobError):
            storage.remove_own_folder(job.partial_frames_dir)
        raise
    job.styled_dir.mkdir(exist_ok=True)
    meta = JobMeta(info, source.resolve(), source_hash, width, fmt)
    Manifest.create(job.manifest_path, count, {**meta.record(), "created": time.time(), "notes": list(notes)})
    return SplitResult(job, count, info, notes=tuple(notes))


def _remove_job_folder(job: Job) -> None:
    """Undo a failed split's new job folder: only what vpipe wrote in it, and the folder if it is then empty."""
    for folder in (job.partial_frames_dir, job.frames_dir, job.styled_dir):
        with contextlib.suppress(JobError):
            storage.remove_own_folder(folder)
    storage.remove_own(job.lock_path)
    with contextlib.suppress(OSError):
        job.root.rmdir()


def _check_split_space(source: Path, base: Path, info: probe.VideoInfo, fmt: str) -> None:
    """Refuse up front, with the figures, a split whose frames would not fit (measured on 3 frames)."""
    if not info.duration:
        return
    count = info.frame_count or int(info.duration * float(probe.rational(info.rate) or 30)) + 1
    if disk.surely_fits(base, count, info.display_size, fmt):
        return
    try:
        samples = video.frames_at(source, [info.duration * k / 4 for k in (1, 2, 3)], max(info.display_size))
    except MediaError:
        return  # a source that will not seek is left to the decode, which says what is wrong
    each = disk.per_frame(samples, fmt)
    hint = f", or split with --format jpg (about {disk.human(disk.per_frame(samples, 'jpg'))} a frame)" \
        if fmt == "png" else ""
    disk.check(base, count, each, f"splitting {source.name}", hint)


def _decode_frames(source: Path, job: Job, info: probe.VideoInfo, fmt: str) -> tuple[int, int, list[str]]:
    """Decode into frames.partial/, check the count, then rename: never a half frame set named frames/."""
    partial = job.partial_frames_dir
    storage.remove_own_folder(partial)  # left by a split that died
    partial.mkdir()
    rate = probe.rational(info.rate)
    estimate = info.frame_count or int((info.duration or 0) * float(rate or 30)) + 1
    width = name_width(estimate * 2)
    notes = []
    args = video.split_args(video.tools().ffmpeg, source, partial / frame_pattern(width, fmt), fmt)
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
    storage.remove_own_folder(job.frames_dir)  # left by a split that died before writing the manifest
    partial.replace(job.frames_dir)
    storage.fsync_path(job.root)
    return count, width, notes


# ---------------------------------------------------------------- stylize and retry-failed


@dataclass
class RunResult:
    job: Job
    todo: int
    outcome: Outcome
    seconds: float
    counts: dict[Status, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _check_styled_space(job: Job, meta: JobMeta, settings: dict[str, Any], todo: list[int]) -> None:
    """Refuse up front, with the figures, a run whose styled frames would not fit (3 frames re-encoded)."""
    ext = storage.styled_ext(settings, meta.ext)
    if disk.surely_fits(job.styled_dir, len(todo), meta.video.display_size, ext):
        return
    files = job.files(meta, settings)
    picks = [todo[0], todo[len(todo) // 2], todo[-1]]
    try:
        samples = [storage.read_rgb(files.source(i)) for i in picks]
    except (OSError, ValueError):
        return  # a damaged source frame fails its own frame, not the run
    each = disk.per_frame(samples, ext, settings.get("quality")) * disk.STYLED_GROWTH
    done = [p.stat().st_size for p in itertools.islice(job.styled_dir.glob(f"*.{ext}"), 200)]
    if done:  # this job's own styled frames say best what the next ones take
        each = max(each / disk.STYLED_GROWTH, float(sum(done)) / len(done))
    hint = "" if ext != "png" else \
        f", or stylize with --format jpg (about {disk.human(disk.per_frame(samples, 'jpg'))} a frame)"
    disk.check(job.styled_dir, len(todo), each, f"stylizing {len(todo)} frames", hint)


def _licence_notes(settings: dict[str, Any]) -> list[str]:
    """One line when the model's licence rules out commercial work (said at its first use in a job)."""
    entry = catalogue.holding(Path(str(settings.get("model") or "")))
    return [f"model {entry.name}: {catalogue.licence_line(entry)}"] if entry and not entry.commercial_use else []


def _check_settings(job: Job, manifest: Manifest, settings: dict[str, Any], restart: bool,
                    timeout: float) -> list[str]:
    stored = manifest.meta("settings")
    done = manifest.counts()[Status.DONE]
    if stored and done and identity(stored) != identity(settings):
        if not restart:
            raise UsageError(f"job {job.name!r} has {done} frames styled with other settings "
                             f"({differences(stored, settings)}); "
                             "use the same settings, or --restart to discard them")
        problem = preflight(worker_config(job, manifest.job_meta(), settings), worker_env(), timeout)
        if problem:  # keep the old frames: the new settings would not produce any
            raise ModelError(f"--restart: nothing discarded, the new settings do not load: {problem}")
        manifest.reset(None, manifest.frames(Status.DONE) + manifest.frames(Status.FAILED), "restart")
        meta = manifest.job_meta()
        ours = {frame_name(i, meta.name_width, ext) for i in range(1, manifest.frame_count() + 1)
                for ext in storage.FORMATS}
        for path in storage.own_frames(job.styled_dir):  # the job's frame files only, never a file of yours
            if path.name in ours:
                path.unlink()
        return [f"--restart: discarded {done} styled frames"]
    return []


def stylize(base: Path, name: str | None, options: RunOptions, retry_failed: bool = False) -> RunResult:
    job, note = find_job(base, name)
    with JobLock(job):
        if not job.frames_dir.is_dir():
            raise JobError(f"job {job.name!r}: the frames folder {job.frames_dir} is missing; split the video again "
                           "into a new job")
        with Manifest.open(job.manifest_path) as manifest:
            return _stylize_locked(job, manifest, options, retry_failed, [note] if note else [])


def _stylize_locked(job: Job, manifest: Manifest, options: RunOptions, retry_failed: bool,
                    notes: list[str]) -> RunResult:
    total = manifest.frame_count()
    first, last = options.frames.resolve(total) if options.frames else (1, total)
    settings = resolve(manifest, options)
    notes += _check_settings(job, manifest, settings, options.restart, options.load_timeout)
    if identity(manifest.meta("settings") or {}) != identity(settings):  # the job's first run with this model
        notes += _licence_notes(settings)
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
        if todo:
            notes.append(f"retrying {len(todo)} failed frames: {describe_spans(todo)}")
    if todo:
        _check_styled_space(job, manifest.job_meta(), settings, todo)
    started = time.monotonic()
    outcome = Outcome()
    if todo:
        outcome = _run(job, manifest, run_id, settings, todo, options)
    manifest.finish_run(run_id, "finished")
    return RunResult(job, len(todo), outcome, time.monotonic() - started, manifest.counts(), notes)


def _run(job: Job, manifest: Manifest, run_id: int, settings: dict[str, Any], todo: list[int],
         options: RunOptions) -> Outcome:
    resources.memory_limit()  # a malformed VPIPE_WORKER_MEMORY is a usage error here, not a worker crash
    meta = manifest.job_meta()
    config, env = worker_config(job, meta, settings), worker_env()
    where = executors.Placement(options.executor, options.device, options.workers, options.threads,
                                options.max_memory, options.gpus_per_worker, options.ray_address)
    executor = executors.create(where, config, env, job.worker_logs, job.root)
    plan = executor.plan
    workers = plan.workers
    size = resources.working_size(*meta.video.display_size, settings.get("max_side"))
    try:
        resources.check_budget(settings["engine"], *size, plan.max_memory)
        chunks = plan_chunks(todo, options.chunk, workers)
        executor.start(len(chunks))  # one worker per chunk, at most one per slot: they load while the log opens
        log = RunLog(job.log_path, len(todo), job.name)  # a link planted in its place stops the run here
    except BaseException:
        executor.shutdown()
        raise
    log.event("run_started", run=run_id, frames=len(todo), workers=workers, threads=plan.threads,
              io_threads=plan.io_threads, batch=plan.batch, max_memory=plan.max_memory, executor=options.executor,
              engine=settings["engine"], style=settings["style"])

    files = job.files(meta, settings)

    def file_ok(frame: int) -> bool:
        return files.styled(frame).is_file()

    limits = Limits(options.max_attempts, options.frame_timeout, options.load_timeout)
    coordinator = Coordinator(manifest, executor, run_id, limits, log, file_ok)
    try:
        outcome = coordinator.run(chunks)
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
    output: Path | None  # None: --frames-out only
    frames: int
    filled: int
    audio_streams: int
    subtitle_streams: int = 0
    chapters: int = 0
    codec: str = "h264"
    frames_out: Path | None = None
    notes: tuple[str, ...] = ()


def assemble(base: Path, name: str | None, output: Path | None, crf: int = 18, fill: str = "fail",
             codec: str | None = None, frames_out: Path | None = None, force: bool = False) -> AssembleResult:
    """Encode the styled frames (with the source's audio, subtitles, chapters and tags), and/or write
    them as an image sequence (--frames-out: instead of the video, or besides it when -o is given)."""
    job, _ = find_job(base, name)
    if frames_out is not None and output is None and codec is not None:
        raise UsageError("--codec is for a video: give -o FILE as well to write one besides --frames-out")
    codec = codec or "h264"
    default = job.root.absolute() / f"output{video.CODEC_SUFFIX[codec]}"
    if frames_out is None or output is not None:
        output = (output or default).absolute()
        if output.suffix.lower() not in video.COPYABLE_AUDIO:
            raise UsageError(f"output {output.name}: use a .mp4, .m4v, .mov or .mkv file name")
        video.check_codec(codec, output.suffix.lower())
        if not output.parent.is_dir():
            raise UsageError(f"output folder {output.parent} does not exist")
    with JobLock(job):
        with Manifest.open(job.manifest_path) as manifest:
            meta = manifest.job_meta()
            settings = manifest.meta("settings") or {}
            total = manifest.frame_count()
            done = set(manifest.frames(Status.DONE))
        info, source = meta.video, meta.source
        width, frames_ext = meta.name_width, meta.ext
        files = job.files(meta, settings)
        ext = storage.styled_ext(settings, frames_ext)
        if output is not None:  # the job's own output.EXT is replaced freely: vpipe wrote it
            output = output_files.check(output, "-o", _reads(job, source), force or output == default)
        if frames_out is not None:
            frames_out = export.check_frames_out(frames_out, job, source, force)
            if output is not None and frames_out in output.parents:
                raise UsageError(f"the output video {output} would be inside --frames-out {frames_out}")
        missing = [i for i in range(1, total + 1) if i not in done or not files.styled(i).is_file()]
        if missing and fill == "fail":
            raise VpipeError(f"{len(missing)} of {total} frames are not styled yet ({describe_spans(missing)}): "
                             "run `vpipe stylize` / `vpipe retry-failed`, or assemble with --fill original")
        if missing and not job.frames_dir.is_dir():
            raise JobError(f"job {job.name!r}: {len(missing)} frames are not styled and the frames folder "
                           f"{job.frames_dir} to fill them from is missing")
        unusable = [i for i in missing if not _usable(files.source(i))]
        if unusable:
            raise MediaError(f"--fill original: {len(unusable)} of the {len(missing)} frames to fill have no usable "
                             f"source frame in {job.frames_dir} (missing or not an image): {describe_spans(unusable)}; "
                             "nothing was written")
        notes: list[str] = []
        if output is not None:
            info, notes = _kept_from_source(info, source, output)
        sequence = export.link_sequence(job, total, width, ext, frames_ext, set(missing), settings.get("quality"))
        try:
            if output is not None:
                _encode(sequence, width, ext, info, source, output, crf, codec, total)
            if frames_out is not None:
                export.write_frames(sequence, [frame_name(i, width, ext) for i in range(1, total + 1)], frames_out)
        finally:
            shutil.rmtree(sequence, ignore_errors=True)
    kept = len(info.subtitles) - len(video.left_out_subtitles(info.subtitles, output.suffix.lower())) if output else 0
    return AssembleResult(job, output, total, len(missing), len(info.audio) if output else 0, kept,
                          info.chapters if output else 0, codec, frames_out, tuple(notes))


def _reads(job: Job, source: Path) -> dict[Path, str]:
    """What assemble reads, so never a place it writes to."""
    return {source: "the job's source video", job.frames_dir: "the job's frames folder",
            job.styled_dir: "the job's styled folder", job.manifest_path: "the job's manifest"}


def _usable(path: Path) -> bool:
    """Whether a source frame can fill a gap: a file whose header is an image's (not decoded: cheap)."""
    try:
        with path.open("rb") as handle:
            return storage.image_size(handle.read(1 << 16)) is not None
    except OSError:
        return False


def _kept_from_source(info: probe.VideoInfo, source: Path, output: Path) -> tuple[probe.VideoInfo, list[str]]:
    """What the output can still take from the source, and a note for each thing it cannot."""
    notes = video.left_out_subtitles(info.subtitles, output.suffix.lower())
    if not source.is_file():
        if info.audio or info.subtitles:
            lost = "audio" if info.audio else "subtitles"
            raise MediaError(f"the source video {source} is gone, and its {lost} with it: put it back to assemble")
        if info.chapters:
            notes.append(f"the source video {source} is gone: its {info.chapters} chapters are not kept")
            info = replace(info, chapters=0)
    return info, notes


def _encode(sequence: Path, width: int, ext: str, info: probe.VideoInfo, source: Path, output: Path,
            crf: int, codec: str, total: int) -> None:
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:
        depth = storage.bit_depth(sequence / frame_name(1, width, ext)) if codec == "ffv1" else 8
        args = video.assemble_args(video.tools().ffmpeg, sequence / frame_pattern(width, ext), info,
                                   source, partial, crf, codec, depth)
        video.run(args, "encoding the output video")
        encoded = video.count_frames(partial)
        if encoded != total:
            raise MediaError(f"the encoded video has {encoded} frames, expected {total}")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
