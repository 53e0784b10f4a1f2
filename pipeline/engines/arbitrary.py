"""Magenta arbitrary image stylization (Ghiasi et al. 2017) with its TF Lite models: any painting, fast.

The style-prediction net turns the painting (256x256, RGB in [0, 1]) into a 100-d style vector,
once per worker. The transfer net stylizes a 384x384 content image with that vector. Frames of any
size go through `pipeline.tiles`: overlapping 384x384 windows with feathered blending (default) or
one fitted window and a guided upsample. `strength` < 1 mixes in the frame's own style vector, as
Magenta's content blending does. Only the .tflite flatbuffers are read; no code comes from them.
The transfer net runs on OpenVINO where the fast engine does (`openvino_cpu.preferred`; there a
window took 1/5 of LiteRT's time, README "Speed"), else on LiteRT; the style-prediction net (once per
worker) on LiteRT.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline import storage, tiles
from pipeline.engines import litert, openvino_cpu
from pipeline.engines.fast.precision import cpu_flags
from pipeline.errors import ModelError, UsageError

PREDICT = "style_predict_quantized_256.tflite"
# Transfer nets in order of preference (see README: f16 measured faster than int8 on these CPUs).
TRANSFER = {"f16": "style_transfer_f16_384.tflite", "int8": "style_transfer_quantized_384.tflite"}
STYLE_SIZE, TILE = 256, 384
OVERLAP = 128  # pixels shared by neighbouring windows, all of it feathered
MODES = ("tiles", "upsample")


def square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop, resized to size x size, float32 in [0, 1] (Magenta's preprocessing)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top:top + side, left:left + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp).astype(np.float32) / 255.0


class Net:
    """One TF Lite model with named float32 inputs and a single output, on LiteRT or OpenVINO."""

    def __init__(self, path: Path, threads: int, backend: str = "litert") -> None:
        self.path, self.backend = path, backend
        if backend == "openvino":
            self.runner = openvino_cpu.Runner(path, threads)
            self.inputs = self.runner.inputs()
        else:
            self.interpreter = litert.interpreter(path, threads)
            details = self.interpreter.get_input_details()
            self.inputs = {d["name"]: tuple(d["shape"]) for d in details}
            self.index = {d["name"]: d["index"] for d in details}
            self.output = self.interpreter.get_output_details()[0]["index"]
        self.calls = 0

    def input_named(self, prefix: str) -> str:
        for name in self.inputs:
            if name.startswith(prefix):
                return name
        raise ModelError(f"model file {self.path.name}: no input {prefix!r} (has {', '.join(self.inputs)})")

    def __call__(self, **arrays: np.ndarray) -> np.ndarray:
        feed = {}
        for prefix, array in arrays.items():
            name = self.input_named(prefix)
            feed[name] = np.ascontiguousarray(array.reshape(self.inputs[name]), np.float32)
        self.calls += 1
        if self.backend == "openvino":
            return self.runner.named(feed)
        for name, array in feed.items():
            self.interpreter.set_tensor(self.index[name], array)
        self.interpreter.invoke()
        return np.asarray(self.interpreter.get_tensor(self.output))


def model_files(folder: Path, transfer: str) -> tuple[Path, Path]:
    """The predict net and the transfer net (the preferred kind, else any other present)."""
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} not found: run `vpipe models pull magenta_tflite`")
    predict = folder / PREDICT
    order = [transfer, *(k for k in TRANSFER if k != transfer)]
    found = [folder / TRANSFER[k] for k in order if (folder / TRANSFER[k]).is_file()]
    if not predict.is_file() or not found:
        missing = PREDICT if not predict.is_file() else " or ".join(TRANSFER[k] for k in order)
        raise ModelError(f"model folder {folder}: {missing} missing: run `vpipe models pull magenta_tflite` "
                         f"or place it in {folder}")
    return predict, found[0]


class ArbitraryEngine:
    """A painting's style vector plus the two nets; stylize() handles any frame size."""

    name = "arbitrary"

    def __init__(self, folder: Path, style: np.ndarray, strength: float = 1.0, mode: str = "tiles",
                 transfer: str = "f16", threads: int = 0, overlap: int = OVERLAP) -> None:
        if not 0.0 <= strength <= 1.0:
            raise UsageError(f"--strength {strength}: must be between 0 and 1")
        if mode not in MODES:
            raise UsageError(f"arbitrary engine: mode {mode!r} is not one of {', '.join(MODES)}")
        if transfer not in TRANSFER:
            raise UsageError(f"arbitrary engine: transfer {transfer!r} is not one of {', '.join(TRANSFER)}")
        predict, transfer_path = model_files(Path(folder), transfer)
        self.predict = Net(predict, threads)
        self.transfer = Net(transfer_path, threads, "openvino" if openvino_cpu.preferred(cpu_flags()) else "litert")
        self.strength, self.mode, self.overlap = strength, mode, overlap
        self.style_vector = self.vector(style)  # once per worker

    def vector(self, image: np.ndarray) -> np.ndarray:
        """The 100-d style vector of an RGB uint8 image."""
        return self.predict(style_image=square(image, STYLE_SIZE)[None])

    def frame_vector(self, frame: np.ndarray) -> np.ndarray:
        if self.strength >= 1.0:
            return self.style_vector
        return self.strength * self.style_vector + (1.0 - self.strength) * self.vector(frame)

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        out = []
        for i, frame in enumerate(frames):
            if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"frame {i}: expected an HxWx3 uint8 RGB array")
            vector = self.frame_vector(frame)

            def network(window: np.ndarray, vector: np.ndarray = vector) -> np.ndarray:
                return self.transfer(content_image=window[None], mobilenet=vector)[0]

            image = frame.astype(np.float32) / 255.0
            if self.mode == "tiles":
                styled = tiles.tiled(image, network, TILE, self.overlap)
            else:
                styled = tiles.upsampled(image, network, TILE)
            out.append(np.clip(np.round(styled * 255.0), 0, 255).astype(np.uint8))
        return out


def load(model: Path, options: dict[str, Any]) -> ArbitraryEngine:
    """Registry entry point: `model` is the magenta_tflite folder, options carry the style image."""
    if not options.get("style_image"):
        raise UsageError("the arbitrary engine needs a style image: --style PAINTING.jpg")
    try:
        style = storage.read_rgb(Path(options["style_image"]))
    except (OSError, ValueError) as exc:
        raise ModelError(f"style image {options['style_image']} is not a readable image") from exc
    return ArbitraryEngine(Path(model), style, strength=float(options.get("strength", 1.0)),
                           mode=str(options.get("mode", "tiles")), transfer=str(options.get("transfer", "f16")),
                           threads=int(options.get("threads") or 0))
