"""`make bench` (styles part): a style trained by `vpipe train-style` beside the full Johnson network.

1. Speed: seconds per 640x360 frame, trained slim net vs the Engstrom 'wave' net, interleaved on the
   same frames (target: >= 4x faster).
2. Style kept: Gram style loss against the painting, styled vs unstylized frames (target: <= 0.5x).
3. Steadiness: E_warp on a real clip of the trained net vs the same architecture trained without
   the temporal term (--baseline MODEL_DIR; target: <= 0.5x).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
os.environ.setdefault("VPIPE_MODELS_DIR", str(ASSETS / "models"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.bench_gatys import source_frames  # noqa: E402
from pipeline import metrics  # noqa: E402
from pipeline.engines.fast.engine import FastEngine  # noqa: E402
from pipeline.worker import fit  # noqa: E402


def seconds_per_frame(engines: dict[str, FastEngine], frames: list[np.ndarray], rounds: int) -> dict[str, float]:
    for engine in engines.values():
        engine.stylize(frames[:1])  # trace once
    totals = dict.fromkeys(engines, 0.0)
    for _ in range(rounds):
        for name, engine in engines.items():  # interleaved: both see the same machine load
            started = time.perf_counter()
            for frame in frames:
                engine.stylize([frame])
            totals[name] += time.perf_counter() - started
    return {name: total / (rounds * len(frames)) for name, total in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry_night", help="a style folder in styles/")
    parser.add_argument("--baseline", type=Path, help="the same net trained without the temporal term")
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    folder = ROOT / "styles" / args.style
    config = tomllib.loads((folder / "style.toml").read_text())
    painting = ASSETS / "styles" / config.get("training", {}).get("painting", "starry_night.jpg")
    clip, wave = ASSETS / "video/slow_traffic_small.mp4", ASSETS / "models/lengstrom_fst/wave"
    if not clip.is_file() or not wave.is_dir() or not painting.is_file():
        print(f"bench-styles: needs {clip}, {wave} and {painting} (the ../shared/assets folder)")
        return 1
    frames = source_frames(clip, args.frames)
    trained = FastEngine(folder / "model")
    speed = seconds_per_frame({"trained": trained, "wave": FastEngine(wave)}, frames[:6], rounds=3)
    print(f"1. speed at 640x360: {args.style} {speed['trained']:.3f} s/frame, full Johnson 'wave' {speed['wave']:.3f} "
          f"s/frame: {speed['wave'] / speed['trained']:.1f}x faster (target >= 4x)")
    small = [fit(f, 360) for f in frames]
    styled = [trained.stylize([f])[0] for f in small]
    sample = small[:: max(1, len(small) // 8)]
    losses = metrics.style_distance(painting, [trained.stylize([f])[0] for f in sample] + sample)
    ours, plain = float(np.mean(losses[:len(sample)])), float(np.mean(losses[len(sample):]))
    print(f"2. style loss vs {painting.name} at 360 px: styled {ours:.3f}, unstylized {plain:.3f}: "
          f"ratio {ours / plain:.2f} (target <= 0.5)")
    e_trained = metrics.warping_error(styled, small)
    line = f"3. E_warp over {len(small)} frames at 360 px: {args.style} {e_trained:.5f}"
    if args.baseline:
        base = FastEngine(args.baseline)
        e_base = metrics.warping_error([base.stylize([f])[0] for f in small], small)
        line += f", without the temporal term {e_base:.5f}: ratio {e_trained / e_base:.2f} (target <= 0.5)"
    print(line + f"; source frames {metrics.warping_error(small, small):.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
