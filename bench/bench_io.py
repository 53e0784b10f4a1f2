"""`make bench`: how fast a worker's frame I/O can feed a network (issue 16), with no network in the way.

Engines (bench/io_engines.py): `free` returns its input, so a worker runs at its I/O ceiling (decode,
encode, hash, fsync, rename, its protocol lines); `accelerator` is a simulated GPU at 10 ms a frame that
releases the GIL. Frames are real (the bench clip at 640x360, and scaled to 1920x1080, split by
`vpipe split`); each configuration runs with the worker's I/O pool off (VPIPE_IO_THREADS=0: one frame
decoded ahead, each written in the worker's loop, as before) and on (the plan's size for a worker whose
network is not on the CPU: the cores shared among the workers).

Workers: real `python -m pipeline.worker` processes fed over the real protocol, timed from their chunks
sent to their last `chunk_end` (start-up left out). They run in this bench's session: `vpipe stylize`
starts each worker in a session of its own, and with the kernel's autogroup scheduling a busy machine
gives each session an equal share, so 2 workers would get twice the CPU of 1 worker with 2 threads. End
to end: `vpipe stylize` itself (coordinator and manifest included), 1 worker, pool off against on,
frames/s from the first frame's start to the last one's commit (the manifest's times).

Rounds alternate the configurations; ratios are taken within each round and their median reported
(the machine is shared: compare ratios, not absolute rates).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
CLIP = Path(os.environ.get("BENCH_VIDEO", ASSETS / "video/slow_traffic_small.mp4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
FRAMES = {"640x360": int(os.environ.get("BENCH_IO_FRAMES", "240")), "1920x1080": int(os.environ.get("BENCH_IO_FRAMES_HD", "90"))}
sys.path.insert(0, str(ROOT))

from pipeline import resources, video  # noqa: E402
from pipeline.executors.protocol import Kind, WorkerConfig, decode_event, encode_chunk, encode_config  # noqa: E402


@dataclass(frozen=True)
class Config:
    engine: str
    size: str
    workers: int
    io_threads: int
    cli: bool = False  # through `vpipe stylize`, else the workers alone

    def __str__(self) -> str:
        pool = f"pool {self.io_threads}" if self.io_threads else "pool off"
        how = "vpipe stylize" if self.cli else "workers"
        return (f"{how:<13} {self.engine:<11} {self.size:<9} {self.workers} worker{'s' if self.workers > 1 else ' '} "
                f"{pool}")


def prepare(work: Path, env: dict[str, str]) -> dict[str, Path]:
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


def through_cli(config: Config, template: Path, env: dict[str, str], model: Path) -> float:
    job = fresh_job(template, "run")
    subprocess.run([sys.executable, "-m", "pipeline.cli", "stylize", "--job", "run", "--engine", config.engine,
                    "--style", str(model), "--workers", str(config.workers)],
                   env={**env, "VPIPE_IO_THREADS": str(config.io_threads)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return frames_per_second(job)


def through_workers(config: Config, template: Path, env: dict[str, str], model: Path) -> float:
    styled = template.parent / "styled-run"
    shutil.rmtree(styled, ignore_errors=True)
    styled.mkdir()
    worker = WorkerConfig(engine=config.engine, model=str(model), frames_dir=str(template / "frames"),
                          styled_dir=str(styled), name_width=6, ext="png", io_threads=config.io_threads)
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline.worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(config.workers)]
    total = FRAMES[config.size] // config.workers * config.workers
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(encode_config(worker))
            proc.stdin.flush()
        for proc in procs:
            until(proc, Kind.READY)
        started = time.monotonic()
        share = total // config.workers
        for k, proc in enumerate(procs):
            assert proc.stdin is not None
            proc.stdin.write(encode_chunk(list(range(1 + k * share, 1 + (k + 1) * share))))
            proc.stdin.flush()
        done = sum(until(proc, Kind.CHUNK_END) for proc in procs)
        seconds = time.monotonic() - started
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert done == total, f"{done} of {total} frames done"
    return total / seconds


def until(proc: subprocess.Popen[str], kind: Kind) -> int:
    """Read a worker's events up to `kind`; returns how many frames it reported done on the way."""
    assert proc.stdout is not None
    done = 0
    for line in proc.stdout:
        event = decode_event(line, 0)
        if event is None:
            continue
        if event.kind in (Kind.FATAL, Kind.FAILED):
            raise RuntimeError(f"worker: {event.data}")
        done += event.kind == Kind.DONE
        if event.kind == kind:
            return done
    raise RuntimeError(f"the worker exited before {kind}")


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
    env.pop("VPIPE_BATCH", None)
    model = work / "model.bin"
    model.write_bytes(b"no weights")

    def pool(workers: int) -> int:  # the plan's I/O threads for a worker whose network is not on the CPU
        return resources.plan_io(cores, workers, 0)

    # pairs compared within a round run next to each other
    configs = [Config("free", "640x360", 2, 0), Config("free", "640x360", 2, pool(2)),
               Config("accelerator", "640x360", 1, 0), Config("accelerator", "640x360", 1, pool(1)),
               Config("free", "640x360", 1, 0), Config("free", "640x360", 1, pool(1)),
               Config("free", "1920x1080", 2, 0), Config("free", "1920x1080", 1, pool(1)),
               Config("free", "1920x1080", 1, 0), Config("free", "1920x1080", 2, pool(2)),
               Config("accelerator", "640x360", 1, 0, cli=True), Config("accelerator", "640x360", 1, pool(1), cli=True)]
    rates: dict[Config, list[float]] = {c: [] for c in configs}
    try:
        templates = prepare(work, env)
        started = time.monotonic()
        for _ in range(ROUNDS):
            for config in configs:
                measure = through_cli if config.cli else through_workers
                rates[config].append(measure(config, templates[config.size], env, model))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"bench_io: {cores} cores ({os.getloadavg()[0]:.1f} load), {ROUNDS} alternating rounds in "
          f"{time.monotonic() - started:.0f} s; frames {FRAMES}; frames/s: median (each round's)")
    for config in configs:
        print(f"  {config!s:<58} {statistics.median(rates[config]):6.1f}  "
              f"({', '.join(f'{r:.1f}' for r in rates[config])})")

    def ratio(name: str, of: Callable[[dict[Config, float]], float], goal: float | None = None) -> None:
        each = [of({c: r[i] for c, r in rates.items()}) for i in range(ROUNDS)]
        middle = statistics.median(each)
        verdict = "" if goal is None else f" (target >= {goal}) {'ok' if middle >= goal else 'MISSED'}"
        print(f"  {name}: {middle:.2f}x ({', '.join(f'{r:.2f}' for r in each)}){verdict}")

    def free(size: str, workers: int, pooled: bool) -> Config:
        return Config("free", size, workers, pool(workers) if pooled else 0)

    accel_on, accel_off = Config("accelerator", "640x360", 1, pool(1)), Config("accelerator", "640x360", 1, 0)
    print("ratios (median of the rounds' own):")
    ratio("10 ms accelerator, 1 worker at 640x360, pool on vs min(100, the I/O ceiling of 2 workers)",
          lambda f: f[accel_on] / min(100.0, max(f[free("640x360", 2, False)], f[free("640x360", 2, True)])), 0.9)
    ratio("  the same, pool off", lambda f: f[accel_off] / min(100.0, max(f[free("640x360", 2, False)],
                                                                         f[free("640x360", 2, True)])))
    ratio(f"free engine at 1920x1080, 1 worker on {cores} cores (pool {pool(1)}) vs 2 workers (pool off)",
          lambda f: f[free("1920x1080", 1, True)] / f[free("1920x1080", 2, False)], 0.9)
    ratio("  the same, 1 worker with its pool off", lambda f: f[free("1920x1080", 1, False)] / f[free("1920x1080", 2, False)])
    ratio("  1 worker (pool on) vs 2 workers with their pools",
          lambda f: f[free("1920x1080", 1, True)] / f[free("1920x1080", 2, True)])
    for size in FRAMES:
        ratio(f"free engine at {size}, 1 worker, pool on vs off",
              lambda f, size=size: f[free(size, 1, True)] / f[free(size, 1, False)])  # type: ignore[misc]
    ratio("vpipe stylize, 10 ms accelerator, 1 worker at 640x360, pool on vs off",
          lambda f: f[Config("accelerator", "640x360", 1, pool(1), cli=True)]
          / f[Config("accelerator", "640x360", 1, 0, cli=True)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
