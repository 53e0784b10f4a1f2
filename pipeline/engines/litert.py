"""TF Lite models run by LiteRT's XNNPACK kernels, without importing TensorFlow in the worker.

- `interpreter`: a .tflite file or flatbuffer -> an interpreter, from LiteRT (the ai-edge-litert
  package) where it is installed, else the copy TensorFlow still ships.
- `Runner`: one net, re-planned for each new input shape.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import quiet
from pipeline.errors import ModelError


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vpipe" / "tflite"


def interpreter(model: Path | bytes, threads: int = 0, allocate: bool = True) -> Any:
    """An interpreter for a .tflite file or flatbuffer, allocated for its stored input shapes unless
    `allocate` is False (dynamic sizes); a bad model is a one-line ModelError."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    source = {"model_path": str(model)} if isinstance(model, Path) else {"model_content": model}
    with warnings.catch_warnings(), quiet.muted():  # its XNNPACK delegate announces itself on stderr
        warnings.simplefilter("ignore")  # TF 2.20+ deprecation notice for tf.lite.Interpreter
        try:
            result = Interpreter(**source, num_threads=threads or None)
            if allocate:
                result.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            where = model if isinstance(model, Path) else "the converted fast net"
            raise ModelError(f"model file {where} is not a usable TF Lite model ({exc})") from exc
    return result


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
            with quiet.muted():  # its XNNPACK delegate announces itself on stderr
                self._interpreter.allocate_tensors()
            self._shape = batch.shape
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        result: np.ndarray = self._interpreter.get_tensor(self._output)
        return result
