"""How much memory a worker may use: the budget that sizes tiles, and a hard ceiling.

The budget (`--max-memory`, default: half of the RAM available when the run starts, split over the
workers, at most 8 GiB) is what a worker plans for: a frame the fast engine's XNNPACK path would
need more for runs on its leaner TF graph or in tiles, arbitrary always tiles, and a gatys run that
cannot fit is refused up front with the --max-side that fits. It is a plan, measured against the
worker's resident memory, not a kernel limit.

VPIPE_WORKER_MEMORY=6G is the hard ceiling: the worker lowers its address-space limit (RLIMIT_AS)
before it loads the engine, so an allocation past it fails with MemoryError, reported as the error
kind `out_of_memory`, instead of the kernel's OOM killer picking a process. TensorFlow reserves
address space well beyond what it touches (about 2 GB at load, and its address space grows about
twice as fast as its resident memory), so the ceiling must be a few GB; tiles are planned under it too.
A ceiling is not a budget: TensorFlow's own allocations under it abort the process (SIGABRT, kind
`crashed`) rather than raise, which is why the budget exists.
"""

from __future__ import annotations

import math
import os
import re
import resource
import shutil
import subprocess

from . import engines
from .errors import UsageError

MEMORY_ENV = "VPIPE_WORKER_MEMORY"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
GiB = 1 << 30

DEFAULT_SHARE = 0.5  # of MemAvailable at the start of a run, split over the workers
DEFAULT_CAP = 8 * GiB
DEFAULT_FLOOR = 1 * GiB
# An engine's memory per frame pixel is in its spec (pipeline.engines: EngineSpec.memory).
WORKER_BASE = 620 << 20  # a loaded worker with TensorFlow: fast (TF graph or tiled) 608 MiB, gatys 572 MiB
TF_RESIDENT = 520 << 20  # what importing TensorFlow adds (505 MiB measured): a fast XNNPACK worker (77 MiB
# loaded, no TensorFlow) pays it at its first frame on a leaner path (TF graph or tiles)


def parse_size(text: str, what: str = MEMORY_ENV) -> int:
    """"6G", "512M", "1.5GiB", "1048576" as bytes (binary units)."""
    match = _SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"{what}={text!r} is not a size such as 6G or 512M")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def human(size: float) -> str:
    """Bytes as "1.5 GiB" / "300 MiB"."""
    return f"{size / GiB:.1f} GiB" if size >= GiB else f"{size / (1 << 20):.0f} MiB"


# ---------------------------------------------------------------- the budget


def available_memory(meminfo: str | None = None) -> int | None:
    """MemAvailable from /proc/meminfo (or the text given), in bytes; None where there is none."""
    try:
        text = meminfo if meminfo is not None else open("/proc/meminfo", encoding="ascii").read()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def default_budget(workers: int, available: int | None) -> int:
    """Half of the available RAM split over the workers, between 1 and 8 GiB (8 GiB when unknown).

    Capped because the leaner paths only cost time (the fast net at 4K: 8.7 GiB on XNNPACK, 2.9 GiB
    on the TF graph, 1.8 GiB in tiles), and the RAM that is free when a run starts is shared with
    whatever else starts later."""
    if available is None:
        return DEFAULT_CAP
    share = int(available * DEFAULT_SHARE / max(1, workers))
    return max(DEFAULT_FLOOR, min(DEFAULT_CAP, share))


def working_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The (width, height) a worker stylizes a width x height frame at (what pipeline.worker.fit resizes to)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_budget(engine: str, width: int, height: int, budget: int) -> None:
    """Refuse up front, in one line, a run whose frames cannot fit the budget on the engine's leanest
    path (the fast engine in tiles; gatys optimizes the whole frame); the message names the --max-side
    that fits. Engines without a memory model in their spec are not checked."""
    memory = engines.spec_of(engine).memory
    if memory is None:
        return
    pixels = width * height
    need = memory.need(pixels, WORKER_BASE)
    if need <= budget:
        return
    fits = memory.fitting_pixels(budget, WORKER_BASE)
    side = int(math.sqrt(max(0, fits) * max(width, height) / min(width, height))) // 16 * 16
    advice = f"pass --max-side {side}" if side >= 16 else f"a loaded worker alone takes about {human(WORKER_BASE)}"
    what = memory.refusal.format(engine=engine, need=human(need), size=f"{width}x{height}")
    raise UsageError(f"{what} over the memory budget of {human(budget)} (--max-memory); {advice} "
                     "or give a larger --max-memory")


# ---------------------------------------------------------------- inside a worker


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def resident() -> int:
    """This process's resident memory now (VmRSS), 0 where it cannot be read."""
    return _status_kb("VmRSS") or 0


def headroom(budget: int) -> int:
    """What this worker may still allocate: under the budget (resident memory) and, when a ceiling
    is set, under the ceiling (address space, which grows about twice as fast as resident memory)."""
    room = budget - resident()
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    size = _status_kb("VmSize")
    if soft != resource.RLIM_INFINITY and size is not None:
        room = min(room, (soft - size) // 2)
    return max(0, room)


# ---------------------------------------------------------------- the hard ceiling


def memory_limit() -> int | None:
    text = os.environ.get(MEMORY_ENV)
    return parse_size(text) if text else None


def apply_memory_limit() -> int | None:
    """Lower this process's address-space limit to VPIPE_WORKER_MEMORY, when set; returns it."""
    limit = memory_limit()
    if limit is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    return limit


def is_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, or TensorFlow's (GPU) ResourceExhaustedError, known by name."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError"


def out_of_memory_message() -> str:
    limit = os.environ.get(MEMORY_ENV)
    return f"out of memory (worker limit {MEMORY_ENV}={limit})" if limit else "out of memory"


def plan_workers(cores: int, gpus: int, workers: int | None, threads: int | None) -> tuple[int, int]:
    """(worker processes, compute threads per worker; 0 = the engine's default).

    With GPUs: one worker per GPU. On CPUs: one single-threaded worker per core (measured on 2 cores
    with the fast engine: 2 x 1 gave more frames/s than 1 x 2, since one worker's PNG I/O and Python
    work then overlap the other's network; README "Speed"), up to 4 workers, the cores shared out
    beyond that. --workers alone shares the cores among that many; --threads alone sets the threads
    and fits the workers to the cores.
    """
    cores = max(1, cores)
    if gpus:
        return workers or gpus, threads or 0
    if workers is None:
        workers = max(1, cores // threads) if threads else min(cores, MAX_CPU_WORKERS)
    return workers, threads or max(1, cores // workers)


MAX_CPU_WORKERS = 4  # each worker holds its own model (and TF runtime, on the TF paths) in memory
MAX_IO_THREADS = 8  # a frame buffer each; beyond this the disk, not the cores, sets the pace
GPU_BATCH = 4  # frames per network call on a GPU (a CPU gains nothing from batching: batch 1)


def plan_io(cores: int, workers: int, threads: int) -> int:
    """I/O threads per worker (decode ahead, encode/hash/publish behind): the cores its compute threads
    leave it. GPU workers (threads 0) leave all their share of the cores; CPU workers, one per core,
    leave none, and 0 keeps the I/O in the worker's own loop (one frame decoded ahead)."""
    left = max(1, cores) - workers * threads if threads else max(1, cores)
    return min(MAX_IO_THREADS, max(0, left) // max(1, workers))


def gpu_count() -> int:
    """GPUs visible to workers, found without importing TensorFlow (nvidia-smi, CUDA_VISIBLE_DEVICES)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))
