"""Johnson/Engstrom feed-forward style transfer (lengstrom/fast-style-transfer): the engine.

Weights are read and checked by `weights`; the network itself is `network` (TensorFlow); on a CPU it
runs converted (`xnnpack`), on OpenVINO or LiteRT, and this module imports no TensorFlow. Frames over
the memory budget take a leaner path: the TF graph untiled, or `tiles`.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import resources
from pipeline.engines import openvino_cpu
from pipeline.engines.fast import precision as precisions
from pipeline.engines.fast import variant, weights, xnnpack
from pipeline.engines.fast.padding import MARGIN, pad_to_multiple
from pipeline.engines.fast.spec import BYTES_PER_PIXEL
from pipeline.engines.fast.weights import load_net
from pipeline.errors import UsageError


def _check_frame(i: int, frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame {i}: expected an HxWx3 uint8 RGB array, got {got}")


class FastEngine:
    """One style's transform net; weights are loaded once, then every frame size shares one network.

    backend "tf": one TF graph (any precision, CPU or GPU); "xnnpack": the net converted once and cached,
    on LiteRT's XNNPACK kernels (fp32, CPU); "openvino": the same converted net on OpenVINO's CPU plugin
    (fp32 or bf16). Which is fastest where: `choose`, and README "Speed".
    """

    name = "fast"

    def __init__(self, model_dir: Path, batch_size: int = 1, precision: str = "fp32", backend: str = "tf",
                 threads: int = 0, max_memory: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in SUPPORTS.get(backend, ()):
            raise UsageError(f"fast engine: backend {backend!r} with {precision} (backends: tf, xnnpack for fp32, "
                             "openvino for fp32 or bf16)")
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self.precision, self.backend, self.threads = precision, backend, threads
        self.max_memory = max_memory  # the worker's budget: frames that need more take a leaner path
        self.tiled_frames = self.graph_frames = 0
        arrays, self.decoder = load_net(self.model_dir)
        self.spec = variant.load(self.model_dir, arrays)
        self._arrays = arrays
        self.blocks = weights.blocks_of(len(arrays) // 3)
        if backend != "tf":
            self._run: Any = xnnpack.fast_runner(arrays, self.decoder, threads, spec=self.spec, backend=backend,
                                                 precision=precision)
        else:
            self._run = self._graph_in(precision)

    @functools.cached_property
    def _tf(self) -> Any:
        """TensorFlow, imported at its first need (the TF backend, or a frame over the budget on XNNPACK),
        with this worker's thread count where this is what starts TensorFlow's runtime."""
        import tensorflow as tf

        if self.threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # the runtime already runs in this process: it keeps its settings
                pass
        return tf

    @functools.cached_property
    def weights(self) -> list[Any]:
        """The arrays as TF constants, for the tiled path (`tiles`); made only when a frame needs it."""
        return [self._tf.constant(a) for a in self._arrays]

    @functools.cached_property
    def _tiles(self) -> Any:
        """tiles.Net, built at the first frame that needs tiles."""
        from pipeline.engines.fast import tiles

        return tiles.Net(self.weights, self.decoder, self.spec)

    @functools.cached_property
    def _graph(self) -> Any:
        """The fp32 TF graph for converted-net frames whose buffers would not fit the budget."""
        return self._graph_in("fp32")

    def _graph_in(self, precision: str) -> Any:
        """The net as one TF graph in this number format (network.graph)."""
        self._tf  # noqa: B018 - imported here, so the threads are set before TensorFlow's first op
        from pipeline.engines.fast import network

        return network.graph(self._arrays, self.decoder, precision, self.spec)

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Stylize frames in order; equal-size frames share a batch, up to batch_size."""
        for i, f in enumerate(frames):
            _check_frame(i, f)
            if self.spec.input_pad and min(-(-(n + 2 * MARGIN) // 4) * 4 for n in f.shape[:2]) <= self.spec.input_pad:
                raise ValueError(f"frame {i}: {f.shape[1]}x{f.shape[0]} is too small for this model (its "
                                 f"{self.spec.input_pad} px reflection padding needs larger sides)")
        out: list[np.ndarray | None] = [None] * len(frames)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            lean = self._over_budget(f)
            if lean is not None:
                out[i] = lean
            else:
                groups.setdefault(f.shape, []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                for i, styled in zip(chunk, _whole(self._run, [frames[i] for i in chunk]), strict=True):
                    out[i] = styled
        return out  # type: ignore[return-value]

    def _over_budget(self, frame: np.ndarray) -> np.ndarray | None:
        """A frame whose buffers on this engine's path would not fit the memory budget, through a leaner
        path: untiled on the TF graph where only the converted net's buffers are too large (600 bytes per
        pixel against XNNPACK's 1130), else in tiles (`tiles`). None when the frame fits as it is."""
        if self.max_memory is None:
            return None
        from pipeline.engines.fast import tiles

        (h, w), rates = frame.shape[:2], BYTES_PER_PIXEL
        pixels, room = tiles.padded_pixels(h, w), resources.headroom(self.max_memory)
        if pixels * rates[RATES[self.backend]] <= room:
            return None
        room -= 0 if "tensorflow" in sys.modules else resources.TF_RESIDENT  # both leaner paths need it
        budget = resources.human(self.max_memory)
        if self.backend != "tf" and pixels * rates["fast"] <= room:
            print(f"frame {w}x{h}: on the TF graph, untiled ({self.backend}'s buffers would not fit the memory "
                  f"budget {budget})", file=sys.stderr, flush=True)
            self.graph_frames += 1
            return _whole(self._graph, [frame])[0]
        core = tiles.core_for(h, w, room)
        print(f"frame {w}x{h}: in tiles of {core} px (memory budget {budget})", file=sys.stderr, flush=True)
        self.tiled_frames += 1
        return tiles.stylize(frame, self._tiles, core)


def _whole(run: Any, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Equal-size frames through a net in one batch: reflect-padded by MARGIN, cropped back."""
    padded = [pad_to_multiple(f, 4, MARGIN)[0] for f in frames]
    result = np.asarray(run(np.stack(padded).astype(np.float32)))
    h, w = frames[0].shape[:2]
    return [np.ascontiguousarray(r[MARGIN : MARGIN + h, MARGIN : MARGIN + w]) for r in result]


SUPPORTS = {"tf": precisions.FORMATS, "xnnpack": ("fp32",), "openvino": ("fp32", "bf16")}
BACKENDS = tuple(SUPPORTS)
RATES = {"tf": "fast", "xnnpack": "fast_xnnpack", "openvino": "fast_openvino"}  # spec.BYTES_PER_PIXEL
BACKEND_ENV = "VPIPE_FAST_BACKEND"  # openvino, xnnpack or tf: overrides the choice below


def backend_for(gpu: bool, flags: frozenset[str]) -> str:
    """The fastest backend measured on such a machine: the TF graph on a GPU; OpenVINO on x86 CPUs with
    native bf16 (AVX-512 BF16 or AMX; 1.15-2.29x XNNPACK here at 1 thread, in fp32), XNNPACK on the others (AVX2: 1.3x
    onnxruntime, OpenVINO not measured faster there)."""
    if gpu:
        return "tf"
    return "openvino" if openvino_cpu.preferred(flags) else "xnnpack"


def choose(asked: str, gpu: bool, flags: frozenset[str]) -> tuple[str, str]:
    """(precision, backend) for this machine, or as VPIPE_FAST_BACKEND forces; a precision the chosen
    backend does not run moves to the TF graph, unless the backend was forced (then FastEngine refuses)."""
    forced = os.environ.get(BACKEND_ENV, "")
    if forced and forced not in SUPPORTS:
        raise UsageError(f"{BACKEND_ENV}={forced!r}: expected one of {', '.join(BACKENDS)}")
    backend = forced or backend_for(gpu, flags)
    chosen = precisions.resolve(asked, gpu, flags, backend)
    if not forced and chosen not in SUPPORTS[backend]:
        backend = "tf"
    return chosen, backend


def _gpu() -> bool:
    """Whether TensorFlow would run this worker on a GPU; TensorFlow is imported only where one is there
    (executors hide GPUs from CPU workers with CUDA_VISIBLE_DEVICES=-1)."""
    if not resources.gpu_count():
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def load(model: Path, options: dict[str, Any]) -> FastEngine:
    """Registry entry point: the worker calls this once per process."""
    threads = int(options.get("threads") or 0)
    chosen, backend = choose(str(options.get("precision") or "auto"), _gpu(), precisions.cpu_flags())
    budget = options.get("max_memory")
    return FastEngine(model, batch_size=int(options.get("batch") or 1), precision=chosen, backend=backend,
                      threads=threads, max_memory=int(budget) if budget else None)
