"""`make bench`: how fast a worker's frame I/O can feed a network (issue 16), with no network in the way.

Engines (bench/io_engines.py): `free` returns its input, so a worker runs at its I/O ceiling (decode,
encode, hash, fsync, rename, its protocol lines); `accelerator` is a simulated GPU at 10 ms a frame that
releases the GIL, run as the plan runs a GPU worker (I/O threads from resources.plan_io, batches of
resources.GPU_BATCH), and with batch 1 and the pool off beside it. Frames are real (the bench clip at
640x360, and scaled to 1920x1080, split by `vpipe split`), PNG in and out, every file fsynced: both
sides of a ratio do the same work on the same frames.

Workers: real `python -m pipeline.worker` processes fed over the real protocol, timed from their chunks
sent to their last `chunk_end` (start-up and engine load left out on both sides), with their CPU time
over the same span (/proc). They run in this bench's session: `vpipe stylize` starts each worker in a
session of its own, and with the kernel's autogroup scheduling a busy machine gives each session an
equal share, so 2 workers would get twice the CPU of 1 worker with 2 threads. End to end: `vpipe
stylize` itself (coordinator and manifest included), frames/s from the first frame's start to the last
one's commit (the manifest's times).

The machine may be shared: the configurations of each ratio run next to each other, every round, and
odd rounds run them in reverse order; each ratio is taken within a round, and reported as the median
over the rounds with their min-max. Last, bench/io_stages.py says where one accelerator worker's time
goes, stage by stage. BENCH_ROUNDS, BENCH_IO_FRAMES (640x360), BENCH_IO_FRAMES_HD and BENCH_IO_COMPARE
(indices of the comparisons to run, e.g. "0,3") size it.
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
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
CLIP = Path(os.environ.get("BENCH_VIDEO", ASSETS / "video/slow_traffic_small.mp4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
FRAMES = {"640x360": int(os.environ.get("BENCH_IO_FRAMES", "160")), "1920x1080": int(os.environ.get("BENCH_IO_FRAMES_HD", "60"))}
sys.path.insert(0, str(ROOT))

from pipeline import resources, video  # noqa: E402
from pipeline.executors.protocol import Kind, WorkerConfig, decode_event, encode_chunk, encode_config  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from bench_look import cpu_model  # noqa: E402


@dataclass(frozen=True)
class Config:
    engine: str
    size: str
    workers: int
    io_threads: int
    batch: int = 1  # frames per network call
    cli: bool = False  # through `vpipe stylize`, else the workers alone

    def __str__(self) -> str:
        pool = (f"pool {self.io_threads}" if self.io_threads else "pool off") + (f" batch {self.batch}" if self.batch > 1 else "")
        how = "vpipe stylize" if self.cli else "workers"
        return (f"{how:<13} {self.engine:<11} {self.size:<9} {self.workers} worker{'s' if self.workers > 1 else ' '} "
                f"{pool}")


@dataclass(frozen=True)
class Run:
    fps: float
    cpu_ms: float | None  # the workers' CPU time a frame (all their threads), where measured


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


def fresh_styled(template: Path) -> Path:
    styled = template.parent / "styled-run"
    shutil.rmtree(styled, ignore_errors=True)
    styled.mkdir()
    return styled


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_cli(config: Config, template: Path, env: dict[str, str], model: Path) -> Run:
    job = fresh_job(template, "run")
    subprocess.run([sys.executable, "-m", "pipeline.cli", "stylize", "--job", "run", "--engine", config.engine,
                    "--style", str(model), "--workers", str(config.workers)],
                   env={**env, "VPIPE_IO_THREADS": str(config.io_threads), "VPIPE_BATCH": str(config.batch)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Run(frames_per_second(job), None)


def through_workers(config: Config, template: Path, env: dict[str, str], model: Path) -> Run:
    styled = fresh_styled(template)
    worker = WorkerConfig(engine=config.engine, model=str(model), frames_dir=str(template / "frames"),
                          styled_dir=str(styled), name_width=6, ext="png", io_threads=config.io_threads,
                          batch=config.batch)
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
        started, cpu = time.monotonic(), sum(cpu_seconds(proc.pid) for proc in procs)
        share = total // config.workers
        for k, proc in enumerate(procs):
            assert proc.stdin is not None
            proc.stdin.write(encode_chunk(list(range(1 + k * share, 1 + (k + 1) * share))))
            proc.stdin.flush()
        done = sum(until(proc, Kind.CHUNK_END) for proc in procs)
        seconds = time.monotonic() - started
        cpu = sum(cpu_seconds(proc.pid) for proc in procs) - cpu
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert done == total, f"{done} of {total} frames done"
    return Run(total / seconds, 1000 * cpu / total)


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


@dataclass(frozen=True)
class Compare:
    """A ratio taken within each round: the subject's frames/s over the fastest baseline's (at most `cap`)."""

    name: str
    subject: Config
    baselines: tuple[Config, ...]
    cap: float = float("inf")
    goal: float | None = None


def spread(values: list[float], form: str = ".2f") -> str:
    return f"{statistics.median(values):{form}} ({min(values):{form}}-{max(values):{form}})"


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

    def free(size: str, workers: int, pooled: bool) -> Config:
        return Config("free", size, workers, pool(workers) if pooled else 0)

    gpu = Config("accelerator", "640x360", 1, pool(1), resources.GPU_BATCH)  # as the plan runs a GPU worker
    ceiling = (free("640x360", 2, False), free("640x360", 2, True))
    hd = (free("1920x1080", 2, False), free("1920x1080", 2, True))
    compares = [
        Compare(f"10 ms accelerator, 1 worker at 640x360 ({gpu.io_threads} I/O threads, batch {gpu.batch}) "
                "/ min(100, I/O ceiling of 2 workers)", gpu, ceiling, 100.0, 0.9),
        Compare("  the same, batch 1", replace(gpu, batch=1), ceiling, 100.0),
        Compare("  the same, pool off, batch 1", replace(gpu, io_threads=0, batch=1), ceiling, 100.0),
        Compare(f"free engine at 1920x1080, 1 worker on {cores} cores (pool on) / 2 workers", free("1920x1080", 1, True),
                hd, goal=0.9),
        Compare("  the same, 1 worker with its pool off", free("1920x1080", 1, False), hd),
        Compare("free engine at 640x360, 1 worker, pool on / off", free("640x360", 1, True), (free("640x360", 1, False),)),
        Compare("vpipe stylize, 10 ms accelerator, 1 worker at 640x360, as above / pool off, batch 1",
                replace(gpu, cli=True), (replace(gpu, io_threads=0, batch=1, cli=True),)),
    ]
    if os.environ.get("BENCH_IO_COMPARE"):  # e.g. "0,4": only these comparisons
        compares = [compares[int(i)] for i in os.environ["BENCH_IO_COMPARE"].split(",")]
    # each comparison's configurations run next to each other; odd rounds run the list backwards, so a
    # drift in the machine's load weighs on both sides of a ratio alike
    order = list(dict.fromkeys(c for compare in compares for c in (compare.subject, *compare.baselines)))
    rates: dict[Config, list[Run]] = {c: [] for c in order}
    try:
        templates = prepare(work, env)
        started = time.monotonic()
        for number in range(ROUNDS):
            for config in order if number % 2 == 0 else order[::-1]:
                measure = through_cli if config.cli else through_workers
                rates[config].append(measure(config, templates[config.size], env, model))
        seconds = time.monotonic() - started
        stages = [subprocess.run([sys.executable, str(ROOT / "bench" / "io_stages.py"), str(templates["640x360"] / "frames"),
                                  str(fresh_styled(templates["640x360"])), str(io), str(batch), str(FRAMES["640x360"])],
                                 env=env, check=True, capture_output=True, text=True).stdout
                  for io, batch in ((0, 1), (gpu.io_threads, gpu.batch))]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"bench_io on {cpu_model()}, {cores} cores (load {os.getloadavg()[0]:.1f} at the end); {ROUNDS} rounds in "
          f"{seconds:.0f} s, the configurations interleaved; frames {FRAMES}; I/O threads from resources.plan_io")
    print("frames/s and the workers' CPU ms a frame (start-up left out): median (min-max) over the rounds")
    for config in order:
        fps = [r.fps for r in rates[config]]
        cpu = [r.cpu_ms for r in rates[config] if r.cpu_ms is not None]
        print(f"  {config!s:<58} {spread(fps, '6.1f')} frames/s" + (f"  {spread(cpu, '5.1f')} ms CPU" if cpu else ""))
    print("ratios, each taken within a round: median (min-max) over the rounds")
    for compare in compares:
        each = [rates[compare.subject][i].fps / min(compare.cap, max(rates[b][i].fps for b in compare.baselines))
                for i in range(ROUNDS)]
        verdict = "" if compare.goal is None else (
            f"  target >= {compare.goal}: {'ok' if statistics.median(each) >= compare.goal else 'MISSED'}"
            f" (met in {sum(r >= compare.goal for r in each)} of {ROUNDS} rounds)")
        print(f"  {compare.name:<88} {spread(each)}{verdict}")
    print("where one worker's time goes (10 ms accelerator, 640x360; bench/io_stages.py, one run each):")
    print("".join(stages), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
