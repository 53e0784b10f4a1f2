"""The arbitrary engine: tiles vs guided upsample, int8 vs f16 transfer net, on the real assets.

    python bench/bench_arbitrary.py [OUT_DIR]

For each content image (a 640x360 traffic frame, a 1080p frame, two photos) and painting it
writes side-by-side PNGs (tiles | guided upsample | plain bicubic upsample) and prints per mode:
seconds per frame, seam ratio (the worst line where windows meet: mean |step| across it in 16-pixel
blocks, over the median step; 1.0 = no seam; the hard-cut variant shows what a seam scores), sharpness (mean
|Laplacian|, relative to the source frame) and the Gram style loss to the painting (SqueezeNet).
Then seconds per 640x360 frame for each transfer net and their mean difference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VPIPE_MODELS_DIR", str(ASSETS / "models"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline import metrics, storage, tiles, video  # noqa: E402
from pipeline.engines import arbitrary  # noqa: E402
from tests.helpers import cut_lines  # noqa: E402

MAGENTA = ASSETS / "models" / "magenta_tflite"


def frame_of(clip: Path, second: float, out: Path) -> np.ndarray:
    subprocess.run([video.tools().ffmpeg, "-v", "error", "-y", "-ss", str(second), "-i", str(clip),
                    "-frames:v", "1", str(out)], check=True)
    return storage.read_rgb(out)


def seam_ratio(image: np.ndarray) -> float:
    """Worst line where windows meet, both directions: mean |step| across it in 16-pixel blocks along
    it (a tone shift along a seam adds up, texture averages out), over the median step. ~1: no seam."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    worst = float("nan")
    for plane in (gray, gray.T):
        lines = cut_lines(plane.shape[1], arbitrary.TILE, arbitrary.OVERLAP)
        if not lines:
            continue
        blocks = plane[: plane.shape[0] // 16 * 16].reshape(-1, 16, plane.shape[1]).mean(axis=1)
        steps = np.abs(np.diff(blocks, axis=1)).mean(axis=0)
        ratio = float(max(steps[x - 1] for x in lines) / np.median(steps))
        worst = ratio if np.isnan(worst) else max(worst, ratio)
    return worst


def sharpness(image: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F)).mean())


def timed(engine: arbitrary.ArbitraryEngine, frame: np.ndarray, repeat: int = 2) -> tuple[np.ndarray, float]:
    """The output and the fastest of `repeat` timed runs (after a warm-up): robust to a busy machine."""
    out = engine.stylize([frame])[0]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        engine.stylize([frame])
        best = min(best, time.perf_counter() - started)
    return out, best


def window_net(engine: arbitrary.ArbitraryEngine) -> tiles.Network:
    return lambda window: engine.transfer(content_image=window[None], mobilenet=engine.style_vector)[0]


def bicubic(engine: arbitrary.ArbitraryEngine, frame: np.ndarray) -> np.ndarray:
    """The naive baseline: one fitted window, plain bicubic back up."""
    small = tiles.fit(frame.astype(np.float32) / 255.0, arbitrary.TILE)
    padded, (top, left) = tiles.pad_to(small, arbitrary.TILE, arbitrary.TILE)
    out = engine.transfer(content_image=padded[None], mobilenet=engine.style_vector)[0]
    out = out[top:top + small.shape[0], left:left + small.shape[1]]
    up = cv2.resize(out, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.round(up * 255), 0, 255).astype(np.uint8)


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="bench_arbitrary_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = os.cpu_count() or 1
    contents = {
        "traffic_640x360": frame_of(ASSETS / "video/slow_traffic_small.mp4", 10, out_dir / "traffic.png"),
        "bokeh_1920x1080": frame_of(ASSETS / "video/video_for_blend_modes.mp4", 3, out_dir / "bokeh.png"),
        "chicago_712x474": storage.read_rgb(ASSETS / "content/chicago.jpg"),
        "tubingen_1024x768": storage.read_rgb(ASSETS / "content/tubingen.jpg"),
    }
    paintings = ["starry_night", "the_scream"]
    print(f"{'content':<18} {'painting':<13} {'mode':<9} {'s/frame':>8} {'seam':>6} {'sharp':>6} {'style':>7}")
    for painting in paintings:
        style_path = ASSETS / "styles" / f"{painting}.jpg"
        style = storage.read_rgb(style_path)
        engines = {mode: arbitrary.ArbitraryEngine(MAGENTA, style, mode=mode, threads=threads)
                   for mode in arbitrary.MODES}
        for label, frame in contents.items():
            results: dict[str, tuple[np.ndarray, float]] = {m: timed(e, frame, 1) for m, e in engines.items()}
            hard = tiles.tiled(frame.astype(np.float32) / 255, window_net(engines["tiles"]), arbitrary.TILE,
                               arbitrary.OVERLAP, feather=False)
            results["hardcut"] = (np.clip(np.round(hard * 255), 0, 255).astype(np.uint8), float("nan"))
            results["bicubic"] = (bicubic(engines["tiles"], frame), float("nan"))
            measure = [cv2.resize(r[0], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
                       if max(frame.shape) > 1000 else r[0] for r in results.values()]
            losses = metrics.style_distance(style_path, measure)
            base = sharpness(frame)
            for (mode, (image, seconds)), loss in zip(results.items(), losses, strict=True):
                print(f"{label:<18} {painting:<13} {mode:<9} {seconds:>8.2f} {seam_ratio(image):>6.2f} "
                      f"{sharpness(image) / base:>6.2f} {loss:>7.3f}")
            sheet = np.hstack([results["tiles"][0], results["upsample"][0], results["bicubic"][0]])
            cv2.imwrite(str(out_dir / f"{label}_{painting}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(out_dir / f"{label}_{painting}_hardcut.png"),
                        cv2.cvtColor(results["hardcut"][0], cv2.COLOR_RGB2BGR))
    style = storage.read_rgb(ASSETS / "styles" / "starry_night.jpg")
    frame = contents["traffic_640x360"]
    outputs = {}
    for transfer in arbitrary.TRANSFER:
        for n in (1, threads):
            engine = arbitrary.ArbitraryEngine(MAGENTA, style, transfer=transfer, threads=n)
            outputs[transfer], seconds = timed(engine, frame, 5)
            upsample = timed(arbitrary.ArbitraryEngine(MAGENTA, style, transfer=transfer, threads=n, mode="upsample"),
                             frame, 5)[1]
            print(f"transfer {transfer:<5} threads {n}: {seconds:.3f} s per 640x360 frame with tiles (2 windows), "
                  f"{upsample:.3f} s with upsample")
    diff = np.abs(outputs["f16"].astype(np.int16) - outputs["int8"]).astype(np.float32)
    print(f"int8 vs f16 output: mean |diff| {diff.mean():.2f} levels, 99th percentile {np.percentile(diff, 99):.0f}")
    print(f"images in {out_dir}")


if __name__ == "__main__":
    main()
