"""Feature networks for perceptual losses: SqueezeNet 1.1 and VGG-19, built from plain tf.nn ops.

Weights come from the Keras "notop" HDF5 files, read with h5py as plain arrays (no Keras model
deserialization, nothing executed from the file). Kernels are matched to the architecture in file
order and every shape is checked, so a wrong or damaged file fails at load with one clear line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipeline.errors import ModelError

# Caffe-style preprocessing shared by both Keras weight files: BGR, ImageNet mean removed.
BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)

# Good defaults per network: (content layers, {style layer: weight}).
DEFAULT_LAYERS: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "squeezenet": (("fire3", "fire5"), {"conv1": 0.5, "fire2": 1.0, "fire3": 1.0, "fire5": 1.0, "fire7": 1.0}),
    "vgg19": (("block4_conv2",), {"block1_conv1": 1.0, "block2_conv1": 1.0, "block3_conv1": 1.0,
                                  "block4_conv1": 1.0, "block5_conv1": 1.0}),
}

Layer = tuple[str, str, tuple[int, ...]]  # (name, kind, channels); a fire is (squeeze, expand)
SQUEEZENET: list[Layer] = [
    ("conv1", "conv_s2", (64,)), ("pool1", "pool", ()), ("fire2", "fire", (16, 64)), ("fire3", "fire", (16, 64)),
    ("pool3", "pool", ()), ("fire4", "fire", (32, 128)), ("fire5", "fire", (32, 128)), ("pool5", "pool", ()),
    ("fire6", "fire", (48, 192)), ("fire7", "fire", (48, 192)), ("fire8", "fire", (64, 256)), ("fire9", "fire", (64, 256))]
VGG19: list[Layer] = [
    layer for block, (convs, ch) in enumerate([(2, 64), (2, 128), (4, 256), (4, 512), (4, 512)], start=1)
    for layer in [*((f"block{block}_conv{i}", "conv", (ch,)) for i in range(1, convs + 1)),
                  (f"block{block}_pool", "pool", ())]]
ARCHITECTURES = {"squeezenet": SQUEEZENET, "vgg19": VGG19}


@dataclass
class FeatureNet:
    name: str
    layers: list[Layer]
    params: list[tuple[tf.Tensor, tf.Tensor]]  # (kernel, bias) per conv, in order

    def __call__(self, images: tf.Tensor, wanted: Sequence[str]) -> dict[str, tf.Tensor]:
        """Activations of `wanted` layers for RGB images in 0..255 (N, H, W, 3); stops at the deepest one."""
        x = tf.reverse(images, axis=[-1]) - BGR_MEAN
        out: dict[str, tf.Tensor] = {}
        convs = iter(self.params)
        for name, kind, _ in self.layers:
            if len(out) == len(set(wanted)):
                break
            if kind == "pool":
                x = tf.nn.max_pool2d(x, 3 if self.name == "squeezenet" else 2, 2,
                                     "VALID" if self.name == "squeezenet" else "SAME")
                continue
            if kind == "fire":
                squeeze = _conv(x, next(convs), "VALID")
                x = tf.concat([_conv(squeeze, next(convs), "VALID"), _conv(squeeze, next(convs), "SAME")], axis=-1)
            else:
                stride, padding = (2, "VALID") if kind == "conv_s2" else (1, "SAME")
                x = _conv(x, next(convs), padding, stride)
            if name in wanted:
                out[name] = x
        return out


def _conv(x: tf.Tensor, param: tuple[tf.Tensor, tf.Tensor], padding: str, stride: int = 1) -> tf.Tensor:
    kernel, bias = param
    return tf.nn.relu(tf.nn.conv2d(x, kernel, stride, padding) + bias)


def conv_shapes(net: str) -> list[tuple[int, int, int, int]]:
    """Kernel shapes of the network, in file order."""
    shapes, channels = [], 3
    for _name, kind, spec in ARCHITECTURES[net]:
        if kind == "fire":
            squeeze, expand = spec
            shapes += [(1, 1, channels, squeeze), (1, 1, squeeze, expand), (3, 3, squeeze, expand)]
            channels = 2 * expand
        elif kind != "pool":
            shapes.append((3, 3, channels, spec[0]))
            channels = spec[0]
    return shapes


def read_h5(path: Path, net: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) pairs from a Keras notop .h5 file, checked against the architecture."""
    import h5py

    expected = conv_shapes(net)
    try:
        with h5py.File(path, "r") as f:
            pairs = []
            for layer in f.attrs["layer_names"]:
                group = f[layer]
                names = list(group.attrs.get("weight_names", []))
                if not names:
                    continue
                arrays = [np.asarray(group[n], np.float32) for n in names]
                kernel = next((a for a in arrays if a.ndim == 4), None)
                bias = next((a for a in arrays if a.ndim == 1), None)
                if kernel is None or bias is None:
                    raise ModelError(f"{path.name}: layer {_text(layer)} has no kernel and bias")
                pairs.append((kernel, bias))
    except (OSError, KeyError) as exc:
        raise ModelError(f"{path.name} is not a readable Keras weights file ({exc})") from exc
    if len(pairs) < len(expected):
        raise ModelError(f"{path.name}: {len(pairs)} conv layers, {net} needs {len(expected)}: wrong file?")
    for i, ((kernel, bias), shape) in enumerate(zip(pairs[:len(expected)], expected, strict=True)):
        if kernel.shape != shape or bias.shape != (shape[3],):
            raise ModelError(f"{path.name}: conv {i + 1} has shape {list(kernel.shape)}, {net} needs {list(shape)}")
    return pairs[: len(expected)]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def load(net: str, weights: Path | None, seed: int = 0) -> FeatureNet:
    """The network with its weights, or random weights (weights=None: for timing and tests only)."""
    if net not in ARCHITECTURES:
        raise ModelError(f"unknown feature network {net!r} (known: {', '.join(ARCHITECTURES)})")
    if weights is None:
        rng = np.random.default_rng(seed)
        arrays = [(rng.normal(0, np.sqrt(2.0 / np.prod(s[:3])), s).astype(np.float32), np.zeros(s[3], np.float32))
                  for s in conv_shapes(net)]
    else:
        arrays = read_h5(weights, net)
    params = [(tf.constant(k), tf.constant(b)) for k, b in arrays]
    return FeatureNet(net, ARCHITECTURES[net], params)
