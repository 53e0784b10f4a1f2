"""`make bench-gatys`: the gatys engine's three acceptance figures, each beside its baseline in one run.

1. Flicker: the first N frames of a real clip, independent per-frame Gatys vs video mode with the
   same iteration budget per frame: E_warp and style loss of both (target: E_warp ratio <= 0.5,
   style loss no more than 10 % higher).
2. Warm start: on consecutive frames, iterations a cold start needs to reach its loss after N
   iterations vs iterations the warm start (warped previous output) needs for the same loss (<= 0.4).
3. The popular TF2 recipe (Adam lr 0.02, beta1 0.99, eps 0.1, 250 steps at 512 px, from the content
   image on every frame) vs vpipe (L-BFGS, warm start, compiled step): time to reach the recipe's
   final loss on the same frame, loss and feature network (<= 0.25).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("VPIPE_MODELS_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "assets" / "models"))
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline import flow, metrics, storage, video  # noqa: E402
from pipeline.engines import features, gatys  # noqa: E402
from pipeline.engines.base import Guide  # noqa: E402
from pipeline.engines.gatys_spec import SPEC  # noqa: E402
from pipeline.temporal import Sequence, Temporal  # noqa: E402
from pipeline.worker import fit  # noqa: E402


def source_frames(clip: Path, count: int) -> list[np.ndarray]:
    out = Path(tempfile.mkdtemp(prefix="vpipe-bench-gatys-"))
    subprocess.run([video.tools().ffmpeg, "-nostdin", "-v", "error", "-i", str(clip), "-frames:v", str(count),
                    str(out / "%04d.png")], check=True)
    return [storage.read_rgb(p) for p in sorted(out.glob("*.png"))]


def engine(net: features.FeatureNet, **settings: object) -> gatys.GatysEngine:
    return gatys.GatysEngine(storage.read_rgb(ASSETS / "styles/starry_night.jpg"), net, gatys.Settings(**settings))


def flicker(net: features.FeatureNet, frames: list[np.ndarray], iterations: int, weight: float,
            sheet: Path | None) -> None:
    print(f"\n1. flicker: {len(frames)} frames at {frames[0].shape[1]}x{frames[0].shape[0]}, {iterations} L-BFGS "
          f"iterations per frame (first frame too), temporal weight {weight}")
    eng = engine(net, iterations=iterations, first_iterations=iterations)
    results = {}
    for mode, temporal in (("independent", None), ("temporal", Temporal(weight=weight))):
        seq = Sequence(eng, temporal, lambda i: frames[i - 1], lambda i: None)
        started = time.perf_counter()
        styled = [seq.stylize(i, frames[i - 1])[0] for i in range(1, len(frames) + 1)]
        seconds = time.perf_counter() - started
        e_warp = metrics.warping_error(styled, frames)
        style = float(np.mean(metrics.style_distance(ASSETS / "styles/starry_night.jpg", styled[:: max(1, len(styled) // 8)])))
        results[mode] = (e_warp, style, styled)
        print(f"   {mode:<12} E_warp {e_warp:.5f}   style loss {style:.4f}   {seconds:6.1f} s")
    (e_i, s_i, ind), (e_t, s_t, tem) = results["independent"], results["temporal"]
    print(f"   source E_warp {metrics.warping_error(frames, frames):.5f}")
    print(f"   E_warp ratio temporal/independent {e_t / e_i:.2f} (target <= 0.5) {'ok' if e_t <= 0.5 * e_i else 'OVER'}; "
          f"style loss ratio {s_t / s_i:.2f} (target <= 1.10) {'ok' if s_t <= 1.1 * s_i else 'OVER'}")
    if sheet:
        rows = [np.hstack([frames[i], ind[i], tem[i]]) for i in range(1, min(len(frames), 5))]
        storage.publish(sheet, storage.encode(np.vstack(rows), "png"))
        print(f"   contact sheet (content | independent | temporal): {sheet}")


def iterations_to(losses: list[float], target: float) -> int | None:
    return next((i + 1 for i, loss in enumerate(losses) if loss <= target), None)


def trace(eng: gatys.GatysEngine, frame: np.ndarray, x0: np.ndarray, budget: int,
          until: float = -np.inf) -> tuple[list[float], list[float]]:
    """Loss and elapsed seconds after every iteration (no early stop; stops once the loss <= until)."""
    losses: list[float] = []
    times: list[float] = []
    started = time.perf_counter()

    def record(_it: int, loss: float) -> bool:
        losses.append(loss)
        times.append(time.perf_counter() - started)
        return loss <= until

    eng.optimize(frame, None, x0, budget, record)
    return losses, times


def previous_styled(eng: gatys.GatysEngine, frames: list[np.ndarray], iterations: int) -> np.ndarray:
    """Frame 2's warm start: frame 1 stylized (cold, `iterations`), warped into frame 2 (content where unreliable)."""
    first = np.clip(eng.optimize(frames[0], None, frames[0].astype(np.float32), iterations).x, 0, 255)
    warped, mask = flow.guide(first, flow.gray(frames[0]), flow.gray(frames[1]))
    return eng.initial(frames[1], Guide(warped, mask, 0.0))[0]


def warm_start(net: features.FeatureNet, frames: list[np.ndarray], n: int) -> None:
    print(f"\n2. warm start: frame 2 at {frames[1].shape[1]}x{frames[1].shape[0]}, same objective (no temporal term)")
    eng = engine(net, iterations=n, tolerance=0)
    cold, _ = trace(eng, frames[1], frames[1].astype(np.float32), n)
    warm, _ = trace(eng, frames[1], previous_styled(eng, frames, n), n)
    needed = iterations_to(warm, cold[-1])
    shown = "not reached" if needed is None else f"{needed}"
    print(f"   cold start: loss {cold[-1]:.4f} after N={n} iterations; warm start reaches it after {shown} "
          f"(ratio {needed / n if needed else float('nan'):.2f}, target <= 0.4)")


def recipe(net: features.FeatureNet, frames: list[np.ndarray], steps: int) -> None:
    h, w = frames[1].shape[:2]
    print(f"\n3. TF2 recipe vs vpipe: frame 2 at {w}x{h}, same loss and network ({net.name})")
    adam = engine(net, optimizer="adam", tolerance=0)
    losses, times = trace(adam, frames[1], frames[1].astype(np.float32), steps)
    target, recipe_seconds = losses[-1], times[-1]
    ours = engine(net, tolerance=0)
    x0 = previous_styled(ours, frames, steps)
    lbfgs_losses, lbfgs_times = trace(ours, frames[1], x0, steps, until=target)
    needed = iterations_to(lbfgs_losses, target)
    if needed is None:
        print(f"   recipe: loss {target:.4f} in {recipe_seconds:.1f} s; vpipe did not reach it in {steps} iterations")
        return
    seconds = lbfgs_times[needed - 1]
    print(f"   recipe: {steps} Adam steps, loss {target:.4f}, {recipe_seconds:.1f} s; vpipe: {needed} L-BFGS iterations, "
          f"{seconds:.1f} s; ratio {seconds / recipe_seconds:.2f} (target <= 0.25) "
          f"{'ok' if seconds <= 0.25 * recipe_seconds else 'OVER'}")
    cold_losses, cold_times = trace(ours, frames[1], frames[1].astype(np.float32), steps, until=target)
    cold = iterations_to(cold_losses, target)
    if cold:
        print(f"   without the warm start (L-BFGS from the content image): {cold} iterations, {cold_times[cold - 1]:.1f} s, "
              f"ratio {cold_times[cold - 1] / recipe_seconds:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--max-side", type=int, default=256)
    parser.add_argument("--weight", type=float, default=SPEC.video.weight)
    parser.add_argument("--steps", type=int, default=250, help="the recipe's Adam steps")
    parser.add_argument("--only", choices=["flicker", "warm", "recipe"])
    parser.add_argument("--sheet", type=Path, default=Path(tempfile.gettempdir()) / "vpipe-gatys-sheet.png")
    args = parser.parse_args()
    clip, weights = ASSETS / "video/slow_traffic_small.mp4", ASSETS / "models" / "squeezenet"
    if not clip.is_file() or not weights.is_dir():
        print(f"bench-gatys: needs {clip} and {weights} (the ../shared/assets folder)")
        return 1
    net = features.load("squeezenet", next(weights.glob("*.h5")))
    frames = source_frames(clip, max(args.frames, 2))
    small = [fit(f, args.max_side) for f in frames]
    if args.only in (None, "flicker"):
        flicker(net, small, args.iterations, args.weight, args.sheet)
    if args.only in (None, "warm"):
        warm_start(net, small, args.iterations)
    if args.only in (None, "recipe"):
        recipe(net, [fit(f, 512) for f in frames[:2]], args.steps)
    return 0


if __name__ == "__main__":
    cv2.setNumThreads(1)
    sys.exit(main())
