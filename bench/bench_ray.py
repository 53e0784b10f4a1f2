"""`make bench`: frames/s of the same stylize job with the local executor and the Ray executor on this
machine, side by side, and Ray's two shapes: one actor per worker slot (the engine loads once) and one
Ray task per chunk (a fresh worker, so a model load, per chunk). Ray starts once, before the runs;
its start-up time is printed apart. Each run takes its own frame range of the same job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
CLIP = Path(os.environ.get("BENCH_VIDEO", ASSETS / "video/slow_traffic_small.mp4"))
FRAMES = int(os.environ.get("BENCH_FRAMES", "60"))  # frames per run, full size
CHUNK = int(os.environ.get("BENCH_CHUNK", "10"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
sys.path.insert(0, str(ROOT))

from pipeline import stages, video  # noqa: E402
from pipeline.frames import FrameRange  # noqa: E402


def clip(work: Path) -> Path:
    if CLIP.is_file():
        return CLIP
    made = work / "testsrc.mp4"  # no asset: a generated 640x360 clip
    subprocess.run([video.tools().ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                    "-t", str(3 * FRAMES / 30 + 1), "-pix_fmt", "yuv420p", str(made)], check=True)
    return made


def run(base: Path, first: int, executor: str) -> float:
    """Seconds of the stylize run itself (workers started, engine loaded, frames done)."""
    options = stages.RunOptions(style="starry_night", frames=FrameRange(first, first + FRAMES - 1), chunk=CHUNK,
                                workers=WORKERS, executor=executor, device="cpu")
    result = stages.stylize(base, "b", options)
    assert result.outcome.done == FRAMES, f"{executor}: {result.outcome}"
    return result.seconds


def main() -> int:
    try:
        import ray

        from pipeline.executors.ray import RayExecutor
    except ImportError:
        print("bench_ray: needs Ray: pip install 'vpipe[ray]'")
        return 1
    work = Path(tempfile.mkdtemp(prefix="vpipe-bench-ray-"))
    os.environ.update({"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "-1"), "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        source = clip(work)
        stages.split(source, work / "jobs", "b")
        started = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        print(f"clip {source.name}, style starry_night, {FRAMES} frames per run at full size, chunk {CHUNK}, "
              f"{WORKERS} worker(s), CPU; Ray start-up {ray_start:.1f} s (not counted below)\n")
        local = run(work / "jobs", 1, "local")
        actor = run(work / "jobs", 1 + FRAMES, "ray")
        RayExecutor.per_chunk = True
        task = run(work / "jobs", 1 + 2 * FRAMES, "ray")
        print(f"{'executor':<24} {'seconds':>8} {'frames/s':>9} {'vs local':>9}")
        for name, seconds in (("local", local), ("ray, actor per slot", actor), ("ray, task per chunk", task)):
            print(f"{name:<24} {seconds:8.2f} {FRAMES / seconds:9.2f} {local / seconds:8.2f}x")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
