"""Johnson/Engstrom feed-forward style transfer (lengstrom/fast-style-transfer): the engine.

The weights come as raw float32 dumps (no TF checkpoint exists for these machines), so they are
checked here against the network's layout up front: a bad download fails at load time with one
readable line, not deep inside a conv. The network itself is in `fast_net` (TensorFlow); on a CPU it
runs converted, through `lite` (XNNPACK), and this module imports no TensorFlow.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.engines import fast_spec, lite
from pipeline.engines import precision as precisions
from pipeline.errors import ModelError, UsageError

BLOCKS = 5  # residual blocks of the Johnson/Engstrom net; slim trained variants may have fewer
# How the decoder doubles the size: "transpose" (stride-2 transposed convs, Johnson/Engstrom; kernels
# stored [k, k, out, in]) or "resize" (nearest 2x upsample then a conv, kernels [k, k, in, out]; no
# checkerboard, Odena et al. 2016). The Engstrom dumps are "transpose"; vpipe's trained nets say
# "resize" under the manifest's "vpipe" key.
DECODERS = ("transpose", "resize")


def layers(blocks: int = BLOCKS) -> list[str]:
    """The kind per conv layer; each owns 3 variables: kernel, IN shift, IN scale."""
    return ["conv"] * (3 + 2 * blocks) + ["up", "up", "conv"]


N_VARS = 3 * len(layers())
# Reflect margin around each frame: the net zero-pads its convs, which distorts the outer rim.
# Measured on chicago crops vs the same region of a larger frame (wave/udnie), the extra error
# of the 8 px border over the interior was 4.7/5.3 levels with no margin, 2.7/3.1 with 8 px,
# 1.9/3.0 with 16 px; 8 px costs ~7% more pixels at 640x360.
MARGIN = 8


def _var_name(i: int) -> str:
    return "Variable" if i == 0 else f"Variable_{i}"


def _check_structure(where: str, arrays: list[np.ndarray], decoder: str) -> None:
    """Check ranks, square odd kernels and that channel counts chain; slimmer variants pass."""
    channels = 3
    blocks = (len(arrays) // 3 - 6) // 2
    net = layers(blocks)
    for layer, kind in enumerate(net):
        kernel, shift, scale = arrays[3 * layer : 3 * layer + 3]
        name = _var_name(3 * layer)
        shape = list(kernel.shape)
        # even kernels only where the stride is 2 (Torch's padded 3x3 convs stored as 4x4, see fast_spec)
        even_ok = layer in (1, 2) or kind == "up"
        if kernel.ndim != 4 or shape[0] != shape[1] or (shape[0] % 2 == 0 and not even_ok):
            raise ModelError(f"model {where}: {name} has shape {shape}, expected a square odd kernel "
                             f"[k, k, in, out] (layer {layer + 1})")
        c_in, c_out = (shape[3], shape[2]) if kind == "up" and decoder == "transpose" else (shape[2], shape[3])
        if c_in != channels:
            raise ModelError(f"model {where}: {name} has shape {shape}, expected {channels} input channels (layer {layer + 1})")
        if 3 <= layer <= 2 + 2 * blocks and c_out != c_in:
            raise ModelError(f"model {where}: {name} has shape {shape}, residual convs need in == out channels")
        if layer == len(net) - 1 and c_out != 3:
            raise ModelError(f"model {where}: {name} has shape {shape}, the last conv must output 3 channels")
        for j, arr in ((1, shift), (2, scale)):
            if list(arr.shape) != [c_out]:
                raise ModelError(f"model {where}: {_var_name(3 * layer + j)} has shape {list(arr.shape)}, expected [{c_out}]")
        channels = c_out


def load_weights(folder: Path) -> list[np.ndarray]:
    """The arrays in network order (48 for the Engstrom nets)."""
    return load_net(folder)[0]


def load_net(folder: Path) -> tuple[list[np.ndarray], str]:
    """Read and validate the arrays and the decoder kind; one-line ModelErrors."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(
            f"model folder {folder} not found: place manifest.json and Variable..Variable_47 "
            f"(a lengstrom fast-style-transfer dump) there"
        )
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise ModelError(f"model {folder}: manifest.json missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model {folder}: manifest.json unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"model {folder}: manifest.json must be an object of variable name -> entry")
    extra = manifest.get("vpipe") or {}
    decoder = extra.get("decoder", "transpose") if isinstance(extra, dict) else None
    if decoder not in DECODERS:
        raise ModelError(f"model {folder}: manifest.json \"vpipe\".decoder must be one of {', '.join(DECODERS)}")
    count = sum(1 for i in range(3 * len(layers(64))) if _var_name(i) in manifest)
    if count < 3 * len(layers(1)) or (count // 3 - 6) % 2 or count % 3:
        raise ModelError(f"model {folder}: manifest.json lists {count} variables; a Johnson-style net has "
                         f"3 x (6 + 2 x residual blocks), e.g. {N_VARS}")
    arrays = []
    for i in range(count):
        name = _var_name(i)
        entry = manifest.get(name)
        try:
            fname, shape = str(entry["filename"]), [int(d) for d in entry["shape"]]  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            raise ModelError(f"model {folder}: manifest.json has no valid entry for {name}") from None
        path = folder / fname
        # The filename comes from a file we did not write: keep it inside the model folder.
        if Path(fname).name != fname or not path.is_file():
            raise ModelError(f"model {folder}: {name} file {fname!r} missing")
        expected = math.prod(shape) * 4
        size = path.stat().st_size
        if size != expected:
            raise ModelError(f"model {folder}: {name} has {size} bytes, expected {expected} (shape {shape})")
        arrays.append(np.fromfile(path, dtype="<f4").astype(np.float32).reshape(shape))
    _check_structure(str(folder), arrays, decoder)
    return arrays, decoder


def pad_to_multiple(frame: np.ndarray, m: int, margin: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad so both sides divide by m (the net downsamples twice by 2); returns the original (h, w).

    `margin` pixels go on every side, the rest to reach a multiple of m on the bottom/right,
    so the original sits at [margin:margin+h, margin:margin+w].
    """
    h, w = frame.shape[:2]
    ph, pw = -(h + 2 * margin) % m, -(w + 2 * margin) % m
    padded = np.pad(frame, ((margin, margin + ph), (margin, margin + pw), (0, 0)), mode="reflect")
    return padded, (h, w)


def _check_frame(i: int, frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame {i}: expected an HxWx3 uint8 RGB array, got {got}")


class FastEngine:
    """One style's transform net; weights are loaded once, then every frame size shares one network.

    backend "tf": one TF graph (any precision, CPU or GPU); "xnnpack": the net converted once and cached,
    on LiteRT's XNNPACK kernels (fp32, CPU; the fastest CPU path measured here, see README "Speed").
    """

    name = "fast"

    def __init__(self, model_dir: Path, batch_size: int = 1, precision: str = "fp32", backend: str = "tf",
                 threads: int = 0, max_memory: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if precision not in precisions.FORMATS or backend not in BACKENDS or (backend == "xnnpack" and precision != "fp32"):
            raise UsageError(f"fast engine: backend {backend!r} with {precision} (backends: tf, or xnnpack for fp32)")
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self.precision, self.backend, self.threads = precision, backend, threads
        self.max_memory = max_memory  # the worker's budget: frames that need more take a leaner path
        self.tiled_frames = self.graph_frames = 0
        arrays, self.decoder = load_net(self.model_dir)
        self.spec = fast_spec.load(self.model_dir, arrays)
        self._arrays = arrays
        self.blocks = (len(arrays) // 3 - 6) // 2
        if backend == "xnnpack":
            self._run: Any = lite.fast_runner(arrays, self.decoder, threads, spec=self.spec)
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
        """The arrays as TF constants, for the tiled path (fast_tiles); made only when a frame needs it."""
        return [self._tf.constant(a) for a in self._arrays]

    @functools.cached_property
    def _tiles(self) -> Any:
        """fast_tiles.Net, built at the first frame that needs tiles."""
        from pipeline.engines import fast_tiles

        return fast_tiles.Net(self.weights, self.decoder, self.spec)

    @functools.cached_property
    def _graph(self) -> Any:
        """The fp32 TF graph for XNNPACK frames whose buffers would not fit the budget."""
        return self._graph_in("fp32")

    def _graph_in(self, precision: str) -> Any:
        """The net as one TF graph in this number format (fast_net.graph)."""
        self._tf  # noqa: B018 - imported here, so the threads are set before TensorFlow's first op
        from pipeline.engines import fast_net

        return fast_net.graph(self._arrays, self.decoder, precision, self.spec)

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
        path: untiled on the TF graph where only XNNPACK's arena is too large (600 against 1130 bytes
        per pixel), else in tiles (fast_tiles). None when the frame fits as it is."""
        if self.max_memory is None:
            return None
        from pipeline import resources
        from pipeline.engines import fast_tiles

        (h, w), rates = frame.shape[:2], resources.BYTES_PER_PIXEL
        pixels, room = fast_tiles.padded_pixels(h, w), resources.headroom(self.max_memory)
        if pixels * rates["fast_xnnpack" if self.backend == "xnnpack" else "fast"] <= room:
            return None
        room -= 0 if "tensorflow" in sys.modules else resources.TF_RESIDENT  # both leaner paths need it
        budget = resources.human(self.max_memory)
        if self.backend == "xnnpack" and pixels * rates["fast"] <= room:
            print(f"frame {w}x{h}: on the TF graph, untiled (XNNPACK's buffers would not fit the memory "
                  f"budget {budget})", file=sys.stderr, flush=True)
            self.graph_frames += 1
            return _whole(self._graph, [frame])[0]
        core = fast_tiles.core_for(h, w, room)
        print(f"frame {w}x{h}: in tiles of {core} px (memory budget {budget})", file=sys.stderr, flush=True)
        self.tiled_frames += 1
        return fast_tiles.stylize(frame, self._tiles, core)


def _whole(run: Any, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Equal-size frames through a net in one batch: reflect-padded by MARGIN, cropped back."""
    padded = [pad_to_multiple(f, 4, MARGIN)[0] for f in frames]
    result = np.asarray(run(np.stack(padded).astype(np.float32)))
    h, w = frames[0].shape[:2]
    return [np.ascontiguousarray(r[MARGIN : MARGIN + h, MARGIN : MARGIN + w]) for r in result]


BACKENDS = ("tf", "xnnpack")
BACKEND_ENV = "VPIPE_FAST_BACKEND"  # tf or xnnpack: overrides the choice below (benchmarks, debugging)


def choose(asked: str, gpu: bool, flags: frozenset[str]) -> tuple[str, str]:
    """(precision, backend) for this machine: XNNPACK for fp32 on a CPU, the TF graph otherwise."""
    chosen = precisions.resolve(asked, gpu, flags)
    backend = os.environ.get(BACKEND_ENV) or ("xnnpack" if chosen == "fp32" and not gpu else "tf")
    return chosen, backend


def _gpu() -> bool:
    """Whether TensorFlow would run this worker on a GPU; TensorFlow is imported only where one is there
    (executors hide GPUs from CPU workers with CUDA_VISIBLE_DEVICES=-1)."""
    from pipeline.executors import gpu_count

    if not gpu_count():
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
