"""`make bench` (gatys, the look): Gatys with today's defaults vs the old defaults vs the pyramid, each
beside the arbitrary engine on the same painting and the same judge frames (bench_look's: real footage no
style was trained on, 640x360).

Each row: style distance (metrics.style_distance: Gram distance on SqueezeNet with the judge's pinned
layers, lower is more like the painting), structure kept (metrics.structure, 1 = all outlines), seconds
per frame at the judged size (cold frames; for each frame the rows run one after another), wall and
this process's CPU seconds (the fairer measure on a shared machine), the final loss (mean over the
frames), and the ratios the targets are stated in
(style <= 0.9x the arbitrary engine's, structure >= 0.8). The pyramid is shown twice: as `--pyramid 3`
runs it (the cold budget shared by the levels), and at equal final loss (its finest level run until it
reaches the one-level row's loss on that frame): only the latter says whether it is faster for the same
result. A contact sheet (source, arbitrary, then each gatys row; 320x180 crops at 1:1) is written to
bench/out/gatys_look.png. Gatys costs minutes per 640x360 frame on a small CPU: by default the first frame
of 3 judge runs (one per clip) is stylized (`--runs 6`, `--frames all` for more; `--side 320` for a quick look;
`--rows now` for today's defaults alone beside the arbitrary engine, at the engine's own budget).
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
    outputs: list[np.ndarray] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)  # wall
    cpu: list[float] = dataclasses.field(default_factory=list)  # this process's CPU seconds (all threads)
    losses: list[float] = dataclasses.field(default_factory=list)  # final loss of each frame (gatys)
    reached: int = 0  # frames whose finest level reached the target loss (the equal-loss row)
    style: float = 0.0
    structure: float = 0.0


# The gatys rows by their --rows names, in the order they run (the equal-loss row needs "now"'s losses).
ROWS = {"before": "gatys before", "now": "gatys now", "pyramid": "now, pyramid 3", "equal": "pyr 3, = loss"}


def rows_for(painting: Path, iterations: int | None, chosen: set[str]) -> list[Row]:
    """arbitrary (always: the baseline), then the chosen of gatys before, gatys now, now with the pyramid,
    and the pyramid at equal loss (which brings "now" with it)."""
    net = features.load("squeezenet", lookup.find(lookup.FEATURE_NETS["squeezenet"]))
    image = gatys.read_image(painting)
    budget = {"iterations": iterations} if iterations else {}
    now = gatys.Settings(**budget)
    # equal loss: each level may run the whole cold budget (the early stop still applies)
    cold = now.first_iterations or 2 * now.iterations
    settings = {"before": dataclasses.replace(BEFORE, **budget), "now": now,
                "pyramid": dataclasses.replace(now, pyramid=3),
                "equal": dataclasses.replace(now, pyramid=3, first_iterations=3 * cold)}
    chosen = chosen | {"now"} if "equal" in chosen else chosen
    return [Row("arbitrary", sheet.load_here(styles.resolve(str(painting), "arbitrary"), {})),
            *(Row(ROWS[key], gatys.GatysEngine(image, net, settings[key])) for key in ROWS if key in chosen)]


def named(rows: list[Row], key: str) -> Row | None:
    return next((row for row in rows if row.name == ROWS.get(key, key)), None)


def judge(rows: list[Row], frames: list[np.ndarray], painting: Path) -> None:
    """Stylize each frame with each row in turn (timed; the equal-loss row stops at the one-level row's loss)."""
    for row in rows:  # warm up: the compiled step traced and the style targets computed for each size
        if isinstance(row.engine, gatys.GatysEngine):
            for h, w in gatys.pyramid_sizes(*frames[0].shape[:2], row.engine.settings.pyramid):
                small = gatys.resize(frames[0].astype(np.float32), h, w)
                row.engine.objective(small, None)(small)
        else:
            row.engine.stylize([frames[0]])
    now, equal = named(rows, "now"), named(rows, "equal")
    for k, frame in enumerate(frames):
        for row in rows:
            started, cpu = time.perf_counter(), time.process_time()
            if isinstance(row.engine, gatys.GatysEngine):
                target = now.losses[-1] if row is equal and now else None
                out, stats = row.engine.stylize_guided(
                    frame, None, (lambda _it, loss, t=target: loss <= t) if target is not None else None)
                row.losses.append(float(stats["loss"]))
                row.reached += target is not None and stats["stop"] == "callback"
            else:
                out = row.engine.stylize([frame])[0]
            row.seconds.append(time.perf_counter() - started)
            row.cpu.append(time.process_time() - cpu)
            row.outputs.append(out)
            print(f"  frame {k + 1}/{len(frames)} {row.name:<14} {row.seconds[-1]:7.1f}s ({row.cpu[-1]:.1f} CPU s)"
                  + (f"  loss {row.losses[-1]:.3f}" if row.losses else ""), flush=True)
    for row in rows:
        row.structure = float(np.mean([metrics.structure(o, f) for o, f in zip(row.outputs, frames, strict=True)]))
        row.style = float(np.mean(metrics.style_distance(painting, row.outputs)))


def contact_sheet(bands: list[sheet.Band], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.publish(path, storage.encode(sheet.layout(bands, 320 / 180), "png"))


def crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max(0, (h - 180) // 2), max(0, (w - 320) // 2)
    return image[top:top + 180, left:left + 320]


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--painting", action="append", type=Path,
                        help="a painting (repeatable; default: starry_night.jpg from the assets)")
    parser.add_argument("--frames", choices=("first", "all"), default="first",
                        help="first: the first frame of each judge run; all: every frame of the runs")
    parser.add_argument("--runs", type=int, default=3, help="judge runs used, spread over the clips (at most 6)")
    parser.add_argument("--side", type=int, default=640,
                        help="judge frames (640x360) scaled to this long side (at most 640: the judge's size)")
    parser.add_argument("--iterations", type=int, help="gatys iterations for every row (default: the engine's)")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"the gatys rows, comma-separated, of: {', '.join(ROWS)} (default: all)")
    parser.add_argument("--sheet", type=Path, default=OUT / "gatys_look.png")
    args = parser.parse_args()
    chosen = {key.strip() for key in args.rows.split(",") if key.strip()}
    if not chosen <= set(ROWS):
        parser.error(f"--rows: {', '.join(sorted(chosen - set(ROWS)))} is not one of {', '.join(ROWS)}")
    paintings = args.painting or [ASSETS / "styles" / "starry_night.jpg"]
    missing = [p for p in (ASSETS / "video", ASSETS / "models" / "magenta_tflite", *paintings) if not p.exists()]
    if missing:
        print(f"bench-gatys-look: needs {missing[0]} (the ../shared/assets folder)")
        return 1
    print(f"bench-gatys-look on {cpu_model()}, {os.cpu_count()} cores")
    runs = judge_runs()
    runs = [runs[round(k * (len(runs) - 1) / max(1, args.runs - 1))] for k in range(min(args.runs, len(runs)))]
    frames = [fit(f, args.side) for run in runs for f in (run if args.frames == "all" else run[:1])]
    h, w = frames[0].shape[:2]
    print(f"frames: {len(frames)} judge frames at {w}x{h} (the {args.frames} of {len(runs)} runs), cold; "
          f"gatys iterations {args.iterations or 'default'}")
    bands = [sheet.Band(("source", "1:1 crops"), None, tuple(crop(f) for f in frames))]
    for painting in paintings:
        rows = rows_for(painting, args.iterations, chosen)
        judge(rows, frames, painting)
        arbitrary, before, now, equal = rows[0], named(rows, "before"), named(rows, "now"), named(rows, "equal")
        print(f"{'painting':<14} {'row':<14} {'style dist':>10} {'structure':>9} {'s/frame':>8} {'CPU s':>7} "
              f"{'final loss':>10}   vs arbitrary: style (<=0.9x)   vs now: CPU s  loss")
        for row in rows:
            seconds, cpu, loss = mean(row.seconds), mean(row.cpu), mean(row.losses)
            line = (f"{painting.stem:<14} {row.name:<14} {row.style:>10.4f} {row.structure:>9.3f} {seconds:>7.1f}s "
                    f"{cpu:>7.1f} {f'{loss:.3f}' if row.losses else '':>10}")
            if row is not arbitrary:
                line += f"   {ratio(row.style, arbitrary.style):>26}"
            if now and row.name in (ROWS["pyramid"], ROWS["equal"]):
                line += f"   {ratio(cpu, mean(now.cpu)):>11}  {ratio(loss, mean(now.losses)):>5}"
            if row is equal:
                line += f"   (reached now's loss on {row.reached}/{len(frames)} frames)"
            print(line, flush=True)
            bands.append(sheet.Band((f"{painting.stem}: {row.name}", f"structure {row.structure:.2f}",
                                     f"style {row.style:.3f}", f"{seconds:.1f} s/frame"),
                                    storage.read_rgb(painting), tuple(crop(o) for o in row.outputs)))
        if now and before:
            print(f"{painting.stem:<14} now vs before: style {ratio(now.style, before.style)}, structure "
                  f"{ratio(now.structure, before.structure)}, CPU s {ratio(mean(now.cpu), mean(before.cpu))} (the "
                  "final losses of before and now are of different objectives: the palette moves the content target)")
    contact_sheet(bands, args.sheet)
    print(f"contact sheet: {args.sheet} (source, arbitrary, then each gatys row; 320x180 crops at 1:1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
