"""`vpipe verify`: every `done` frame has its file, which decodes, has the job's frame size and the
hash the worker recorded. With --fix, bad frames go back to pending (an event row says why) and
their files are removed, so the next `vpipe stylize` makes them again.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import storage
from .job import Job, JobLock, find_job
from .manifest import Manifest


@dataclass(frozen=True)
class BadFrame:
    idx: int
    name: str
    problem: str


@dataclass(frozen=True)
class VerifyReport:
    job: Job
    checked: int
    bad: list[BadFrame]
    fixed: bool
    stale_tmp: int  # tmp files left by writers that died (removed with --fix)
    note: str | None = None


def check_data(data: bytes, size: tuple[int, int], expected_hash: str | None) -> str | None:
    """What is wrong with one styled frame's bytes, or None when they are good.

    `size` is (width, height). The hash is the strong check (a truncated JPEG still decodes);
    decoding and size say what kind of damage it is.
    """
    if not data:
        return "empty file"
    declared = storage.image_size(data)  # read before decoding: a file declaring gigapixels is never decoded
    if declared is not None and declared != size:
        return f"is {declared[0]}x{declared[1]}, the job's frames are {size[0]}x{size[1]}"
    if declared is None or cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) is None:
        return "does not decode (truncated or garbled)"
    if expected_hash and storage.digest(data) != expected_hash:
        return "content differs from the recorded hash (truncated or garbled)"
    return None


def check_file(path: Path, size: tuple[int, int], expected_hash: str | None) -> str | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "file missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return check_data(data, size, expected_hash)


def verify(base: Path, name: str | None, fix: bool = False) -> VerifyReport:
    """Check every done frame; --fix takes the job lock (it writes), plain verify only reads."""
    job, note = find_job(base, name)
    with JobLock(job) if fix else contextlib.nullcontext():
        with Manifest.open(job.manifest_path) as manifest:
            return _verify(job, manifest, fix, note)


def _verify(job: Job, manifest: Manifest, fix: bool, note: str | None) -> VerifyReport:
    meta = manifest.job_meta()
    files, size = job.files(meta, manifest.meta("settings")), meta.video.display_size
    hashes = manifest.done_hashes()
    quiet = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # bad files are reported here
    try:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # decoding releases the GIL
            problems = pool.map(lambda i: check_file(files.styled(i), size, hashes[i]), sorted(hashes))
            bad = [BadFrame(idx, files.name(idx), p) for idx, p in zip(sorted(hashes), problems, strict=True) if p]
    finally:
        cv2.utils.logging.setLogLevel(quiet)
    stale = len(storage.tmp_files(job.styled_dir))
    if fix:
        by_problem: dict[str, list[int]] = defaultdict(list)
        for frame in bad:
            by_problem[frame.problem].append(frame.idx)
        for problem, frames in by_problem.items():
            manifest.reset(None, frames, f"verify: {problem}")
        for frame in bad:  # after the manifest says pending: a crash in between leaves no bad `done`
            storage.remove_own(files.styled(frame.idx))  # a link there is left alone
        storage.sweep_tmp(job.styled_dir)
    return VerifyReport(job, len(hashes), bad, fix, stale, note)


def report_lines(report: VerifyReport, limit: int = 50) -> list[str]:
    """What `vpipe verify` prints."""
    lines = [f"note: {report.note}"] if report.note else []
    good = report.checked - len(report.bad)
    lines.append(f"job {report.job.name}: {report.checked} done frames checked: {good} good, {len(report.bad)} bad")
    for frame in report.bad[:limit]:
        lines.append(f"  {frame.idx:>7}  {frame.name}  {frame.problem}")
    if len(report.bad) > limit:
        lines.append(f"  ... and {len(report.bad) - limit} more")
    if report.stale_tmp:
        lines.append(f"{report.stale_tmp} stale tmp files from writers that died"
                     + (" removed" if report.fixed else " (the next run or `vpipe verify --fix` removes them)"))
    if report.bad and report.fixed:
        lines.append(f"put {len(report.bad)} frames back to pending and removed their files: "
                     "run `vpipe stylize` to make them again")
    elif report.bad:
        lines.append("run `vpipe verify --fix` to put them back to pending, then `vpipe stylize`")
    return lines
