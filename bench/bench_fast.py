"""`make bench`: the fast engine's network (Engstrom 'wave' weights) on the identical input through vpipe
(auto, each backend and precision), plain TF2, OpenVINO bare (the network straight from the weights),
onnxruntime and OpenCV DNN, each in its own process (bench/contender.py), interleaved in one run; its
FLOP limit on this machine; and vpipe split + stylize + assemble against bare network time plus raw
ffmpeg, on 30 and 120 frames (BENCH_E2E_FRAMES; `--no-temporal`, the bare network's work, with video
mode's stylize timed beside it). The CPU model and flags come first.

The machine is shared and noisy: min-of-N and ratios from the same run are what count. Baselines
whose packages are missing (pip install '.[bench]') are skipped with one line.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
WAVE = ASSETS / "models/lengstrom_fst/wave"
CLIPS = {"640x360": ASSETS / "video/slow_traffic_small.mp4", "1280x720": ASSETS / "video/cockatoo_yuv420.mp4"}
SIZES = os.environ.get("BENCH_SIZES", ",".join(CLIPS)).split(",")  # e.g. BENCH_SIZES=640x360
REPS = int(os.environ.get("BENCH_REPS", "5"))
E2E_FRAMES = [int(n) for n in os.environ.get("BENCH_E2E_FRAMES", "30,120").split(",") if n.strip() and int(n)]
E2E_ROUNDS = int(os.environ.get("BENCH_E2E_ROUNDS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", str(len(os.sched_getaffinity(0)))))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import contender  # noqa: E402
import fast_onnx  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline import video  # noqa: E402
from pipeline.engines import litert, openvino_cpu  # noqa: E402
from pipeline.engines.fast import engine as fast  # noqa: E402
from pipeline.engines.fast import padding, precision, weights  # noqa: E402
from pipeline.metrics import psnr  # noqa: E402

Net = Callable[[np.ndarray], np.ndarray]


def real_frame(clip: Path, index: int = 30) -> np.ndarray:
    capture = cv2.VideoCapture(str(clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"bench: frame {index} of {clip} does not decode")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class Contender:
    """One network in its own process (bench/contender.py), driven over stdin/stdout."""

    def __init__(self, name: str, x_path: Path) -> None:
        self.name = name
        self.process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "contender.py"), name, str(WAVE),
                                         str(x_path), str(THREADS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)

    def ready(self) -> str:
        """"ready", or why it was skipped."""
        assert self.process.stdout
        return self.process.stdout.readline().strip() or "skip: the process died while loading"

    def run(self, save: Path | None = None) -> float:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"save {save}\n" if save else "run\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: its process died")
        return float(line)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def cpu_line() -> str:
    """The CPU model and the flags that pick a backend or a precision here."""
    model = next((line.partition(":")[2].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    flags = precision.cpu_flags()
    shown = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                         "amx_int8") if f in flags]
    return f"CPU: {model}, {len(os.sched_getaffinity(0))} cores usable; flags: {' '.join(shown) or 'none of note'}"


def conv_peak(size: tuple[int, int]) -> dict[str, float]:
    """GFLOP/s of one 3x3 128->128 conv at the residual blocks' size: TF fp32 and bf16, XNNPACK fp32,
    OpenVINO fp32 and bf16."""
    h, w = size[0] // 4, size[1] // 4
    x = tf.random.uniform([1, h, w, 128])
    k = tf.random.uniform([3, 3, 128, 128]) * 0.01
    flop = 2.0 * h * w * 9 * 128 * 128
    runs: dict[str, Callable[[], object]] = {}
    for name, dtype in (("TF fp32", tf.float32), ("TF bf16", tf.bfloat16)):
        f = tf.function(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"))
        xa, ka = tf.cast(x, dtype), tf.cast(k, dtype)
        runs[name] = lambda f=f, xa=xa, ka=ka: f(xa, ka).numpy()
    concrete = tf.function(lambda a: tf.nn.conv2d(a, k, 1, "SAME")).get_concrete_function(tf.TensorSpec([1, h, w, 128]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite deprecation notices
        xnnpack = litert.interpreter(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert(), THREADS)
    xnnpack.set_tensor(xnnpack.get_input_details()[0]["index"], x.numpy())
    runs["XNNPACK fp32"] = xnnpack.invoke
    if openvino_cpu.available():
        ov = openvino_cpu.load()  # without its telemetry, as vpipe runs it
        import openvino.opset13 as ops

        param = ops.parameter([1, 128, h, w], np.float32)
        conv = ops.convolution(param, ops.constant(np.transpose(k.numpy(), (3, 2, 0, 1))), [1, 1], [1, 1], [1, 1], [1, 1])
        xn = np.ascontiguousarray(np.transpose(x.numpy(), (0, 3, 1, 2)))
        for hint in ("f32", "bf16"):
            request = ov.Core().compile_model(ov.Model([conv], [param]), "CPU", {
                "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": THREADS}).create_infer_request()
            runs[f"OpenVINO {hint.replace('f32', 'fp32')}"] = lambda r=request: r.infer({0: xn})
    best = {name: float("inf") for name in runs}
    for _ in range(REPS + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: flop / t / 1e9 for name, t in best.items()}


def network_bench(label: str, clip: Path, work: Path) -> dict[str, float]:
    arrays, _ = weights.load_net(WAVE)
    frame = real_frame(clip)
    x = padding.pad_to_multiple(frame, 4, padding.MARGIN)[0][None].astype(np.float32)
    gflop = fast_onnx.flops(arrays, *x.shape[1:3]) / 1e9
    print(f"\n== {label}: one real frame of {clip.name}, padded to {x.shape[2]}x{x.shape[1]} "
          f"({gflop:.1f} GFLOP of convs), {THREADS} threads, each network in its own process, "
          f"min of {REPS} interleaved runs")
    auto = fast.choose("auto", False, precision.cpu_flags())
    print(f"  vpipe auto on this CPU = {auto[0]} ({auto[1]})")
    np.save(work / "x.npy", x)
    contenders = [Contender(name, work / "x.npy") for name in contender.NAMES]
    try:
        live = []
        for c in contenders:
            state = c.ready()
            if state == "ready":
                live.append(c)
            else:
                print(f"  {c.name}: {state}")
        outputs = {}
        for c in live:
            c.run(work / f"{len(outputs)}.npy")
            outputs[c.name] = np.load(work / f"{len(outputs)}.npy")
        reference = outputs["vpipe fp32 (TF graph)"]
        best = {c.name: float("inf") for c in live}
        for _ in range(REPS):
            for c in live:
                best[c.name] = min(best[c.name], c.run())
    finally:
        for c in contenders:
            c.close()
    ours = best["vpipe auto"]
    for name, took in best.items():
        print(f"  {name:<36} {took * 1e3:8.1f} ms/frame  PSNR vs vpipe fp32 {psnr(reference, outputs[name]):5.1f} dB  "
              f"{took / ours:5.2f}x vpipe auto's time")
    peaks = conv_peak(x.shape[1:3])
    native = "bf16 or fp32" if precision.cpu_flags() & precision.BF16_FLAGS else "fp32"
    peak = max(v for k, v in peaks.items() if "bf16" not in k or native != "fp32")
    print("  single conv peak: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    limit = gflop / peak
    print(f"  FLOP limit at the best native ({native}) conv peak: {limit * 1e3:.0f} ms; vpipe auto {ours * 1e3:.0f} ms = "
          f"{ours / limit:.2f}x the limit (target <= 1.2)")
    bare = min((v for k, v in best.items() if k.startswith("OpenVINO bare")), default=None)
    if bare is not None:
        print(f"  vpipe auto vs OpenVINO bare (its faster precision): {bare / ours:.2f}x its speed")
    for name, target in (("OpenCV DNN (direct ONNX)", 2.0), ("onnxruntime (direct ONNX)", 2.0), ("onnxruntime (tf2onnx)", 2.0)):
        if name in best:
            speedup = best[name] / ours
            print(f"  vpipe auto vs {name}: {speedup:.2f}x faster (target >= {target}) {'ok' if speedup >= target else 'MISSED'}")
    return best


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def end_to_end(work: Path, n: int, network: dict[str, float]) -> None:
    """vpipe split + stylize + assemble vs raw ffmpeg split + bare network + raw ffmpeg encode of the same
    styled frames (x264 works harder on styled frames than on the source), N frames,
    alternating for E2E_ROUNDS rounds (the shared machine's speed drifts by tens of percent over
    minutes): the ratio of the best round of each, and the median of the rounds' own ratios (each
    round's two pipelines ran back to back, on the same machine speed)."""
    ff = video.tools().ffmpeg
    work = work / f"e2e{n}"
    work.mkdir()
    clip = work / "clip.mp4"
    subprocess.run([ff, "-v", "error", "-y", "-i", str(CLIPS["640x360"]), "-frames:v", str(n), "-c:v", "libx264",
                    "-crf", "18", "-c:a", "aac", "-shortest", str(clip)], check=True)
    env = {**os.environ, "VPIPE_JOBS_DIR": str(work / "jobs"), "VPIPE_MODELS_DIR": str(ASSETS / "models"),
           "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: a wheel's modules are compiled once, not at every start
    vpipe = [sys.executable, "-m", "pipeline.cli"]
    chosen, backend = fast.choose("auto", False, precision.cpu_flags())
    engine = fast.FastEngine(WAVE, precision=chosen, backend=backend, threads=THREADS)
    print(f"\n== end to end, {n} frames of {CLIPS['640x360'].name} (640x360), fast engine, wave weights, "
          f"{E2E_ROUNDS} alternating rounds")
    bare_best: dict[str, float] = {}
    ours_best: dict[str, float] = {}
    video_best = float("inf")
    ratios: list[float] = []
    for r in range(E2E_ROUNDS):
        raw = work / f"raw{r}"
        raw.mkdir()
        bare = {"split": timed([ff, "-v", "error", "-i", str(clip), "-map", "0:v:0", "-pix_fmt", "rgb24",
                                "-compression_level", "1", "-start_number", "1", str(raw / "%06d.png")])}
        frames = [cv2.cvtColor(cv2.imread(str(raw / f"{i:06d}.png")), cv2.COLOR_BGR2RGB) for i in range(1, n + 1)]
        engine.stylize(frames[:1])
        start = time.perf_counter()
        styled = [engine.stylize([f])[0] for f in frames]
        bare["network"] = time.perf_counter() - start
        for i, image in enumerate(styled, 1):  # untimed: the bare pipeline gets its frames to ffmpeg for free
            cv2.imwrite(str(raw / f"s{i:06d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        bare["encode"] = timed([ff, "-v", "error", "-y", "-framerate", "30000/1001", "-start_number", "1", "-i",
                                str(raw / "s%06d.png"), "-i", str(clip), "-map", "0:v:0", "-map", "1:a", "-c:v", "libx264",
                                "-crf", "18", "-preset", "medium", "-pix_fmt", "yuv420p", "-c:a", "copy",
                                str(work / f"raw{r}.mp4")])
        ours = {"split": timed([*vpipe, "split", str(clip), "--job", f"e{r}"], env)}
        # --no-temporal: the same work as the bare network; video mode (the default) is timed beside it
        ours["stylize"] = timed([*vpipe, "stylize", "--job", f"e{r}", "--style", "wave", "--no-temporal"], env)
        ours["assemble"] = timed([*vpipe, "assemble", "--job", f"e{r}", "-o", str(work / f"e{r}.mp4")], env)
        timed([*vpipe, "split", str(clip), "--job", f"v{r}"], env)
        video_mode = timed([*vpipe, "stylize", "--job", f"v{r}", "--style", "wave"], env)
        video_best = min(video_best, video_mode)
        ratios.append(sum(ours.values()) / sum(bare.values()))
        print(f"  round {r + 1}: vpipe {sum(ours.values()):.1f} s, bare {sum(bare.values()):.1f} s, ratio {ratios[-1]:.2f}")
        if not ours_best or sum(ours.values()) < sum(ours_best.values()):
            ours_best = ours
        if not bare_best or sum(bare.values()) < sum(bare_best.values()):
            bare_best = bare
    total, base = sum(ours_best.values()), sum(bare_best.values())
    print(f"  vpipe (best round): split {ours_best['split']:.1f} s + stylize {ours_best['stylize']:.1f} s + assemble "
          f"{ours_best['assemble']:.1f} s = {total:.1f} s ({n / total:.2f} frames/s)")
    print(f"  bare (best round):  ffmpeg split {bare_best['split']:.1f} s + network {bare_best['network']:.1f} s ({chosen} "
          f"{backend}, {THREADS} threads, {bare_best['network'] / n * 1e3:.0f} ms/frame, model loaded) + ffmpeg encode "
          f"{bare_best['encode']:.1f} s = {base:.1f} s")
    ratio = total / base
    print(f"  ratio {ratio:.2f} (target <= 1.15) {'ok' if ratio <= 1.15 else 'MISSED'}; median of the rounds' ratios "
          f"{statistics.median(ratios):.2f} {'ok' if statistics.median(ratios) <= 1.15 else 'MISSED'}")
    per_frame = ours_best["stylize"] / n
    print(f"  vpipe stylize per frame {per_frame * 1e3:.0f} ms (worker start-up included) against the bare network "
          f"{bare_best['network'] / n * 1e3:.0f} ms: {bare_best['network'] / n / per_frame:.2f}x its speed (target >= 0.95)")
    print(f"  vpipe stylize in video mode (the default: flow-guided blend) {video_best / n * 1e3:.0f} ms per frame, "
          f"{video_best / ours_best['stylize']:.2f}x the time of --no-temporal")
    for name in ("onnxruntime (direct ONNX)", "onnxruntime (tf2onnx)"):
        if name in network:
            print(f"  vpipe stylize per frame vs {name} alone ({network[name] * 1e3:.0f} ms, the network run above): "
                  f"{network[name] / per_frame:.2f}x faster (target >= 2)")


def main() -> int:
    missing = [p for p in (WAVE, *CLIPS.values()) if not p.exists()]
    if missing:
        print(f"bench_fast: needs {', '.join(map(str, missing))} (the ../shared/assets folder)")
        return 1
    print(cpu_line())
    chosen, backend = fast.choose("auto", False, precision.cpu_flags())
    print(f"vpipe auto here: {chosen} on {backend}" + (f" (openvino {__import__('openvino').__version__})"
                                                       if openvino_cpu.available() else " (openvino not installed)"))
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    work = Path(tempfile.mkdtemp(prefix="vpipe-bench-fast-"))
    try:
        network: dict[str, float] = {}
        for label, clip in CLIPS.items():
            if label not in SIZES:
                continue
            folder = work / label
            folder.mkdir()
            best = network_bench(label, clip, folder)
            network = network or best  # the first size's (640x360, the end-to-end clip's size)
        for n in E2E_FRAMES:
            end_to_end(work, n, network)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
