"""One network of bench_fast.py in a process of its own, so no framework's thread pool or allocator
runs beside another's (a vpipe worker, too, runs one network per process).

    python bench/contender.py NAME MODEL_DIR INPUT.npy THREADS

Builds NAME's network for the (1, H, W, 3) float32 input, prints "ready" (or "skip: why"), then
answers each stdin line "run" or "save PATH" (the output, (H, W, 3), also written to PATH) with the
seconds that one forward pass took.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

Net = Callable[[np.ndarray], np.ndarray]
NAMES = ("vpipe auto", "vpipe fp32 (OpenVINO)", "vpipe bf16 (OpenVINO)", "vpipe fp32 (XNNPACK)", "vpipe fp32 (TF graph)",
         "vpipe bf16 (TF graph)", "plain TF2 fp32 (network.transform)", "OpenVINO bare fp32 (direct ONNX)",
         "OpenVINO bare bf16 (direct ONNX)", "onnxruntime (tf2onnx)", "onnxruntime (direct ONNX)", "OpenCV DNN (direct ONNX)")
NEEDS = {"onnxruntime (tf2onnx)": ("onnxruntime", "tf2onnx", "onnx"), "onnxruntime (direct ONNX)": ("onnxruntime", "onnx"),
         "OpenCV DNN (direct ONNX)": ("onnx",), "OpenVINO bare fp32 (direct ONNX)": ("openvino", "onnx"),
         "OpenVINO bare bf16 (direct ONNX)": ("openvino", "onnx"), "vpipe fp32 (OpenVINO)": ("openvino",),
         "vpipe bf16 (OpenVINO)": ("openvino",)}


def _tf(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _ort(model: bytes, threads: int) -> Net:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    nchw = len(session.get_inputs()[0].shape) == 4 and session.get_inputs()[0].shape[1] == 3
    if nchw:
        return lambda a: np.transpose(session.run(None, {name: a.transpose(0, 3, 1, 2).copy()})[0][0], (1, 2, 0))
    return lambda a: session.run(None, {name: a})[0][0]


def _openvino(model: bytes, hint: str, threads: int) -> Net:
    import tempfile

    from pipeline.engines import openvino_cpu

    ov = openvino_cpu.load()  # without its telemetry, as vpipe runs it

    with tempfile.NamedTemporaryFile(suffix=".onnx") as f:  # read_model takes a file for ONNX
        f.write(model)
        f.flush()
        read = ov.Core().read_model(f.name)
    request = ov.Core().compile_model(read, "CPU", {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads,
                                                     "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
    return lambda a: np.transpose(request.infer({0: a.transpose(0, 3, 1, 2).copy()})[0][0], (1, 2, 0))


def build(name: str, model: Path, x: np.ndarray, threads: int) -> Net:
    import fast_onnx

    from pipeline.engines.fast import engine as fast
    from pipeline.engines.fast import precision, weights

    arrays, decoder = weights.load_net(model)
    h, w = x.shape[1:3]
    if name == "vpipe auto":  # what a CPU worker runs: fast.load's choice
        chosen, backend = fast.choose("auto", False, precision.cpu_flags())
        if backend == "tf":
            _tf(threads)
        engine = fast.FastEngine(model, precision=chosen, backend=backend, threads=threads)
        print(f"vpipe auto = {chosen} ({backend})", file=sys.stderr, flush=True)
        return lambda a: np.asarray(engine._run(a))[0]
    if name.startswith("vpipe"):
        backend = {"OpenVINO": "openvino", "XNNPACK": "xnnpack"}.get(name.split("(")[1].rstrip(")"), "tf")
        if backend == "tf":
            _tf(threads)
        engine = fast.FastEngine(model, precision="bf16" if "bf16" in name else "fp32", backend=backend, threads=threads)
        return lambda a: np.asarray(engine._run(a))[0]
    if name.startswith("plain TF2"):
        _tf(threads)
        import tensorflow as tf

        from pipeline.engines.fast import network

        weights = [tf.constant(v) for v in arrays]
        plain = tf.function(lambda a: network.transform(a, weights, decoder))
        return lambda a: plain(a).numpy()[0]
    if name == "onnxruntime (tf2onnx)":
        _tf(threads)
        return _ort(fast_onnx.tf2onnx_model(arrays, decoder, h, w).SerializeToString(), threads)
    direct = fast_onnx.direct_model(arrays, h, w).SerializeToString()
    if name.startswith("OpenVINO bare"):  # the network straight from the weights, as OpenVINO's own user would run it
        return _openvino(direct, "bf16" if "bf16" in name else "f32", threads)
    if name == "onnxruntime (direct ONNX)":
        return _ort(direct, threads)
    import cv2

    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromONNX(np.frombuffer(direct, np.uint8))

    def opencv(a: np.ndarray) -> np.ndarray:
        net.setInput(a.transpose(0, 3, 1, 2).copy())
        return np.asarray(net.forward()[0].transpose(1, 2, 0))

    return opencv


def main() -> int:
    name, model, source, threads = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    missing = [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
    if missing:
        print(f"skip: {', '.join(missing)} not installed (pip install '.[bench]')", flush=True)
        return 0
    x = np.load(source)
    try:
        net = build(name, model, x, threads)
    except Exception as exc:  # a baseline that cannot be built is reported, not fatal
        print(f"skip: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
        return 0
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, path = line.strip().partition(" ")
        start = time.perf_counter()
        out = net(x)
        took = time.perf_counter() - start
        if command == "save":
            np.save(path, out)
        print(took, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
