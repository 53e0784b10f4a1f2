"""`make bench` (video mode): each engine with and without its flow-guided video mode, on real footage.

For each engine the same runs of consecutive frames (bench_look's judge clips, not training footage)
are stylized twice through `pipeline.temporal.Sequence`, as a worker does: independently, and in
video mode (the fast and arbitrary engines: the flow-guided blend of reliable pixels toward the previous
output, weight 0.5). Reported: E_warp (flicker), style distance to the painting, structure kept, and
structure kept on the moving pixels only (ghosts of the previous frame would show there), each with its
ratio to the same engine without video mode. Video mode is on by default for an engine when it holds
the style (<= 1.1x) and the structure, on moving pixels too (>= 0.95x); the last column says whether
it does. Gatys is not run here (minutes per frame on a CPU): its video mode is its temporal loss, on
by default since Ruder et al.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
os.environ.setdefault("VPIPE_MODELS_DIR", str(ASSETS / "models"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.bench_look import JUDGE_CLIPS, cpu_model, judge_runs  # noqa: E402
from pipeline import engines, metrics, sheet, styles  # noqa: E402
from pipeline.temporal import Sequence, Temporal  # noqa: E402

LENGTH = 10  # consecutive frames per clip


@dataclass
class Measure:
    warp: float
    style: float
    structure: float
    moving: float


def measure(engine: object, temporal: Temporal | None, clips: list[list[np.ndarray]], painting: Path) -> Measure:
    warps, structures, moving, styled_all = [], [], [], []
    for frames in clips:
        seq = Sequence(engine, temporal, lambda i, frames=frames: frames[i - 1], lambda i: None)  # type: ignore[arg-type]
        styled = [seq.stylize(i, frames[i - 1])[0] for i in range(1, len(frames) + 1)]
        warps.append(metrics.warping_error(styled, frames))
        structures += [metrics.structure(s, f) for s, f in zip(styled, frames, strict=True)]
        for t in range(1, len(frames)):
            mask = metrics.moving(frames[t - 1], frames[t])
            if mask.mean() > 0.01:
                moving.append(metrics.structure(styled[t], frames[t], mask))
        styled_all += styled[::3]
    return Measure(float(np.mean(warps)), float(np.mean(metrics.style_distance(painting, styled_all))),
                   float(np.mean(structures)), float(np.mean(moving)) if moving else float("nan"))


def main() -> int:
    painting = ASSETS / "styles" / "starry_night.jpg"
    if not (ASSETS / "models" / "magenta_tflite").is_dir() or not painting.is_file():
        print(f"bench-video-mode: needs {ASSETS} (models/magenta_tflite, styles/starry_night.jpg)")
        return 1
    print(f"bench-video-mode on {cpu_model()}; {len(JUDGE_CLIPS)} clips x {LENGTH} consecutive frames, blend weight 0.5")
    clips = judge_runs(LENGTH, per_clip=1)
    cases = {"fast (starry_night)": styles.resolve("starry_night", None),
             "arbitrary (starry_night.jpg)": styles.resolve(str(painting), "arbitrary")}
    print(f"{'engine':<30} {'mode':<10} {'E_warp':>8} {'style':>7} {'structure':>9} {'moving':>7}   ratios to off: "
          "E_warp, style (<=1.1x), structure, moving (>=0.95x)")
    for label, style in cases.items():
        engine = sheet.load_here(style, style.params)
        spec = engines.spec_of(style.engine)
        off = measure(engine, None, clips, painting)
        on = measure(engine, Temporal(weight=0.5), clips, painting)
        holds = on.style <= 1.1 * off.style and on.structure >= 0.95 * off.structure and on.moving >= 0.95 * off.moving
        for mode, m in (("off", off), ("blend 0.5", on)):
            line = f"{label:<30} {mode:<10} {m.warp:>8.5f} {m.style:>7.3f} {m.structure:>9.3f} {m.moving:>7.3f}"
            if m is on:
                line += (f"   {on.warp / off.warp:.2f}x {on.style / off.style:.2f}x {on.structure / off.structure:.2f}x "
                         f"{on.moving / off.moving:.2f}x: {'holds' if holds else 'does NOT hold'}; default now "
                         f"{spec.video.describe()}")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
