"""`make bench`: a worker's start-up to its first frame, per engine and backend.

Each row starts the real worker (`python -m pipeline.worker`, 2 threads, a 640x360 frame), sends one
frame and times spawn -> `ready` (engine loaded) -> the frame's `done`; min of ROUNDS interleaved
rounds (the machine is shared and noisy). The fast engine's converted net comes from the user cache
as in any run after the first; the first ever (TensorFlow converts it, OpenVINO compiles it) is its own
row. Whether the worker imported TensorFlow is shown per row.
"""

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
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from pipeline import storage  # noqa: E402
from pipeline.engines import openvino_cpu  # noqa: E402
from pipeline.executors.protocol import Kind, WorkerConfig, decode_event, encode_chunk, encode_config  # noqa: E402
from pipeline.frames import frame_name  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WAVE = ASSETS / "models/lengstrom_fst/wave"
MAGENTA = ASSETS / "models/magenta_tflite"
SQUEEZENET = ASSETS / "models/squeezenet/squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
PAINTING = ASSETS / "styles/starry_night.jpg"
CLIP = ASSETS / "video/slow_traffic_small.mp4"
WATCH = ROOT / "tests" / "fixtures" / "import_watch"  # a sitecustomize that logs each tensorflow import


def rows() -> list[tuple[str, str, Path, dict[str, object], dict[str, str]]]:
    """(label, engine, model, options, extra environment)."""
    out = [(f"fast, {b}", "fast", WAVE, {}, {"VPIPE_FAST_BACKEND": b}) for b in ("openvino", "xnnpack", "tf")
           if b != "openvino" or openvino_cpu.available()]
    out.append(("fast, auto", "fast", WAVE, {}, {}))
    transfer = "OpenVINO" if openvino_cpu.available() else "LiteRT"
    out.append((f"arbitrary (transfer net on {transfer})", "arbitrary", MAGENTA, {"style_image": str(PAINTING)}, {}))
    out.append(("gatys (squeezenet, 3 iterations)", "gatys", SQUEEZENET,
                {"style_image": str(PAINTING), "net": "squeezenet", "iterations": 3}, {}))
    return out


def first_frame(engine: str, model: Path, options: dict[str, object], env: dict[str, str], work: Path) -> dict[str, float]:
    """Seconds from spawning a worker to `ready` and to its first frame's `done`; the frame's own seconds."""
    styled, log = work / "styled", work / "imports.log"
    log.unlink(missing_ok=True)
    shutil.rmtree(styled, ignore_errors=True)
    styled.mkdir()
    config = WorkerConfig(engine=engine, model=str(model), frames_dir=str(work / "frames"), styled_dir=str(styled),
                          name_width=6, ext="png", options={**options, "batch": 1}, threads=2)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**env, "VPIPE_TEST_IMPORT_LOG": str(log)})
    assert proc.stdin and proc.stdout
    proc.stdin.write(encode_config(config) + encode_chunk([1]))
    proc.stdin.flush()
    result: dict[str, float] = {}
    for line in proc.stdout:
        event = decode_event(line, 0)
        if event is None:
            continue
        if event.kind == Kind.READY:
            result["ready"] = time.perf_counter() - start
        elif event.kind == Kind.DONE:
            result["done"] = time.perf_counter() - start
            result["frame"] = float(event.data.get("seconds", 0.0))
        elif event.kind in (Kind.FAILED, Kind.FATAL):
            raise SystemExit(f"bench_startup: {engine}: {event.data}")
        elif event.kind == Kind.CHUNK_END:
            break
    proc.stdin.close()
    proc.stdout.close()
    proc.wait()
    result["tf"] = float("tensorflow" in log.read_text())
    return result


def main() -> int:
    missing = [p for p in (WAVE, MAGENTA, SQUEEZENET, PAINTING, CLIP) if not p.exists()]
    if missing:
        print(f"bench_startup: needs {', '.join(map(str, missing))} (the ../shared/assets folder)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="vpipe-bench-startup-"))
    try:
        (work / "frames").mkdir()
        from pipeline import video

        still = work / "still.png"
        subprocess.run([video.tools().ffmpeg, "-v", "error", "-ss", "1", "-i", str(CLIP), "-frames:v", "1", str(still)],
                       check=True)
        storage.publish(work / "frames" / frame_name(1, 6, "png"), still.read_bytes())
        base = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(WATCH)]), "CUDA_VISIBLE_DEVICES": "-1",
                "TF_CPP_MIN_LOG_LEVEL": "2"}
        print(f"\n== worker start-up to first frame: 2 threads, one 640x360 frame, min of {ROUNDS} interleaved rounds")
        print(f"  {'engine, backend':<40} {'to ready':>9} {'to frame':>9} {'the frame':>10} {'TF imported':>12}")
        cold = {**base, "XDG_CACHE_HOME": str(work / "cold-cache"), "VPIPE_FAST_BACKEND": "openvino"}
        if openvino_cpu.available():
            r = first_frame("fast", WAVE, {}, cold, work)
            print(f"  {'fast, openvino, first ever (convert+compile)':<40} {r['ready']:8.2f}s {r['done']:8.2f}s "
                  f"{r['frame']:9.2f}s {'yes' if r['tf'] else 'no':>12}")
        best: dict[str, dict[str, float]] = {}
        table = rows()
        for _ in range(ROUNDS):
            for label, engine, model, options, extra in table:
                r = first_frame(engine, model, options, {**base, **extra}, work)
                if label not in best or r["done"] < best[label]["done"]:
                    best[label] = r
        for label, *_ in table:
            r = best[label]
            print(f"  {label:<40} {r['ready']:8.2f}s {r['done']:8.2f}s {r['frame']:9.2f}s {'yes' if r['tf'] else 'no':>12}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
