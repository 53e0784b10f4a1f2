"""The fast engine's transform net in TensorFlow: `transform`, the reference (also trained by
`vpipe train-style` and tiled by `tiles`), and `network`, the same maths rearranged for inference, in
the forms each backend's kernels run fastest (`form`: "tf", "xnnpack" or "openvino"; `convs`):

- The 9x9 convs at the ends (3 -> 32 and 32 -> 3 channels) starve a GEMM of channels. For TF's kernels
  they run on the space-to-depth grid (small-kernel convs with r*r times the channels, then
  depth-to-space); for XNNPACK and OpenVINO the last one runs as 3x3 parts summed with shifts.
- The decoder's 2x upsampling (transposed conv, or nearest resize + conv): for TF and XNNPACK one
  stride-1 conv on the low-resolution input with 4x the output channels, then depth-to-space
  (sub-pixel form: no scattered writes, no 4x larger intermediate), with each output phase's window
  moved onto a shared one where that makes the kernel smaller (resize 3x3: 2x2 and a 1-pixel crop, not
  the 3x3 union of which each phase reads 2x2: 2.25x fewer multiply-adds); for OpenVINO one stride-2
  transposed conv (its deconvolution kernel; resize 3x3 becomes 4x4, the same 16 taps per pixel).
- Instance norm applies one multiply-add; its statistics come in one pass (E[x], E[x^2]), except on
  OpenVINO, where the variance of the centred values is the pattern it fuses into one MVN kernel (not
  on the 3-channel output, where its MVN ran slower).
- Precision: the convs run in bf16/fp16 when asked, with the statistics, the residual stream and
  the output in fp32.

Measured against the single sub-pixel/one-pass form on both backends (2 threads, min of 7 interleaved,
two runs at load 3-5 on the 2 cores): vpipe's starry_night on OpenVINO 1.36-1.41x faster at 640x360
and 1.36-1.37x at 1920x1080, on XNNPACK 1.13x and 1.11-1.15x; Engstrom's wave on OpenVINO 1.07-1.17x
and 1.16-1.25x (XNNPACK: its decoder was already 2x2, unchanged).

The rearranged kernels are built once in numpy (exact: only the summation order changes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from pipeline.engines.fast import weights
from pipeline.engines.fast.variant import Spec

EPS = 1e-3
Conv = Callable[[tf.Tensor], tf.Tensor]


def _reference_norm(x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    mu, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    return (x - mu) / tf.sqrt(var + EPS) * scale + shift


def conv(x: tf.Tensor, kernel: tf.Tensor, up: str = "", stride: int = 1) -> tf.Tensor:
    """One layer's conv: plain (with `stride`), or doubling the size as the decoder `up` says.

    Also the tiled path's (`tiles`), so tiled and untiled frames run the same convs.
    """
    s = tf.shape(x)
    if up == "transpose":
        out_shape = tf.stack([s[0], s[1] * 2, s[2] * 2, tf.shape(kernel)[2]])
        return tf.nn.conv2d_transpose(x, kernel, out_shape, strides=2, padding="SAME")
    if up == "resize":
        x = tf.image.resize(x, tf.stack([s[1] * 2, s[2] * 2]), method="nearest")
        return tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
    return tf.nn.conv2d(x, kernel, strides=stride, padding="SAME")


def _reference_layer(x: tf.Tensor, w: Sequence[tf.Tensor], i: int, up: str = "", stride: int = 1,
                     relu: bool = True) -> tf.Tensor:
    kernel, shift, scale = w[3 * i : 3 * i + 3]
    x = _reference_norm(conv(x, kernel, up, stride), shift, scale)
    return tf.nn.relu(x) if relu else x


def transform(x: tf.Tensor, w: Sequence[tf.Tensor], decoder: str = "transpose") -> tf.Tensor:
    """The transform net on RGB 0..255 (N, H, W, 3), H and W multiples of 4 -> float RGB 0..255.

    Also used (with trainable variables) by `vpipe train-style`.
    """
    blocks = weights.blocks_of(len(w) // 3)
    x = _reference_layer(x, w, 0)
    x = _reference_layer(x, w, 1, stride=2)
    x = _reference_layer(x, w, 2, stride=2)
    for r in range(blocks):
        x = x + _reference_layer(_reference_layer(x, w, 3 + 2 * r), w, 4 + 2 * r, relu=False)
    last = 3 + 2 * blocks
    x = _reference_layer(x, w, last, decoder)
    x = _reference_layer(x, w, last + 1, decoder)
    x = _reference_layer(x, w, last + 2, relu=False)
    return tf.clip_by_value(tf.tanh(x) * 150.0 + 127.5, 0.0, 255.0)


def s2d_kernel(kernel: np.ndarray, r: int) -> tuple[np.ndarray, int, int]:
    """A stride-1 SAME conv [K, K, C, O] as a VALID conv on space_to_depth(pad(x, lo, hi), r).

    Returns the [D, D, r*r*C, r*r*O] kernel and the zero padding (lo, hi) of each spatial side.
    Input sides must divide by r.
    """
    k, _, c, o = kernel.shape
    half = k // 2
    d = -(-(r - 1 + k) // r)
    out = np.zeros([d, d, r, r, c, r, r, o], np.float32)
    for di in range(d):
        for qi in range(r):
            for pi in range(r):
                a = r * di + qi - pi
                if not 0 <= a < k:
                    continue
                for dj in range(d):
                    for qj in range(r):
                        for pj in range(r):
                            b = r * dj + qj - pj
                            if 0 <= b < k:
                                out[di, dj, qi, qj, :, pi, pj, :] = kernel[a, b]
    return out.reshape(d, d, r * r * c, r * r * o), half, r * (d - 1) - half


def _up_taps(k: int, decoder: str) -> list[tuple[int, int, int]]:
    """(kernel tap t, output phase p, input offset d) along one axis: out[2m + p] += x[m + d] * k[t]."""
    taps = []
    for t in range(k):
        for p in (0, 1):
            if decoder == "transpose":  # TF's SAME transposed conv: the forward conv pads max(k - 2, 0) // 2 before
                lead = max(k - 2, 0) // 2
                if (p + lead - t) % 2 == 0:
                    taps.append((t, p, (p + lead - t) // 2))
            else:  # nearest 2x upsample, then a SAME conv (padding (k - 1) // 2 before)
                taps.append((t, p, (p + t - (k - 1) // 2) // 2))
    return taps


def up_kernel(kernel: np.ndarray, decoder: str) -> tuple[np.ndarray, int, int, int]:
    """The decoder's 2x upsampling conv as a VALID conv on pad(x, lo, hi) with 4x the output channels.

    `kernel` is [k, k, out, in] for "transpose" (TF conv2d_transpose layout) and [k, k, in, out] for
    "resize". Returns (kernel, lo, hi, crop): depth_to_space(result, 2) with `crop` pixels cut from each
    side is the upsampled output. Each output phase reads its own window of the input; placed as they
    fall (crop 0), the union of the windows is the kernel (3x3 for resize 3x3, of which each phase uses
    2x2: 5/9 zeros); with each phase's window moved onto a shared one (phase p of pixel m computed at
    m + p, into the depth-to-space slot of phase 1 - p: crop 1), it is only as wide as one phase's
    window (2x2 there). The smaller of the two is returned.
    """
    k = kernel.shape[0]
    kio = np.transpose(kernel, (0, 1, 3, 2)) if decoder == "transpose" else kernel
    c, o = kio.shape[2:]
    taps = _up_taps(k, decoder)
    forms = []
    for crop in (0, 1):  # at crop 1, phase p's offsets d become window rows d - p + lo
        lo = max(crop * p - d for _, p, d in taps)
        size = max(d - crop * p for _, p, d in taps) + lo + 1
        out = np.zeros([size, size, c, 2, 2, o], np.float32)
        for ti, pi, di in taps:
            for tj, pj, dj in taps:
                slot_i, slot_j = (1 - pi, 1 - pj) if crop else (pi, pj)
                out[di - crop * pi + lo, dj - crop * pj + lo, :, slot_i, slot_j, :] += kio[ti, tj]
        out = out.reshape(size, size, c, 4 * o)
        hi = size - 1 - lo + crop  # z needs H + crop rows: H + lo + hi - size + 1
        # all-zero outer rows and columns (a kernel zero-padded to an even size, e.g. Torch's 3x3 as 4x4)
        # cost multiply-adds for nothing: drop them
        while size > 1 and not out[0].any() and not out[:, 0].any():
            out, lo, size = out[1:, 1:], lo - 1, size - 1
        while size > 1 and not out[-1].any() and not out[:, -1].any():
            out, hi, size = out[:-1, :-1], hi - 1, size - 1
        forms.append((np.ascontiguousarray(out), lo, hi, crop))
    return min(forms, key=lambda f: f[0].shape[0])


def transposed_kernel(kernel: np.ndarray, decoder: str) -> np.ndarray:
    """The decoder's 2x upsampling conv as one stride-2 SAME transposed conv ([K, K, out, in], TF's layout):
    the original kernel for "transpose"; for "resize" (nearest 2x, then a kxk conv), a (k+1)x(k+1) kernel
    holding each phase's taps (4x4 for 3x3: 16 multiply-adds per input pixel and channel pair, against
    the sub-pixel form's 36, or 16 plus a crop)."""
    k = kernel.shape[0]
    kio = np.transpose(kernel, (0, 1, 3, 2)) if decoder == "transpose" else kernel
    # conv2d_transpose SAME, stride 2: out[2m + p] += x[m + d] * K[p - 2d + lead], lead = (K - 2) // 2
    taps = [(t, p - 2 * d) for t, p, d in _up_taps(k, decoder)]
    lead = max(-s for _, s in taps)
    size = max(max(s for _, s in taps) + lead + 1, 2 * lead + 2)
    if (size - 2) // 2 != lead:
        raise ValueError(f"no SAME transposed conv holds this {k}x{k} {decoder} kernel")
    out = np.zeros([size, size, *kio.shape[2:][::-1]], np.float32)
    for ti, si in taps:
        for tj, sj in taps:
            out[si + lead, sj + lead] += kio[ti, tj].T
    return out


def _padded(x: tf.Tensor, lo: int, hi: int) -> tf.Tensor:
    return tf.pad(x, [[0, 0], [lo, hi], [lo, hi], [0, 0]]) if lo or hi else x


def _conv(kernel: np.ndarray, stride: int, dtype: tf.DType) -> Conv:
    k = tf.constant(kernel, dtype)
    return lambda x: tf.nn.conv2d(x, k, stride, "SAME")


def _s2d_conv(kernel: np.ndarray, r: int, dtype: tf.DType) -> Conv:
    k2, lo, hi = s2d_kernel(kernel, r)
    k = tf.constant(k2, dtype)
    return lambda x: tf.nn.depth_to_space(tf.nn.conv2d(tf.nn.space_to_depth(_padded(x, lo, hi), r), k, 1, "VALID"), r)


def _up_conv(kernel: np.ndarray, decoder: str, dtype: tf.DType) -> Conv:
    k2, lo, hi, crop = up_kernel(kernel, decoder)
    k = tf.constant(k2, dtype)
    return lambda x: _crop(tf.nn.depth_to_space(tf.nn.conv2d(_padded(x, lo, hi), k, 1, "VALID"), 2), crop)


def _transposed_conv(kernel: np.ndarray, decoder: str, dtype: tf.DType) -> Conv:
    k = tf.constant(transposed_kernel(kernel, decoder), dtype)

    def conv(x: tf.Tensor) -> tf.Tensor:
        s = tf.shape(x)
        return tf.nn.conv2d_transpose(x, k, tf.stack([s[0], s[1] * 2, s[2] * 2, k.shape[2]]), 2, "SAME")

    return conv


def _split_conv(kernel: np.ndarray, k: int, dtype: tf.DType) -> Conv:
    """A stride-1 SAME KxK conv as one kxk conv to g*g times the output channels (g = ceil(K / k)),
    then the sum of g*g shifted slices: the same multiply-adds as the KxK conv, in a GEMM with more
    output channels (the last conv has only 3)."""
    size, _, _, o = kernel.shape
    g = -(-size // k)
    padded = np.zeros([g * k, g * k, *kernel.shape[2:]], np.float32)
    padded[:size, :size] = kernel
    parts = [(a, b) for a in range(g) for b in range(g)]
    k2 = tf.constant(np.concatenate([padded[k * a:k * a + k, k * b:k * b + k] for a, b in parts], 3), dtype)
    lo = size // 2
    extra = k * (g - 1)  # z is this much larger than the input on each axis

    def conv(x: tf.Tensor) -> tf.Tensor:
        z = tf.nn.conv2d(_padded(x, lo, g * k - 1 - lo), k2, 1, "VALID")
        slices = [z[:, k * a:(k * a - extra) or None, k * b:(k * b - extra) or None, n * o:(n + 1) * o]
                  for n, (a, b) in enumerate(parts)]
        return sum(slices[1:], slices[0])  # chained ADDs: XNNPACK runs them, not TF Lite's ADD_N

    return conv


# How the wide-kernel ends run, by backend (measured on the Engstrom 9x9 ends at 640x360, 2 threads):
# TF's oneDNN convs gain from the space-to-depth grid (first r=2, last r=4); XNNPACK runs the 3 -> 32
# conv fastest as it is (23 ms; s2d 30) and the 32 -> 3 conv as 3x3 parts (35 ms; s2d 42, plain 72).
# OpenVINO likewise: the last as 3x3 parts (wave, 640x360, load 3: 202 ms a frame against 331 plain; in
# another run 384 against 446 with s2d r=4 and 418 as 2x2 parts), the first as it is (s2d r=2: 400 ms).
# vpipe's 3x3 16 -> 3 last conv measured no faster as 2x2 parts or with s2d r=2 (within the noise).
# The decoder (starry_night, 640x360, one run each, load 2-3): on OpenVINO the transposed conv took 49 ms a
# frame against 57 for the 3x3 sub-pixel conv (52 against 61, the 2x2-window one no faster than 3x3); on
# XNNPACK the 2x2-window sub-pixel conv 77 against 88, the transposed conv 187 (not delegated to XNNPACK
# with a dynamic output shape).
FIRST_R, LAST_R, SPLIT = 2, 4, 3
FORMS = ("tf", "xnnpack", "openvino")


def convs(arrays: Sequence[np.ndarray], decoder: str, dtype: tf.DType = tf.float32, form: str = "tf") -> list[Conv]:
    """One callable per layer, in network order (the layout of `weights.layers`), in the forms that are
    fastest on the kernels of `form`: TF's own, XNNPACK's or OpenVINO's CPU plugin's."""
    n = len(arrays) // 3
    out: list[Conv] = []
    for i in range(n):
        kernel = arrays[3 * i]
        wide = kernel.shape[0] >= 7
        if i in (n - 3, n - 2):
            out.append((_transposed_conv if form == "openvino" else _up_conv)(kernel, decoder, dtype))
        elif i == 0 and wide and form == "tf":
            out.append(_s2d_conv(kernel, FIRST_R, dtype))
        elif i == n - 1 and wide:
            out.append(_s2d_conv(kernel, LAST_R, dtype) if form == "tf" else _split_conv(kernel, SPLIT, dtype))
        else:
            out.append(_conv(kernel, 2 if i in (1, 2) else 1, dtype))
    return out


def instance_norm(x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor, eps: float = EPS,
                  centred: bool = False) -> tf.Tensor:
    """Per image and channel, in fp32: the statistics, then one multiply-add to apply them.

    The variance in one pass (E[x^2] - E[x]^2), or with `centred` as the mean squared difference from
    the mean: a second pass, but the pattern OpenVINO fuses into its MVN kernel (with the multiply-add
    and the ReLU after it), where the one-pass form runs as separate reductions and element-wise ops.
    """
    mean = tf.reduce_mean(x, [1, 2], keepdims=True)
    if centred:
        var = tf.reduce_mean(tf.math.squared_difference(x, mean), [1, 2], keepdims=True)
    else:
        var = tf.maximum(tf.reduce_mean(tf.square(x), [1, 2], keepdims=True) - tf.square(mean), 0.0)
    gain = scale * tf.math.rsqrt(var + eps)
    return x * gain + (shift - mean * gain)


def _crop(x: tf.Tensor, t: int) -> tf.Tensor:
    return x[:, t:-t, t:-t] if t else x


def network(arrays: Sequence[np.ndarray], decoder: str, dtype: tf.DType = tf.float32,
            form: str = "tf", spec: Spec | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """(N, H, W, 3) float32 RGB 0..255, H and W multiples of 4 -> (N, H, W, 3) uint8; `form`: the layer
    forms for TF, XNNPACK or OpenVINO (`convs`, `instance_norm`); `spec`: the model's "vpipe" fields
    (fast_spec; default Engstrom's)."""
    spec = spec or Spec()
    layer_convs = convs(arrays, decoder, dtype, form)
    norms = [(tf.constant(arrays[3 * i + 1]), tf.constant(arrays[3 * i + 2])) for i in range(len(layer_convs))]
    blocks = weights.blocks_of(len(layer_convs))
    trims = [spec.trim(i, int(arrays[3 * i].shape[0]), blocks) for i in range(len(layer_convs))]

    def layer(x: tf.Tensor, i: int, relu: bool = True) -> tf.Tensor:
        y = tf.cast(_crop(layer_convs[i](tf.cast(x, dtype)), trims[i]), tf.float32)
        if spec.norm(i) == "instance":
            # OpenVINO's MVN over the 3 output channels ran 5-70 ms where the one-pass form takes 2-3
            y = instance_norm(y, *norms[i], spec.eps, centred=form == "openvino" and i < len(layer_convs) - 1)
        else:
            y = y * norms[i][1] + norms[i][0]
        return tf.nn.relu(y) if relu else y

    def forward(x: tf.Tensor) -> tf.Tensor:
        if spec.input_shift != (0.0, 0.0, 0.0):
            x = x + tf.constant(spec.input_shift, tf.float32)
        if spec.input_pad:
            p = spec.input_pad
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
        x = layer(layer(layer(x, 0), 1), 2)
        for r in range(blocks):
            a, b = 3 + 2 * r, 4 + 2 * r
            x = _crop(x, trims[a] + trims[b]) + layer(layer(x, a), b, relu=False)
        last = 3 + 2 * blocks
        x = layer(layer(layer(x, last), last + 1), last + 2, relu=False)
        y = tf.tanh(x) * tf.constant(spec.output_scale, tf.float32) + tf.constant(spec.output_shift, tf.float32)
        return tf.cast(tf.round(tf.clip_by_value(y, 0.0, 255.0)), tf.uint8)

    return forward


DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}
SIGNATURE = [tf.TensorSpec([None, None, None, 3], tf.float32)]


def graph(arrays: Sequence[np.ndarray], decoder: str, precision: str = "fp32",
          spec: Spec | None = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """The network as one TF graph; None dims, so a new frame size does not retrace it."""
    return tf.function(network(arrays, decoder, DTYPES[precision], spec=spec), input_signature=SIGNATURE)
