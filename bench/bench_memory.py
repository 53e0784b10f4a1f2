"""Memory: peak resident memory of a real worker per engine and resolution, and tiled vs untiled.

    python bench/bench_memory.py [OUT_DIR] [--quick]

1. Instance-norm statistics for tiles (fast engine, Engstrom 'wave', a real photo at 1920x1080):
   PSNR against the untiled frame for each way of finding the statistics, and the seam ratio at the
   tile borders (mean |step| across a border line in 16-pixel blocks over the median step; the
   untiled frame's ratio at the same lines is the texture's own). Writes full-resolution crops
   around a tile border as PNG to OUT_DIR (default /tmp/vpipe-bench-memory).
2. Peak RSS (VmHWM) of `python -m pipeline.worker` stylizing one PNG frame, per engine at 640x360,
   1920x1080 and 3840x2160 (the photo upscaled), under the default budget and a small one; the RSS
   of the loaded worker, and the bytes per pixel above it (the figures in pipeline/resources.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from pipeline import resources, storage, tiles  # noqa: E402
from pipeline.executors.protocol import Kind, WorkerConfig, decode_event, encode_chunk, encode_config  # noqa: E402
from pipeline.frames import frame_name  # noqa: E402
from pipeline.metrics import psnr  # noqa: E402
from tests.helpers import cut_lines  # noqa: E402

WAVE = ASSETS / "models" / "lengstrom_fst" / "wave"
MAGENTA = ASSETS / "models" / "magenta_tflite"
SQUEEZENET = ASSETS / "models" / "squeezenet" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
PHOTO = ASSETS / "content" / "tubingen.jpg"
PAINTING = ASSETS / "styles" / "starry_night.jpg"
SIZES = {"640x360": (360, 640), "1080p": (1080, 1920), "4K": (2160, 3840)}


def photo(height: int, width: int) -> np.ndarray:
    """The photo cropped to the aspect ratio and resized (upscaled for 1080p and 4K)."""
    image = storage.read_rgb(PHOTO)
    h, w = image.shape[:2]
    crop = min(h, round(w * height / width))
    image = image[(h - crop) // 2:(h - crop) // 2 + crop]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if width < w else cv2.INTER_CUBIC)


def seam_ratio(image: np.ndarray, lines: list[int]) -> float:
    """Worst vertical line in `lines`: mean |step| across it in 16-pixel blocks over the median step."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    blocks = gray[: gray.shape[0] // 16 * 16].reshape(-1, 16, gray.shape[1]).mean(axis=1)
    steps = np.abs(np.diff(blocks, axis=1)).mean(axis=0)
    return float(max(steps[x - 1] for x in lines) / np.median(steps))


# ---------------------------------------------------------------- 1. statistics for tiles


def whole_frame(x: np.ndarray, w: list, decoder: str, fixed: list | None) -> tuple[np.ndarray, list]:
    """The net on a whole padded frame, normalized by `fixed` statistics (or its own); its moments."""
    import tensorflow as tf

    from pipeline.engines.fast import network
    from pipeline.engines.fast import tiles as fast_tiles

    net = fast_tiles.Net(w, decoder)
    measured: list = []
    y = tf.constant(x[None].astype(np.float32))
    skip = None
    for i, (up, stride, relu) in enumerate(net.kinds):
        if 3 <= i < 3 + 2 * net.blocks and (i - 3) % 2 == 0:
            skip = y
        y = network.conv(y, w[3 * i], up, stride)
        mean, var = tf.nn.moments(y, axes=[0, 1, 2])
        measured.append((mean.numpy().astype(np.float64), var.numpy().astype(np.float64)))
        mean, var = (mean, var) if fixed is None else (tf.constant(fixed[i][0], tf.float32), tf.constant(fixed[i][1], tf.float32))
        y = (y - mean) / tf.sqrt(var + network.EPS) * w[3 * i + 2] + w[3 * i + 1]
        y = tf.nn.relu(y) if relu else y
        if 3 <= i < 3 + 2 * net.blocks and (i - 3) % 2 == 1:
            y = y + skip
    return np.clip(np.round(np.tanh(y.numpy()[0]) * 150 + 127.5), 0, 255).astype(np.uint8), measured


def statistics(out_dir: Path, core: int = 512) -> None:
    import tensorflow as tf

    from pipeline.engines.fast import engine as fast
    from pipeline.engines.fast import padding
    from pipeline.engines.fast import tiles as fast_tiles

    tf.config.threading.set_intra_op_parallelism_threads(2)
    frame = photo(1080, 1920)
    engine = fast.load(WAVE, {})
    started = time.monotonic()
    untiled = engine.stylize([frame])[0]
    untiled_s = time.monotonic() - started
    padded, _ = padding.pad_to_multiple(frame, 4, padding.MARGIN)
    m = padding.MARGIN

    def crop(out: np.ndarray) -> np.ndarray:
        return out[m:m + 1080, m:m + 1920]

    rows = []
    started = time.monotonic()
    exact = fast_tiles.stylize(frame, fast_tiles.Net(engine.weights, engine.decoder), core)
    rows.append(("exact, stage by stage (kept)", exact, time.monotonic() - started))
    for factor in (2, 4):
        small = cv2.resize(frame, (1920 // factor, 1080 // factor), interpolation=cv2.INTER_AREA)
        _, stats = whole_frame(padding.pad_to_multiple(small, 4, m)[0], engine.weights, engine.decoder, None)
        out, measured = whole_frame(padded, engine.weights, engine.decoder, stats)
        rows.append((f"from a 1/{factor} downscaled copy", crop(out), float("nan")))
        if factor == 2:
            refined, _ = whole_frame(padded, engine.weights, engine.decoder, measured)
            rows.append(("  + one measuring pass (all layers at once)", crop(refined), float("nan")))

    def own(window: np.ndarray) -> np.ndarray:
        return engine.stylize([np.clip(np.round(window * 255), 0, 255).astype(np.uint8)])[0].astype(np.float32) / 255

    started = time.monotonic()
    local = tiles.tiled(frame.astype(np.float32) / 255, own, core + 2 * 64, 128)
    rows.append(("each tile its own (feathered 128 px)", np.clip(np.round(local * 255), 0, 255).astype(np.uint8),
                 time.monotonic() - started))
    layout = fast_tiles.Layout.plan(padded.shape[0] // 4, padded.shape[1] // 4, core // 4, fast_tiles.DECODER_MARGIN,
                                    fast_tiles.OVERLAP // 4, 1)
    lines = sorted({4 * x - m for x in layout.xs[1:]} | {4 * (x + layout.core[1]) - m for x in layout.xs[:-1]})
    local_lines = cut_lines(1920, core + 128, 128)
    print(f"\n1. Statistics for tiles: fast engine (wave), {PHOTO.name} at 1920x1080, cores of {core} px; "
          f"untiled {untiled_s:.1f} s; untiled seam ratio at the exact method's borders "
          f"{seam_ratio(untiled, lines):.2f}")
    print(f"  {'statistics':<46} {'PSNR dB':>8} {'max diff':>8} {'seam':>6} {'seconds':>8}")
    for name, out, seconds in rows:
        seam = seam_ratio(out, local_lines if name.startswith("each") else lines)
        print(f"  {name:<46} {psnr(out, untiled):8.2f} {int(np.abs(out.astype(int) - untiled).max()):8d} "
              f"{seam:6.2f} {seconds:8.1f}")
    out_dir.mkdir(parents=True, exist_ok=True)
    x0 = max(0, lines[0] - 256)
    for name, image in (("untiled", untiled), ("tiled_exact", exact), ("tiled_local", rows[-1][1])):
        storage.publish(out_dir / f"1080p_{name}_border_crop.png",
                        storage.encode(image[300:812, x0:x0 + 512], "png"))
    print(f"  crops around the tile border at x={lines[0]} (x {x0}..{x0 + 512}) in {out_dir}")


# ---------------------------------------------------------------- 2. peak RSS of a worker


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def worker_peak(engine: str, model: Path, options: dict, budget: int, frame: np.ndarray, work: Path) -> dict:
    """Run the real worker on one frame; its RSS once loaded, its peak RSS and the frame's seconds."""
    frames, styled = work / "frames", work / "styled"
    for folder in (frames, styled):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
    storage.publish(frames / frame_name(1, 6, "png"), storage.encode(frame, "png"))
    config = WorkerConfig(engine=engine, model=str(model), frames_dir=str(frames), styled_dir=str(styled),
                          name_width=6, ext="png", options={**options, "batch": 1}, threads=2, max_memory=budget)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(work / "worker.log", "ab"), text=True, env=env)
    assert proc.stdin and proc.stdout
    proc.stdin.write(encode_config(config))
    proc.stdin.flush()
    result: dict = {}
    for line in proc.stdout:
        event = decode_event(line, 0)
        if event is None:
            continue
        if event.kind == Kind.READY:
            result["loaded"] = status_kb(proc.pid, "VmRSS")
            proc.stdin.write(encode_chunk([1]))
            proc.stdin.flush()
        elif event.kind in (Kind.DONE, Kind.FAILED, Kind.FATAL):
            result.update(event.data, event=event.kind)
        elif event.kind == Kind.CHUNK_END:
            break
    result["peak"] = status_kb(proc.pid, "VmHWM")
    proc.stdin.close()
    proc.wait()
    return result


def save_border(styled: np.ndarray, core: int, path: Path) -> None:
    """A 512x512 full-resolution crop of a tiled frame around the first border between output cores."""
    from pipeline.engines.fast import padding
    from pipeline.engines.fast import tiles as fast_tiles

    h, w = styled.shape[:2]
    layout = fast_tiles.Layout.plan((h + 2 * padding.MARGIN + 3) // 4, (w + 2 * padding.MARGIN + 3) // 4, core // 4,
                                    fast_tiles.DECODER_MARGIN, fast_tiles.OVERLAP // 4, 1)
    middle = 4 * layout.xs[1] - padding.MARGIN + fast_tiles.OVERLAP // 2 if len(layout.xs) > 1 else w // 2
    top = max(0, 4 * layout.ys[1] - padding.MARGIN - 256) if len(layout.ys) > 1 else 0
    x0 = min(max(0, middle - 256), w - 512)
    storage.publish(path, storage.encode(styled[top:top + 512, x0:x0 + 512], "png"))
    print(f"  (crop of the tiled frame around the border at x={middle}: x {x0}..{x0 + 512}, y {top}..{top + 512}: {path})")


def peaks(work: Path, out_dir: Path, quick: bool) -> None:
    default = resources.default_budget(1, resources.available_memory())
    small = 2 * resources.GiB
    runs = [("fast", WAVE, {}, size, budget) for size in SIZES for budget in (default, small)]
    runs += [("arbitrary", MAGENTA, {"style_image": str(PAINTING)}, size, default) for size in SIZES]
    runs += [("gatys", SQUEEZENET, {"style_image": str(PAINTING), "net": "squeezenet", "iterations": 3}, size, default)
             for size in SIZES]
    if quick:
        runs = [r for r in runs if r[3] != "4K" or r[0] == "fast"]
    print(f"\n2. Peak RSS of a worker (one frame, 2 threads, fp32); default budget here {resources.human(default)} "
          f"(half of MemAvailable {resources.human(resources.available_memory() or 0)}, at most 8 GiB)")
    print(f"  {'engine':<10} {'frame':<8} {'budget':>9} {'loaded':>9} {'peak RSS':>9} {'B/px':>6} {'seconds':>8}  note")
    for engine, model, options, size, budget in runs:
        h, w = SIZES[size]
        try:
            resources.check_budget(engine, w, h, budget)
        except Exception as exc:  # the refusal is the result
            print(f"  {engine:<10} {size:<8} {resources.human(budget):>9} {'':>9} {'refused':>9} {'':>6} {'':>8}  {exc}")
            continue
        r = worker_peak(engine, model, options, budget, photo(h, w), work)
        extra = (r["peak"] - r["loaded"]) / (h * w)
        note = r.get("message", "") if r.get("event") != Kind.DONE else ""
        log = (work / "worker.log").read_text(errors="replace").splitlines()
        tiled = [line for line in log if "in tiles" in line]
        note = next((line.strip() for line in log if "on the TF graph" in line), note)
        if tiled:
            note = tiled[-1].strip()
            save_border(storage.read_rgb(work / "styled" / frame_name(1, 6, "png")), int(note.split("tiles of ")[1].split()[0]),
                        out_dir / f"{engine}_{size}_tiled_border_crop.png")
        print(f"  {engine:<10} {size:<8} {resources.human(budget):>9} {resources.human(r['loaded']):>9} "
              f"{resources.human(r['peak']):>9} {extra:6.0f} {r.get('seconds', float('nan')):8.1f}  {note}")
        (work / "worker.log").unlink(missing_ok=True)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    out_dir = Path(args[0]) if args else Path(tempfile.gettempdir()) / "vpipe-bench-memory"
    missing = [p for p in (WAVE, MAGENTA, SQUEEZENET, PHOTO, PAINTING) if not p.exists()]
    if missing:
        print(f"bench_memory: skipped, assets missing: {', '.join(map(str, missing))}")
        return 0
    statistics(out_dir)
    with tempfile.TemporaryDirectory() as work:
        peaks(Path(work), out_dir, quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
