"""`make bench` (the look): how our styles look beside the arbitrary engine on the same painting.

For each style (default: every style in styles/ whose model vpipe trained, i.e. that names a training
painting) and, as its baseline, the arbitrary engine on that painting, on the same frames of real footage
that no style was trained on (traffic, an animal, a sky with an airliner):
- style kept: Gram distance to the painting (SqueezeNet, as `vpipe metrics`), lower is more styled;
- structure kept: outlines of the styled frame vs the source's (metrics.structure; 1 = all kept);
- E_warp: flicker over runs of consecutive frames (Lai et al.; lower is steadier), per frame, no blend;
- speed: seconds per frame at 640x360 and at 1920x1080, the two engines interleaved, best of `--rounds`.
Each row is printed beside its baseline with the ratios the targets are stated in, and a contact sheet
(source, then each engine, at 1:1 crops) is written to bench/out/look.png. `--style NAME` (repeatable)
picks styles, third-party ones included; `--baseline none` skips the arbitrary rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
os.environ.setdefault("VPIPE_MODELS_DIR", str(ASSETS / "models"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from pipeline import metrics, sheet, storage, styles, video  # noqa: E402
from pipeline.engines.base import Engine  # noqa: E402

# Footage no shipped style was trained on (train-style used mmaction2_*, video_for_blend_modes and content/),
# and the times of the runs of consecutive frames taken from each.
JUDGE_CLIPS = {"traffic": ("slow_traffic_small.mp4", (3.0, 16.0)), "animal": ("cockatoo_yuv420.mp4", (2.0, 9.0)),
               "sky": ("video_with_failing_audio.mp4", (2.0, 7.0))}
RUN = 4  # consecutive frames per run (E_warp); their first frame also goes to the sheet
OUT = ROOT / "bench" / "out"


@dataclass
class Row:
    name: str
    painting: Path
    engine: Engine
    outputs: list[np.ndarray]
    style: float = 0.0
    structure: float = 0.0
    warp: float = 0.0
    speed: dict[str, float] | None = None


def judge_runs(length: int = RUN, per_clip: int | None = None) -> list[list[np.ndarray]]:
    """Runs of `length` consecutive frames (at most 640 px) from each judge clip, at its first `per_clip`
    start times (default all)."""
    runs = []
    for clip, starts in JUDGE_CLIPS.values():
        source = ASSETS / "video" / clip
        period = 1 / Fraction(video.probe(source).rate)
        for start in starts[:per_clip]:  # mid-frame times, so each seek lands on the next coded frame
            runs.append(video.frames_at(source, [start + float((k + 0.5) * period) for k in range(length)],
                                        metrics.MAX_SIDE))
    return runs


def painting_of(style: styles.Style) -> Path:
    """The painting a style stands for: the full one it was trained on where the assets have it, else its copy."""
    config = styles.styles_dir() / style.name / "style.toml"
    data = tomllib.loads(config.read_text()) if config.is_file() else {}
    trained_on = ASSETS / "styles" / str(data.get("training", {}).get("painting", "-"))
    if trained_on.is_file():
        return trained_on
    if style.reference is None:
        raise SystemExit(f"bench-look: style {style.name} names no painting to compare against")
    return style.reference


def seconds_per_frame(rows: list[Row], sizes: dict[str, tuple[int, int]], rounds: int) -> None:
    """The best of `rounds` interleaved passes per size (the least disturbed by the shared machine)."""
    rng = np.random.default_rng(0)
    for label, (w, h) in sizes.items():
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        best = dict.fromkeys(range(len(rows)), float("inf"))
        for row in rows:
            row.engine.stylize([frame])  # warm up (traces, tiles)
        for _ in range(rounds):
            for i, row in enumerate(rows):  # interleaved: each sees the same machine load
                started = time.perf_counter()
                row.engine.stylize([frame])
                best[i] = min(best[i], time.perf_counter() - started)
        for i, row in enumerate(rows):
            row.speed = {**(row.speed or {}), label: best[i]}


def judge(rows: list[Row], runs: list[list[np.ndarray]]) -> None:
    frames = [f for run in runs for f in run]
    for row in rows:
        row.outputs = [row.engine.stylize([f])[0] for f in frames]
        row.structure = float(np.mean([metrics.structure(o, f) for o, f in zip(row.outputs, frames, strict=True)]))
        styled = iter(row.outputs)
        row.warp = float(np.mean([metrics.warping_error([next(styled) for _ in run], run) for run in runs]))
        row.style = float(np.mean(metrics.style_distance(row.painting, row.outputs[::2])))


def contact_sheet(rows: list[Row], runs: list[list[np.ndarray]], path: Path) -> None:
    """Source and every row, a 320x180 crop at 1:1 from the centre of each run's first frame."""
    def crop(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        top, left = max(0, (h - 180) // 2), max(0, (w - 320) // 2)
        return image[top:top + 180, left:left + 320]

    firsts = [k * RUN for k in range(len(runs))]
    bands = [sheet.Band(("source", "1:1 crops"), None, tuple(crop(run[0]) for run in runs))]
    for row in rows:
        bands.append(sheet.Band((row.name, f"structure {row.structure:.2f}", f"style {row.style:.3f}"),
                                storage.read_rgb(row.painting), tuple(crop(row.outputs[i]) for i in firsts)))
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.publish(path, storage.encode(sheet.layout(bands, 320 / 180), "png"))


def load(name: str, baseline: bool) -> list[Row]:
    style = styles.resolve(name, None)
    painting = painting_of(style)
    out = [Row(name, painting, sheet.load_here(style, style.params), [])]
    if baseline:
        arbitrary = styles.resolve(str(painting), "arbitrary")
        out.append(Row(f"arbitrary:{painting.stem}", painting, sheet.load_here(arbitrary, {}), []))
    return out


def own_styles() -> list[str]:
    """Styles whose model vpipe trained (their style.toml has a [training] table)."""
    names = []
    for name in styles.available():
        data = tomllib.loads((styles.styles_dir() / name / "style.toml").read_text())
        if "training" in data:
            names.append(name)
    return names


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "an unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "an unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return f"{name} ({', '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags)})"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", action="append", help="a style (default: every style vpipe trained)")
    parser.add_argument("--baseline", choices=("arbitrary", "none"), default="arbitrary")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per size (the best counts)")
    parser.add_argument("--sheet", type=Path, default=OUT / "look.png")
    args = parser.parse_args()
    missing = [p for p in (ASSETS / "video", ASSETS / "models" / "magenta_tflite") if not p.is_dir()]
    if missing:
        print(f"bench-look: needs {missing[0]} (the ../shared/assets folder)")
        return 1
    print(f"bench-look on {cpu_model()}, {os.cpu_count()} cores")
    runs = judge_runs()
    print(f"frames: {len(runs)} runs of {RUN} consecutive frames from {', '.join(JUDGE_CLIPS)} (not training footage)")
    print(f"{'style':<28} {'style dist':>10} {'structure':>9} {'E_warp':>8} {'640x360':>9} {'1080p':>8}   "
          "vs arbitrary: style (<=1.1x)  structure (>=0.95x)  E_warp (<=0.5x)  faster 640 (>=1.5x)  1080 (>=3x)")
    rows: list[Row] = []
    for name in args.style or own_styles():
        pair = load(name, args.baseline == "arbitrary")
        judge(pair, runs)
        seconds_per_frame(pair, {"640x360": (640, 360), "1080p": (1920, 1080)}, args.rounds)
        for row in pair:
            speed = row.speed or {}
            line = (f"{row.name:<28} {row.style:>10.4f} {row.structure:>9.3f} {row.warp:>8.5f} "
                    f"{speed['640x360']:>8.3f}s {speed['1080p']:>7.2f}s")
            if row is pair[0] and len(pair) > 1:
                base = pair[1]
                bs = base.speed or {}
                line += (f"   {ratio(row.style, base.style):>6}  {ratio(row.structure, base.structure):>17}  "
                         f"{ratio(row.warp, base.warp):>14}  {ratio(bs['640x360'], speed['640x360']):>17}  "
                         f"{ratio(bs['1080p'], speed['1080p']):>11}")
            print(line, flush=True)
        rows += pair
    contact_sheet(rows, runs, args.sheet)
    print(f"contact sheet: {args.sheet} (source, then each row, 320x180 crops at 1:1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
