"""`make bench`: vpipe's split, stylize (fast engine) and assemble, each beside a plain baseline
doing the same work in the same run. Prints wall times, frames/s and ratios (ratios are what count
on a shared, noisy machine)."""

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
FRAMES = int(os.environ.get("BENCH_FRAMES", "60"))  # frames stylized (full 640x360)
sys.path.insert(0, str(ROOT))

from pipeline import video  # noqa: E402

BARE_LOOP = """
import sys, time
from pathlib import Path
import cv2
from pipeline.engines.fast.engine import FastEngine
frames, out, model, n = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
engine = FastEngine(model)
for i in range(1, n + 1):
    name = f"{i:06d}.png"
    rgb = cv2.cvtColor(cv2.imread(str(frames / name)), cv2.COLOR_BGR2RGB)
    styled = engine.stylize([rgb])[0]
    cv2.imwrite(str(out / name), cv2.cvtColor(styled, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
"""


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def row(name: str, ours: float, base: float, frames: int, target: float) -> None:
    ratio = ours / base
    verdict = "ok" if ratio <= target else "OVER"
    print(f"{name:<10} vpipe {ours:7.2f} s ({frames / ours:6.1f} fps)   baseline {base:7.2f} s "
          f"({frames / base:6.1f} fps)   ratio {ratio:5.2f}  (target <= {target}) {verdict}")


def main() -> int:
    model = ASSETS / "models/lengstrom_fst/wave"
    if not CLIP.is_file() or not model.is_dir():
        print(f"bench: needs {CLIP} and {model} (the ../shared/assets folder)")
        return 1
    ff = video.tools().ffmpeg
    vpipe = [sys.executable, "-m", "pipeline.cli"]
    work = Path(tempfile.mkdtemp(prefix="vpipe-bench-"))
    env = {**os.environ, "VPIPE_JOBS_DIR": str(work / "jobs"), "VPIPE_MODELS_DIR": str(ASSETS / "models"),
           "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "-1"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        total = video.count_frames(CLIP)
        print(f"clip {CLIP.name}: {total} frames; stylize bench on frames 1-{FRAMES} at full size\n")
        raw = work / "raw"
        raw.mkdir()
        base_default = timed([ff, "-v", "error", "-i", str(CLIP), "-map", "0:v:0", "-start_number", "1",
                              str(raw / "%06d.png")])
        shutil.rmtree(raw)
        raw.mkdir()
        base_split = timed([ff, "-v", "error", "-i", str(CLIP), "-map", "0:v:0", "-pix_fmt", "rgb24",
                            "-compression_level", "1", "-start_number", "1", str(raw / "%06d.png")])
        ours_split = timed([*vpipe, "split", str(CLIP), "--job", "b"], env)
        row("split", ours_split, base_split, total, 1.2)
        print(f"{'':<10} (raw ffmpeg with its default PNG settings: {base_default:.2f} s, "
              f"{total / base_default:.1f} fps)")

        bare_out = work / "bare"
        bare_out.mkdir()
        base_net = timed([sys.executable, "-c", BARE_LOOP, str(raw), str(bare_out), str(model), str(FRAMES)],
                         {**env, "PYTHONPATH": str(ROOT)})
        ours_net = timed([*vpipe, "stylize", "--job", "b", "--style", "wave", "--range", f"1-{FRAMES}",
                          "--chunk", "50"], env)
        row("stylize", ours_net, base_net, FRAMES, 1.15)

        out = work / "out.mp4"
        base_enc = timed([ff, "-v", "error", "-y", "-framerate", "30000/1001", "-start_number", "1",
                          "-i", str(raw / "%06d.png"), "-i", str(CLIP), "-map", "0:v:0", "-map", "1:a",
                          "-c:v", "libx264", "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p",
                          "-c:a", "copy", str(out)])
        ours_enc = timed([*vpipe, "assemble", "--job", "b", "--fill", "original", "-o", str(work / "v.mp4")], env)
        row("assemble", ours_enc, base_enc, total, 1.2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
