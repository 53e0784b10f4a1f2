"""`make bench`: how fast a worker's frame I/O can feed a network (issue 16), with no network in the way.

Engines (bench/io_engines.py): `free` returns its input, so `vpipe stylize` runs at its I/O ceiling
(decode, encode, hash, fsync, rename, the manifest); `accelerator` is a simulated GPU at 10 ms a frame
that releases the GIL. Each configuration runs the real CLI on real frames (the bench clip at
640x360, and scaled to 1920x1080), with the worker's I/O pool off (VPIPE_IO_THREADS=0: decode one frame
ahead, write in the worker's loop, as before) and on (the plan's size for a worker whose network is
not on the CPU: the cores shared among the workers). frames/s count from the first frame's start to
the last one's commit (the manifest's times), so worker start-up is left out. Rounds alternate the
configurations; the figures are each one's median, the ratios taken between them (the machine is
shared: compare ratios, not absolute rates).
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
CLIP = Path(os.environ.get("BENCH_VIDEO", ASSETS / "video/slow_traffic_small.mp4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
FRAMES = {"640x360": int(os.environ.get("BENCH_IO_FRAMES", "240")), "1920x1080": int(os.environ.get("BENCH_IO_FRAMES_HD", "90"))}
sys.path.insert(0, str(ROOT))

from pipeline import video  # noqa: E402


@dataclass(frozen=True)
class Config:
    engine: str
    size: str
    workers: int
    io_threads: int

    def __str__(self) -> str:
        pool = f"pool {self.io_threads}" if self.io_threads else "pool off"
        return f"{self.engine:<11} {self.size:<9} {self.workers} worker{'s' if self.workers > 1 else ' '} {pool}"


def prepare(work: Path, env: dict[str, str], cores: int) -> dict[str, Path]:
    """One split job per size; each run stylizes a fresh copy (frames hard-linked, a pristine manifest)."""
    ff = video.tools().ffmpeg
    templates = {}
    for size, frames in FRAMES.items():
        clip = work / f"clip-{size}.mp4"
        w, h = size.split("x")
        subprocess.run([ff, "-nostdin", "-v", "error", "-y", "-i", str(CLIP), "-frames:v", str(frames), "-an",
                        "-vf", f"scale={w}:{h}", "-c:v", "libx264", "-crf", "18", str(clip)], check=True)
        subprocess.run([sys.executable, "-m", "pipeline.cli", "split", str(clip), "--job", f"t{size}"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        templates[size] = work / "jobs" / f"t{size}"
    return templates


def fresh_job(template: Path, name: str) -> Path:
    job = template.parent / name
    if job.exists():
        shutil.rmtree(job)
    shutil.copytree(template, job, copy_function=os.link, ignore=shutil.ignore_patterns("manifest.sqlite*"))
    shutil.copy2(template / "manifest.sqlite", job / "manifest.sqlite")
    return job


def frames_per_second(job: Path) -> float:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        count, first, last = conn.execute("SELECT COUNT(*), MIN(started_at), MAX(finished_at) FROM frames "
                                          "WHERE status='done'").fetchone()
    return float(count) / (float(last) - float(first))


def run(config: Config, template: Path, env: dict[str, str], model: Path) -> tuple[float, float]:
    """(frames/s, CPU ms per frame of the whole command: coordinator and workers, start-up included)."""
    job = fresh_job(template, "run")
    env = {**env, "VPIPE_IO_THREADS": str(config.io_threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "pipeline.cli", "stylize", "--job", "run", "--engine", config.engine,
                    "--style", str(model), "--workers", str(config.workers)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return frames_per_second(job), 1000 * cpu / FRAMES[config.size]


def main() -> int:
    if not CLIP.is_file():
        print(f"bench_io: needs {CLIP} (the ../shared/assets folder, or BENCH_VIDEO)")
        return 1
    cores = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="vpipe-bench-io-"))
    env = {**os.environ, "VPIPE_JOBS_DIR": str(work / "jobs"), "CUDA_VISIBLE_DEVICES": "-1",
           "VPIPE_ENGINES": "free=io_engines:free,accelerator=io_engines:accelerator",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)])}
    env.pop("VPIPE_FAULTS", None)
    model = work / "model.bin"
    model.write_bytes(b"no weights")
    try:
        templates = prepare(work, env, cores)
        # the pool's size for a worker whose network is not on the CPU: the cores shared among the workers
        configs = [Config("free", size, workers, pool)
                   for size in FRAMES for workers in (1, 2) for pool in (0, max(1, cores // workers))]
        configs += [Config("accelerator", "640x360", 1, pool) for pool in (0, cores)]
        rates: dict[Config, list[float]] = {c: [] for c in configs}
        cpu: dict[Config, list[float]] = {c: [] for c in configs}
        started = time.monotonic()
        for _ in range(ROUNDS):
            for config in configs:
                rate, ms = run(config, templates[config.size], env, model)
                rates[config].append(rate)
                cpu[config].append(ms)
        fps = {c: statistics.median(r) for c, r in rates.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"bench_io: {cores} cores, {ROUNDS} alternating rounds in {time.monotonic() - started:.0f} s; "
          f"frames {FRAMES}; median frames/s (each round's), CPU ms per frame (median)")
    for config in configs:
        print(f"  {config!s:<44} {fps[config]:7.1f}   ({', '.join(f'{r:.1f}' for r in rates[config])})   "
              f"cpu {statistics.median(cpu[config]):6.1f} ms")

    def free(size: str, workers: int, pooled: bool) -> float:
        return fps[Config("free", size, workers, max(1, cores // workers) if pooled else 0)]

    for size in FRAMES:
        print(f"  free {size}: pool on/off, 1 worker {free(size, 1, True) / free(size, 1, False):.2f}x, "
              f"2 workers {free(size, 2, True) / free(size, 2, False):.2f}x")
    ceiling = max(free("640x360", 2, False), free("640x360", 2, True))
    goal = min(100.0, ceiling)
    accel_on, accel_off = fps[Config("accelerator", "640x360", 1, cores)], fps[Config("accelerator", "640x360", 1, 0)]
    verdict = "ok" if accel_on >= 0.9 * goal else "MISSED"
    print(f"target: simulated 10 ms accelerator, 1 worker at 640x360: {accel_on:.1f} frames/s = "
          f"{accel_on / goal:.2f}x min(100, I/O ceiling of 2 workers {ceiling:.1f}) (>= 0.9) {verdict}; "
          f"pool off {accel_off:.1f} = {accel_off / goal:.2f}x")
    one, two = free("1920x1080", 1, True), free("1920x1080", 2, False)
    verdict = "ok" if one >= 0.9 * two else "MISSED"
    print(f"target: free engine at 1920x1080, 1 worker on {cores} cores (pool {cores}) {one:.1f} frames/s = "
          f"{one / two:.2f}x 2 workers (pool off) {two:.1f} (>= 0.9) {verdict}; 1 worker pool off "
          f"{free('1920x1080', 1, False) / two:.2f}x; against 2 workers with their pools "
          f"{one / free('1920x1080', 2, True):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
