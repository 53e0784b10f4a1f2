"""The fast (Johnson) net on frames larger than the memory budget, in tiles, with the untiled result.

Instance norm divides every layer by the mean and variance of the WHOLE frame, so a tile run on its
own comes out in its own tone (a seam at every tile border), and statistics taken from a downscaled
copy are off too (the net sees other frequencies: 24-27 dB against the untiled frame at 1080p, see
bench/bench_memory.py). The statistics here are exact, found stage by stage:

- encoder (full and half resolution, where activations are largest): tiles with a margin over the
  encoder's 7 px receptive field; pass k runs layers 0..k with the statistics already found and
  sums the moments of layer k's conv output over the part of the frame each tile owns (the owned
  parts partition the frame). The last pass keeps layer 2's output: a quarter-resolution map.
- residual blocks: on that whole map (128 channels at 1/16 of the pixels: 32 bytes per frame pixel
  each), layer by layer in bands of rows; every layer's statistics come from the whole map.
- decoder: tiles over the map; passes for each upsampling layer's statistics, then the last conv's
  output, feather-blended (pipeline.tiles.ramp) over the cores' overlap, normalized and squashed.

About 1.5x the untiled cost; the result equals the untiled one to within one level. TensorFlow is
imported at the first tiled frame: a fast worker on XNNPACK otherwise never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.engines.fast import weights
from pipeline.engines.fast.padding import MARGIN, pad_to_multiple
from pipeline.engines.fast.spec import BYTES_PER_PIXEL, TILED_OVERHEAD
from pipeline.engines.fast.variant import Spec
from pipeline.tiles import ramp, starts

if TYPE_CHECKING:
    import tensorflow as tf

ALIGN = 4  # the net downsamples twice by 2: full-resolution windows start on multiples of 4
ENCODER_MARGIN = 8  # full-resolution pixels of context around a core (receptive field 7)
DECODER_MARGIN = 4  # quarter-resolution pixels (receptive field under 3)
OVERLAP = 32  # full-resolution pixels where neighbouring output cores are feather-blended
MIN_CORE = 96

Moments = tuple[np.ndarray, np.ndarray]  # per-channel mean and (population) variance
Box = tuple[int, int, int, int]  # y0, y1, x0, x1


@dataclass(frozen=True)
class Layout:
    """Cores (neighbours overlapping by `overlap`) and the windows around them, on a height x width map."""

    height: int
    width: int
    core: tuple[int, int]
    ys: list[int]
    xs: list[int]
    margin: int

    @staticmethod
    def plan(height: int, width: int, core: int, margin: int, overlap: int, align: int) -> Layout:
        core = max(align * round(core / align), 2 * overlap + 2 * align)
        ch, cw = min(core, height), min(core, width)
        return Layout(height, width, (ch, cw), starts(height, ch, overlap, align),
                      starts(width, cw, overlap, align), margin)

    def tiles(self) -> list[tuple[Box, Box, Box]]:
        """Per tile: its window, its core and the part of the map it alone owns (cut mid-overlap)."""
        ch, cw = self.core

        def cuts(origins: list[int], size: int, length: int, align: int) -> list[int]:
            middle = [align * round((a + b + size) / 2 / align) for a, b in pairwise(origins)]
            return [0, *middle, length]

        ry, rx = cuts(self.ys, ch, self.height, ALIGN), cuts(self.xs, cw, self.width, ALIGN)
        out = []
        for i, y in enumerate(self.ys):
            for j, x in enumerate(self.xs):
                window = (max(0, y - self.margin), min(self.height, y + ch + self.margin),
                          max(0, x - self.margin), min(self.width, x + cw + self.margin))
                out.append((window, (y, y + ch, x, x + cw), (ry[i], ry[i + 1], rx[j], rx[j + 1])))
        return out


def combine(parts: Sequence[tuple[int, Moments]]) -> Moments:
    """Whole-map mean and variance per channel from (pixel count, (mean, variance)) of disjoint parts."""
    n = np.array([p[0] for p in parts], np.float64)[:, None]
    mean = np.array([p[1][0] for p in parts], np.float64)
    var = np.array([p[1][1] for p in parts], np.float64)
    total = (n * mean).sum(0) / n.sum()
    return total, (n * (var + (mean - total) ** 2)).sum(0) / n.sum()


def relative(box: Box, window: Box, factor: float = 1) -> Box:
    """`box` in the coordinates of `window`'s output, `factor` times the window's resolution."""
    return (int((box[0] - window[0]) * factor), int((box[1] - window[0]) * factor),
            int((box[2] - window[2]) * factor), int((box[3] - window[2]) * factor))


class Net:
    """The net's layers as compiled chains: layers i..j on a window, every layer normalized by
    given statistics except the last, whose raw conv output and moments over a box come back."""

    def __init__(self, w: Sequence[tf.Tensor], decoder: str, spec: Spec | None = None) -> None:
        self.w, self.decoder, self.spec = list(w), decoder, spec or Spec()
        self.blocks = weights.blocks_of(len(self.w) // 3)
        last = 3 + 2 * self.blocks
        self.kinds = [("", 1, True), ("", 2, True), ("", 2, True)]
        self.kinds += [("", 1, r % 2 == 0) for r in range(2 * self.blocks)]
        self.kinds += [(decoder, 1, True), (decoder, 1, True), ("", 1, False)]
        self.encoder, self.decoder_layers = [0, 1, 2], [last, last + 1, last + 2]
        self.widths = [int(self.w[3 * k + 1].shape[0]) for k in range(len(self.kinds))]
        self._compiled: dict[tuple[int, ...], Any] = {}  # tf.function per chain of layers

    def halo(self, layer: int) -> int:
        return int(self.w[3 * layer].shape[0]) // 2

    def _build(self, layers: tuple[int, ...]) -> Any:
        import tensorflow as tf

        from pipeline.engines.fast import network

        channels = int(self.w[3 * layers[0]].shape[2 if self.kinds[layers[0]][0] != "transpose" else 3])

        def run(x: tf.Tensor, fixed: tf.Tensor, box: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            for n, i in enumerate(layers):
                up, stride, relu = self.kinds[i]
                x = network.conv(x, self.w[3 * i], up, stride)
                if n == len(layers) - 1:
                    break
                c = self.widths[i]
                x = x * fixed[n, 0, :c] + fixed[n, 1, :c]  # the layer's norm as gain and bias (`affine`)
                x = tf.nn.relu(x) if relu else x
            mean, var = tf.nn.moments(x[:, box[0]:box[1], box[2]:box[3]], axes=[0, 1, 2])
            return x[0], tf.stack([mean, var])

        spec = [tf.TensorSpec([1, None, None, channels], tf.float32), tf.TensorSpec([None, 2, None], tf.float32),
                tf.TensorSpec([4], tf.int32)]
        return tf.function(run, input_signature=spec)

    def chain(self, x: np.ndarray, layers: Sequence[int], fixed: Sequence[Moments], box: Box) -> tuple[np.ndarray, Moments]:
        key = tuple(layers)
        if key not in self._compiled:
            self._compiled[key] = self._build(key)
        packed = np.zeros((max(1, len(fixed)), 2, max(self.widths)), np.float32)
        for n, stats in enumerate(fixed):
            gain, bias = self.affine(layers[n], stats)
            packed[n, 0, :len(gain)], packed[n, 1, :len(bias)] = gain, bias
        raw, moments = self._compiled[key](x[None].astype(np.float32), packed, np.asarray(box, np.int32))
        m = moments.numpy()
        return raw.numpy(), (m[0], m[1])

    def affine(self, layer: int, stats: Moments) -> tuple[np.ndarray, np.ndarray]:
        """A layer's norm as gain and bias: from the whole map's statistics (instance norm), or fixed."""
        scale, shift = self.w[3 * layer + 2].numpy(), self.w[3 * layer + 1].numpy()
        if self.spec.norm(layer) == "affine":
            return scale.astype(np.float32), shift.astype(np.float32)
        gain = scale / np.sqrt(stats[1] + self.spec.eps)
        return gain.astype(np.float32), (shift - stats[0] * gain).astype(np.float32)

    def trim(self, layer: int) -> int:
        return self.spec.trim(layer, int(self.w[3 * layer].shape[0]), self.blocks)

    def normalize(self, x: np.ndarray, layer: int, stats: Moments, rows: int) -> np.ndarray:
        """Instance norm (+ ReLU) of a whole map in place, `rows` at a time (no full-size temporaries)."""
        _, _, relu = self.kinds[layer]
        gain, bias = self.affine(layer, stats)
        for r in range(0, x.shape[0], rows):
            band = x[r:r + rows]
            band *= gain
            band += bias
            if relu:
                np.maximum(band, 0, out=band)
        return x

    def banded(self, x: np.ndarray, layer: int, rows: int) -> tuple[np.ndarray, Moments]:
        """One stride-1 conv over a whole map, `rows` output rows at a time; its raw output and moments.
        A valid conv (fast_spec "residual") returns the map less `trim` pixels on each side."""
        halo, t = self.halo(layer), self.trim(layer)
        height, width = x.shape[:2]
        out = np.empty((height, width, self.widths[layer]), np.float32)
        parts = []
        for r in range(0, height, rows):
            top, bottom = max(0, r - halo), min(height, r + rows + halo)
            end = min(height, r + rows)
            y0, y1 = max(r, t), min(end, height - t)  # the rows whose moments count
            raw, moments = self.chain(x[top:bottom], [layer], [], (y0 - top, max(y0, y1) - top, t, width - t))
            out[r:end] = raw[r - top:end - top]
            if y1 > y0:
                parts.append(((y1 - y0) * (width - 2 * t), moments))
        return (out[t:height - t, t:width - t] if t else out), combine(parts)


def stylize(frame: np.ndarray, net: Net, core: int) -> np.ndarray:
    """One HxWx3 uint8 frame through the net in tiles of about core x core pixels; uint8 out."""
    h, w = frame.shape[:2]
    padded, _ = pad_to_multiple(frame, ALIGN, MARGIN)
    spec, pad = net.spec, net.spec.input_pad
    if pad:
        padded = np.pad(padded, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    height, width = padded.shape[:2]
    core = max(MIN_CORE, core)
    rows = max(8, core * core // (16 * max(1, width // 4)))  # quarter-resolution rows per band
    stats: dict[int, Moments] = {}

    encoder = Layout.plan(height, width, core, ENCODER_MARGIN, 0, ALIGN)
    quarter = np.empty((height // 4, width // 4, net.widths[2]), np.float32)
    for k, scale in zip(net.encoder, (1, 2, 4), strict=True):
        parts = []
        for window, _, owned in encoder.tiles():
            x = padded[window[0]:window[1], window[2]:window[3]].astype(np.float32)
            x += np.asarray(spec.input_shift, np.float32)
            raw, moments = net.chain(x, net.encoder[:k + 1], [stats[j] for j in net.encoder[:k]],
                                     relative(owned, window, 1 / scale))
            parts.append(((owned[1] - owned[0]) * (owned[3] - owned[2]), moments))
            if k == 2:
                oy0, oy1, ox0, ox1 = relative(owned, window, 1 / 4)
                quarter[owned[0] // 4:owned[1] // 4, owned[2] // 4:owned[3] // 4] = raw[oy0:oy1, ox0:ox1]
        stats[k] = combine(parts)
    net.normalize(quarter, 2, stats[2], rows)

    for r in range(net.blocks):
        first, second = 3 + 2 * r, 4 + 2 * r
        hidden, stats[first] = net.banded(quarter, first, rows)
        net.normalize(hidden, first, stats[first], rows)
        update, stats[second] = net.banded(hidden, second, rows)
        del hidden
        crop = net.trim(first) + net.trim(second)
        if crop:  # valid convs: the shortcut loses what they lost
            quarter = quarter[crop:quarter.shape[0] - crop, crop:quarter.shape[1] - crop]
        quarter += net.normalize(update, second, stats[second], rows)
        del update
    height, width = 4 * quarter.shape[0], 4 * quarter.shape[1]

    decoder = Layout.plan(height // 4, width // 4, core // 4, DECODER_MARGIN, OVERLAP // 4, 1)
    acc = np.zeros((height, width, 3), np.float32)
    total = np.zeros((height, width, 1), np.float32)
    ch, cw = (4 * c for c in decoder.core)
    weight = np.outer(ramp(ch, OVERLAP if len(decoder.ys) > 1 else 0),
                      ramp(cw, OVERLAP if len(decoder.xs) > 1 else 0))[..., None]
    for k, scale in zip(net.decoder_layers, (2, 4, 4), strict=True):
        done = net.decoder_layers[:net.decoder_layers.index(k)]
        parts = []
        for window, core_box, owned in decoder.tiles():
            x = quarter[window[0]:window[1], window[2]:window[3]]
            raw, moments = net.chain(x, [*done, k], [stats[j] for j in done], relative(owned, window, scale))
            parts.append(((owned[1] - owned[0]) * (owned[3] - owned[2]), moments))
            if k == net.decoder_layers[-1]:
                cy0, cy1, cx0, cx1 = relative(core_box, window, 4)
                y, x0 = 4 * core_box[0], 4 * core_box[2]
                acc[y:y + ch, x0:x0 + cw] += raw[cy0:cy1, cx0:cx1] * weight
                total[y:y + ch, x0:x0 + cw] += weight
        stats[k] = combine(parts)
    del quarter
    acc /= total
    out = net.normalize(acc, net.decoder_layers[-1], stats[net.decoder_layers[-1]], 4 * rows)
    core_out = out[MARGIN:MARGIN + h, MARGIN:MARGIN + w]
    gain, offset = np.asarray(spec.output_scale, np.float32), np.asarray(spec.output_shift, np.float32)
    return np.clip(np.round(np.tanh(core_out) * gain + offset), 0, 255).astype(np.uint8)


def padded_pixels(height: int, width: int) -> int:
    """Pixels the untiled net runs on: the frame with its reflect margin, rounded up to a multiple of 4."""
    return math.prod(-(-(side + 2 * MARGIN) // ALIGN) * ALIGN for side in (height, width))


def core_for(height: int, width: int, headroom: int) -> int:
    """The tile core (full-resolution pixels) for a height x width frame with `headroom` bytes to spare
    (TensorFlow loaded). Measured (bench/bench_memory.py): the whole-frame maps take
    BYTES_PER_PIXEL["fast_tiled"] per pixel, one window (core + 2 x ENCODER_MARGIN on a side) the TF
    graph's ["fast"]; never below MIN_CORE (best effort, not refused here)."""
    spare = headroom - TILED_OVERHEAD - BYTES_PER_PIXEL["fast_tiled"] * padded_pixels(height, width)
    side = int(math.sqrt(max(0, spare) / BYTES_PER_PIXEL["fast"])) - 2 * ENCODER_MARGIN
    return max(MIN_CORE, side // ALIGN * ALIGN)
