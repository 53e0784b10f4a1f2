"""`vpipe status`: counts, failures, throughput and ETA of a job; read-only, safe while a run is going."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import disk
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
    disk: dict[str, int]  # bytes the job's frames and styled frames take


def status(base: Path, name: str | None) -> StatusReport:
    """Read-only: safe while a run is going (the manifest is in WAL mode)."""
    job, note = find_job(base, name)
    with Manifest.open(job.manifest_path) as manifest:
        counts = manifest.counts()
        failures = manifest.records(Status.FAILED)
        basis = manifest.throughput()
        rate = basis[0] / basis[1] if basis else None
        left = counts[Status.PENDING] + counts[Status.RUNNING]
        eta = left / rate if rate and left else None
        use = {"frames": disk.usage(job.frames_dir), "styled": disk.usage(job.styled_dir)}
        return StatusReport(job, counts, failures, rate, eta, manifest.meta("settings"), note, lock_holder(job), use)
