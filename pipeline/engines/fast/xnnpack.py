"""The fast engine's converted net: its inference net (`network.network`) as TF Lite, run by LiteRT's
XNNPACK kernels ("xnnpack") or by OpenVINO's CPU plugin, which reads TF Lite files too ("openvino"); each
backend has its own file, in the layer forms its kernels run fastest (`network.convs`). Converting needs
TensorFlow and takes seconds, so it is done once per weights, decoder, backend and `network` source, and
kept in the user cache: a worker that finds it there starts without importing TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import storage
from pipeline.engines import openvino_cpu
from pipeline.engines.fast import variant
from pipeline.engines.litert import Runner, cache_dir
from pipeline.errors import ModelError

NETWORK_SOURCE = Path(__file__).with_name("network.py")  # its text is part of the cache key


def fast_key(arrays: Sequence[np.ndarray], decoder: str, spec: variant.Spec | None = None,
             backend: str = "xnnpack") -> str:
    """What the converted net depends on: the weights, the decoder kind, the variant, the backend whose
    layer forms it has (`network.convs`) and the code that builds it."""
    digest = hashlib.sha256(decoder.encode() + backend.encode() + NETWORK_SOURCE.read_bytes())
    if spec is not None and not spec.default:
        digest.update(spec.key().encode() + Path(variant.__file__).read_bytes())
    for a in arrays:
        digest.update(str(a.shape).encode())
        digest.update(np.ascontiguousarray(a, np.float32).tobytes())
    return digest.hexdigest()[:32]


def convert_fast(arrays: Sequence[np.ndarray], decoder: str, spec: variant.Spec | None = None,
                 backend: str = "xnnpack") -> bytes:
    """The fp32 inference net with dynamic frame sizes, in `backend`'s layer forms, as a flatbuffer
    (imports TensorFlow)."""
    import tensorflow as tf

    from pipeline.engines.fast import network

    owner = tf.Module()  # the converter wants the object that owns the function (else it logs a warning)
    owner.net = tf.function(network.network(arrays, decoder, form=backend, spec=spec))
    concrete = owner.net.get_concrete_function(*network.SIGNATURE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF 2.20+ deprecation notices for tf.lite
        blob: bytes = tf.lite.TFLiteConverter.from_concrete_functions([concrete], owner).convert()
    return blob


def fast_runner(arrays: Sequence[np.ndarray], decoder: str, threads: int = 0, cache: Path | None = None,
                spec: variant.Spec | None = None, backend: str = "xnnpack", precision: str = "fp32") -> Any:
    """The fast net from the cache, on LiteRT or (backend "openvino", fp32 or bf16) OpenVINO; else (not
    there, or unusable) converted now and cached with `storage.publish`, so a crash never leaves a
    partial file. An unwritable cache costs only time."""

    def open_(model: Path) -> Any:
        if backend == "openvino":
            return openvino_cpu.Runner(model, threads, precision)
        return Runner(model, threads)

    path = (cache or cache_dir()) / f"fast-{fast_key(arrays, decoder, spec, backend)}.tflite"
    try:
        return open_(path)
    except (OSError, ModelError):
        pass
    blob = convert_fast(arrays, decoder, spec, backend)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.publish(path, blob)
        return open_(path)
    except OSError as exc:
        print(f"fast engine: not caching the converted net in {path.parent} ({exc.strerror or exc})",
              file=sys.stderr, flush=True)
    handle, name = tempfile.mkstemp(suffix=".tflite")  # both runtimes read a file: ours, gone once read
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(blob)
        return open_(Path(name))
    finally:
        os.unlink(name)
