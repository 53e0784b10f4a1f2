"""`vpipe status` (read-only, safe while a run is going) and `vpipe doctor` (what vpipe would use here)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import styles, video
from .errors import VpipeError
from .job import Job, find_job, lock_holder
from .manifest import Manifest, Status


@dataclass(frozen=True)
class StatusReport:
    job: Job
    counts: dict[Status, int]
    failures: list[Any]
    rate: float | None  # frames per second of the latest run
    eta: float | None
    settings: dict[str, Any] | None
    note: str | None
    holder: int | None  # pid of the run going on now, if any


def status(base: Path, name: str | None) -> StatusReport:
    """Read-only: safe while a run is going (the manifest is in WAL mode)."""
    job, note = find_job(base, name)
    manifest = Manifest.open(job.manifest_path)
    try:
        counts = manifest.counts()
        failures = manifest.records(Status.FAILED)
        basis = manifest.throughput()
        rate = basis[0] / basis[1] if basis else None
        left = counts[Status.PENDING] + counts[Status.RUNNING]
        eta = left / rate if rate and left else None
        return StatusReport(job, counts, failures, rate, eta, manifest.meta("settings"), note, lock_holder(job))
    finally:
        manifest.close()


# ---------------------------------------------------------------- doctor


def doctor() -> list[tuple[str, str]]:
    """What vpipe would use here. TensorFlow is asked in a child process, as workers would."""
    rows: list[tuple[str, str]] = []
    try:
        tools = video.tools()
        version = video.run([tools.ffmpeg, "-version"], "ffmpeg -version").stdout.splitlines()[0]
        rows += [("ffmpeg", f"{tools.ffmpeg} ({tools.origin}; {version})"),
                 ("ffprobe", tools.ffprobe or "none (probing parses ffmpeg's stream listing)")]
    except VpipeError as exc:
        rows.append(("ffmpeg", f"MISSING: {exc}"))
    probe = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow as tf; "
             "print(tf.__version__); print(', '.join(d.device_type + ':' + d.name.split(':')[-1] "
             "for d in tf.config.list_physical_devices()))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        version, devices = (done.stdout.strip().splitlines() + ["", ""])[:2]
        rows += [("tensorflow", version), ("devices", devices)]
    else:
        rows.append(("tensorflow", f"MISSING: {(done.stderr.strip().splitlines() or ['?'])[-1]}"))
    rows.append(("model search path", " then ".join(str(p) for p in styles.models.search_path())))
    rows.append(("styles", f"{styles.styles_dir()} ({', '.join(styles.available()) or 'none'})"))
    rows.append(("cpu cores", str(os.cpu_count())))
    return rows
