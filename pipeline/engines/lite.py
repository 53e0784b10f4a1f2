"""TF Lite models run by LiteRT's XNNPACK kernels, without importing TensorFlow in the worker.

- `interpreter`: a .tflite file or flatbuffer -> an interpreter, from LiteRT (the ai-edge-litert
  package) where it is installed, else the copy TensorFlow still ships.
- `Runner`: one net, re-planned for each new input shape.
- `fast_runner`: the fast engine's inference net (`fast_net.network`) as a Runner. Converting needs
  TensorFlow and takes seconds, so it is done once per weights, decoder and `fast_net` source, and
  kept in the user cache: a worker that finds it there starts without importing TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import storage
from pipeline.engines import fast_spec
from pipeline.errors import ModelError

FAST_NET_SOURCE = Path(__file__).with_name("fast_net.py")  # its text is part of the cache key


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vpipe" / "tflite"


def interpreter(model: Path | bytes, threads: int = 0, allocate: bool = True) -> Any:
    """An interpreter for a .tflite file or flatbuffer, allocated for its stored input shapes unless
    `allocate` is False (dynamic sizes); a bad model is a one-line ModelError."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    source = {"model_path": str(model)} if isinstance(model, Path) else {"model_content": model}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF 2.20+ deprecation notice for tf.lite.Interpreter
        try:
            result = Interpreter(**source, num_threads=threads or None)
            if allocate:
                result.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            where = model if isinstance(model, Path) else "the converted fast net"
            raise ModelError(f"model file {where} is not a usable TF Lite model ({exc})") from exc
    return result


def fast_key(arrays: Sequence[np.ndarray], decoder: str, spec: fast_spec.Spec | None = None) -> str:
    """What the converted net depends on: the weights, the decoder kind, the spec and the code that builds it."""
    digest = hashlib.sha256(decoder.encode() + FAST_NET_SOURCE.read_bytes())
    if spec is not None and not spec.default:
        digest.update(spec.key().encode() + Path(fast_spec.__file__).read_bytes())
    for a in arrays:
        digest.update(str(a.shape).encode())
        digest.update(np.ascontiguousarray(a, np.float32).tobytes())
    return digest.hexdigest()[:32]


def convert_fast(arrays: Sequence[np.ndarray], decoder: str, spec: fast_spec.Spec | None = None) -> bytes:
    """The fp32 inference net with dynamic frame sizes as a flatbuffer (imports TensorFlow)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from pipeline.engines import fast_net

    owner = tf.Module()  # the converter wants the object that owns the function (else it logs a warning)
    owner.net = tf.function(fast_net.network(arrays, decoder, lite=True, spec=spec))
    concrete = owner.net.get_concrete_function(*fast_net.SIGNATURE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF 2.20+ deprecation notices for tf.lite
        blob: bytes = tf.lite.TFLiteConverter.from_concrete_functions([concrete], owner).convert()
    return blob


class Runner:
    """One single-input, single-output net; a new input shape only re-plans the buffers."""

    def __init__(self, model: Path | bytes, threads: int = 0) -> None:
        self._interpreter = interpreter(model, threads, allocate=False)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape: tuple[int, ...] | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, np.float32)
        if batch.shape != self._shape:
            self._interpreter.resize_tensor_input(self._input, list(batch.shape), strict=False)
            self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        result: np.ndarray = self._interpreter.get_tensor(self._output)
        return result


def fast_runner(arrays: Sequence[np.ndarray], decoder: str, threads: int = 0, cache: Path | None = None,
                spec: fast_spec.Spec | None = None) -> Runner:
    """The fast net from the cache; else (not there, or unusable) converted now and cached with
    `storage.publish`, so a crash never leaves a partial file. An unwritable cache costs only time."""
    path = (cache or cache_dir()) / f"fast-{fast_key(arrays, decoder, spec)}.tflite"
    try:
        return Runner(path.read_bytes(), threads)
    except (OSError, ModelError):
        pass
    blob = convert_fast(arrays, decoder, spec)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.publish(path, blob)
    except OSError as exc:
        print(f"fast engine: not caching the converted net in {path.parent} ({exc.strerror or exc})",
              file=sys.stderr, flush=True)
    return Runner(blob, threads)
