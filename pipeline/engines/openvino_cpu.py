"""TF Lite models run by OpenVINO's CPU plugin (the `openvino` package), without importing TensorFlow.

OpenVINO reads a .tflite file itself; each new input shape compiles the model for that shape (static
shapes measured 10-15% faster than one dynamic compile), and compiled models are kept in the user
cache (OpenVINO's CACHE_DIR), so a later worker imports them instead of compiling.
- `preferred`: whether to run on it on this CPU (vpipe's engines ask this, one rule for all)
- `load`: the `openvino` module, without its telemetry
- `Runner`: one net in fp32 or bf16: a single input of any shape, or named inputs of the model's shapes
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ModelError

HINTS = {"fp32": "f32", "bf16": "bf16"}  # INFERENCE_PRECISION_HINT; its f16 measured garbage here (PSNR 11 dB)


# x86 CPUs with native bf16 (Sapphire Rapids and later, Cooper Lake): where OpenVINO measured fastest,
# in fp32 as well (1.15-2.29x XNNPACK at 1 thread; README "Speed"); on AVX2-only CPUs LiteRT/XNNPACK
# measured faster than the others and stays (OpenVINO not measured on one)
FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def preferred(flags: frozenset[str]) -> bool:
    """Whether vpipe's nets run on OpenVINO on a CPU with these /proc/cpuinfo flags."""
    return bool(flags & FLAGS) and available()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vpipe" / "openvino"


def load() -> Any:
    """`import openvino`, with its telemetry and its model converter kept from loading.

    The package sends an event at import, from a process it forks off a thread: in a worker that fork
    held the worker's protocol pipe, had no parent-death signal and hung at once (on the stdin lock the
    fork copied), so it outlived a killed worker or coordinator and the coordinator waited forever for
    the pipe to close. vpipe sends nothing anywhere either.

    The converter (`openvino.tools.ovc`, imported at the package's import for `convert_model`) is half
    the import's time (70 of 125 ms, on every worker's start): vpipe hands OpenVINO files it reads
    itself, and the package skips `convert_model` when its import fails.
    """
    for name in ("openvino_telemetry", "openvino.tools.ovc"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: ImportError
    import openvino

    return openvino


def _core(cache: Path | None) -> Any:
    """An OpenVINO Core caching compiled models in `cache` where that folder can be made."""
    ov = load()
    core = ov.Core()
    folder = cache or cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(folder)})
    except (OSError, RuntimeError):  # an unwritable cache costs only the compile time
        pass
    return core


class Runner:
    """One single-output net; a new input shape (frame size or batch) compiles it for that shape."""

    def __init__(self, model: Path, threads: int = 0, precision: str = "fp32", cache: Path | None = None) -> None:
        self._core = _core(cache)
        try:
            self._model = self._core.read_model(str(model))
        except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses, with pages of detail
            raise ModelError(f"model file {model} is not a model OpenVINO reads "
                             f"({str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__})") from exc
        self.config = {
            "INFERENCE_PRECISION_HINT": HINTS[precision],
            "INFERENCE_NUM_THREADS": threads,  # 0: all the cores this process may use
            "PERFORMANCE_HINT": "LATENCY",
            "ENABLE_CPU_PINNING": False,  # workers share the cores: never pin two of them to the same one
        }
        self._request: Any = None
        self._shape: tuple[int, ...] | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, np.float32)
        if batch.shape != self._shape:
            self._request = None  # the previous shape's compiled model goes before the next one is made
            self._model.reshape(list(batch.shape))
            self._request = self._compiled()
            self._shape = batch.shape
        result: np.ndarray = np.array(self._request.infer({0: batch})[0])  # a copy: the next call reuses its buffer
        return result

    def _compiled(self) -> Any:
        """An inference request on the model compiled for its current shapes (from OpenVINO's cache where there)."""
        return self._core.compile_model(self._model, "CPU", self.config).create_infer_request()

    def inputs(self) -> dict[str, tuple[int, ...]]:
        """The model's inputs by name, with their shapes (a model with fixed shapes)."""
        return {port.get_any_name(): tuple(port.get_partial_shape().to_shape()) for port in self._model.inputs}

    def named(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """One pass with the inputs given by name, at the model's own shapes."""
        if self._request is None:
            self._request = self._compiled()
        result: np.ndarray = np.array(self._request.infer(arrays)[0])
        return result
