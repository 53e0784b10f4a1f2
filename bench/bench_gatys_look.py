"""`make bench` (gatys, the look): Gatys with today's tuned defaults vs the old defaults vs the arbitrary
engine, on the same painting and the same judge frames (bench_look's: real footage no style trained on).

Each row: style distance (metrics.style_distance: Gram distance on SqueezeNet with the judge's pinned
layers, lower is more like the painting), structure kept (metrics.structure, 1 = all outlines), seconds
per frame at 640x360 (a cold frame, the engines interleaved), and the ratios the targets are stated in
(style <= 0.9x the arbitrary engine's, structure >= 0.8). A contact sheet (source, then each row, 1:1
crops) is written to bench/out/gatys_look.png. Speed is also given for the pyramid alone (old defaults
with the pyramid: the same objective as before, so its final loss is comparable). Gatys costs seconds to
minutes per frame on a small CPU: by default the first frame of each judge run is stylized (`--frames all`
for every frame of the runs; `--runs N` for N runs spread over the clips; `--iterations N` for both rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
os.environ.setdefault("VPIPE_MODELS_DIR", str(ASSETS / "models"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from bench_look import cpu_model, judge_runs  # noqa: E402

from pipeline import metrics, sheet, storage, styles  # noqa: E402
from pipeline.engines import features, gatys  # noqa: E402
from pipeline.engines.base import Engine  # noqa: E402
from pipeline.models import lookup  # noqa: E402
from pipeline.worker import fit  # noqa: E402

OUT = ROOT / "bench" / "out"
# The defaults before issue 14 (section 5): source palette, one level, the painting at the frame's size.
BEFORE = gatys.Settings(style_weight=10.0, pyramid=1, palette="source", style_scale=1.0,
                        style_layers={"conv1": 0.5, "fire2": 1.0, "fire3": 1.0, "fire5": 1.0, "fire7": 1.0})


@dataclass
class Row:
    name: str
    engine: Engine
    outputs: list[np.ndarray]
    style: float = 0.0
    structure: float = 0.0
    seconds: float = 0.0
    loss: float | None = None  # final loss of the timed frame (gatys)


def rows_for(painting: Path, iterations: int | None) -> tuple[list[Row], Row]:
    """before, after, arbitrary; and the pyramid alone (timed only)."""
    net = features.load("squeezenet", lookup.find(lookup.FEATURE_NETS["squeezenet"]))
    image = gatys.read_image(painting)
    budget = {"iterations": iterations} if iterations else {}
    before = dataclasses.replace(BEFORE, **budget)
    arbitrary = sheet.load_here(styles.resolve(str(painting), "arbitrary"), {})
    return ([Row("gatys before", gatys.GatysEngine(image, net, before), []),
             Row("gatys after", gatys.GatysEngine(image, net, gatys.Settings(**budget)), []),
             Row("arbitrary", arbitrary, [])],
            Row("pyramid 3 only", gatys.GatysEngine(image, net, dataclasses.replace(before, pyramid=3)), []))


def judge(rows: list[Row], frames: list[np.ndarray], painting: Path) -> None:
    for row in rows:
        row.outputs = [row.engine.stylize([f])[0] for f in frames]
        row.structure = float(np.mean([metrics.structure(o, f) for o, f in zip(row.outputs, frames, strict=True)]))
        row.style = float(np.mean(metrics.style_distance(painting, row.outputs)))


def seconds_per_frame(rows: list[Row], frame: np.ndarray, rounds: int) -> None:
    """Seconds for one cold 640x360 frame (a real one: Gatys' early stop depends on the picture)."""
    for row in rows:
        row.engine.stylize([frame[:64, :96]])  # warm up what does not depend on the size
    totals = [0.0] * len(rows)
    for _ in range(rounds):
        for i, row in enumerate(rows):  # interleaved: each sees the same machine load
            started = time.perf_counter()
            if isinstance(row.engine, gatys.GatysEngine):
                row.loss = float(row.engine.stylize_guided(frame, None)[1]["loss"])
            else:
                row.engine.stylize([frame])
            totals[i] += time.perf_counter() - started
    for row, total in zip(rows, totals, strict=True):
        row.seconds = total / rounds


def contact_sheet(bands: list[sheet.Band], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.publish(path, storage.encode(sheet.layout(bands, 320 / 180), "png"))


def crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max(0, (h - 180) // 2), max(0, (w - 320) // 2)
    return image[top:top + 180, left:left + 320]


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--painting", action="append", type=Path,
                        help="a painting (repeatable; default: starry_night.jpg from the assets)")
    parser.add_argument("--frames", choices=("first", "all"), default="first",
                        help="first: the first frame of each judge run; all: every frame of the runs")
    parser.add_argument("--runs", type=int, default=6, help="judge runs used, spread over the clips (at most 6)")
    parser.add_argument("--side", type=int, default=640, help="judge frames scaled to this long side (at most 640)")
    parser.add_argument("--iterations", type=int, help="gatys iterations for both rows (default: the engine's)")
    parser.add_argument("--rounds", type=int, default=1, help="timed cold frames at 640x360 per row")
    parser.add_argument("--sheet", type=Path, default=OUT / "gatys_look.png")
    args = parser.parse_args()
    paintings = args.painting or [ASSETS / "styles" / "starry_night.jpg"]
    missing = [p for p in (ASSETS / "video", ASSETS / "models" / "magenta_tflite", *paintings) if not p.exists()]
    if missing:
        print(f"bench-gatys-look: needs {missing[0]} (the ../shared/assets folder)")
        return 1
    print(f"bench-gatys-look on {cpu_model()}, {os.cpu_count()} cores")
    runs = judge_runs()
    timing = next(run[0] for run in runs if run[0].shape[:2] == (360, 640))
    runs = [runs[round(k * (len(runs) - 1) / max(1, args.runs - 1))] for k in range(min(args.runs, len(runs)))]
    frames = [fit(f, args.side) for run in runs for f in (run if args.frames == "all" else run[:1])]
    print(f"frames: {len(frames)} judge frames (the {args.frames} of {len(runs)} runs, long side {args.side}); "
          f"speed: one real 640x360 frame, cold, {args.rounds} round(s); gatys iterations {args.iterations or 'default'}")
    print(f"{'painting':<16} {'row':<14} {'style dist':>10} {'structure':>9} {'s/frame 640x360':>16}   "
          "vs arbitrary: style (<=0.9x)   vs before: style  structure  speed-up")
    bands = [sheet.Band(("source", "1:1 crops"), None, tuple(crop(f) for f in frames))]
    for painting in paintings:
        rows, pyramid_only = rows_for(painting, args.iterations)
        judge(rows, frames, painting)
        seconds_per_frame([*rows, pyramid_only], timing, args.rounds)
        before, _, arbitrary = rows
        for row in rows:
            line = f"{painting.stem:<16} {row.name:<14} {row.style:>10.4f} {row.structure:>9.3f} {row.seconds:>15.2f}s"
            if row.name.startswith("gatys"):
                line += f"   {ratio(row.style, arbitrary.style):>26}"
            if row.name == "gatys after":
                line += (f"   {ratio(row.style, before.style):>16}  {ratio(row.structure, before.structure):>9}  "
                         f"{ratio(before.seconds, row.seconds):>8}")
            print(line + (f"   (final loss {row.loss:.3f})" if row.loss is not None else ""), flush=True)
            bands.append(sheet.Band((f"{painting.stem}: {row.name}", f"structure {row.structure:.2f}",
                                     f"style {row.style:.3f}", f"{row.seconds:.1f} s/frame"),
                                    storage.read_rgb(painting), tuple(crop(o) for o in row.outputs)))
        print(f"{painting.stem:<16} {pyramid_only.name:<14} {'':>10} {'':>9} {pyramid_only.seconds:>15.2f}s   "
              f"speed-up vs before {ratio(before.seconds, pyramid_only.seconds)} (final loss {pyramid_only.loss:.3f} "
              f"vs {before.loss:.3f}: the same objective)", flush=True)
    contact_sheet(bands, args.sheet)
    print(f"contact sheet: {args.sheet} (source, then each row, 320x180 crops at 1:1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
