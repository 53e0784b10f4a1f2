"""Gatys et al. per-frame optimization, with Ruder et al.'s temporal loss for video.

The losses are small pure functions; only the value-and-gradient step is compiled (one trace per
frame size). Style targets (Gram matrices) are computed once per worker and frame size. The
optimizer (L-BFGS by default, or Adam) runs its whole budget in one piece with an early stop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tensorflow as tf

from pipeline import optimize, storage
from pipeline.engines import features
from pipeline.engines.base import Guide
from pipeline.errors import ModelError, UsageError
from pipeline.optimize import Callback  # the name `optimize` is a method in the engine's class

# ---------------------------------------------------------------- losses (pure)


def batch_gram(feature: tf.Tensor) -> tf.Tensor:
    """(B, H, W, C) activations -> (B, C, C) Gram matrices, each averaged over positions."""
    size = tf.cast(tf.shape(feature)[1] * tf.shape(feature)[2], tf.float32)
    return tf.einsum("bijc,bijd->bcd", feature, feature) / size


def gram(feature: tf.Tensor) -> tf.Tensor:
    """(1, H, W, C) activations -> (C, C) Gram matrix averaged over positions."""
    return batch_gram(feature)[0]


def style_loss(grams: dict[str, tf.Tensor], targets: dict[str, tf.Tensor], weights: dict[str, float]) -> tf.Tensor:
    """sum_l w_l ||G_l - A_l||^2 / ||A_l||^2: each layer counts by its weight, whatever its scale."""
    return tf.add_n([w * tf.reduce_sum(tf.square(grams[k] - targets[k])) / (tf.reduce_sum(tf.square(targets[k])) + 1e-8)
                     for k, w in weights.items()])


def content_loss(feats: dict[str, tf.Tensor], targets: dict[str, tf.Tensor]) -> tf.Tensor:
    """sum_l ||F_l - P_l||^2 / ||P_l||^2."""
    return tf.add_n([tf.reduce_sum(tf.square(feats[k] - targets[k])) / (tf.reduce_sum(tf.square(targets[k])) + 1e-8)
                     for k in targets])


def tv_loss(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of neighbouring pixels, image in 0..255 scaled to 0..1."""
    x = image / 255.0
    return tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1])) + tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1]))


def temporal_loss(image: tf.Tensor, warped: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Ruder's (1/D) sum_k c_k (x_k - w_k)^2, D = H*W*C, per pixel (mask HxW), in 0..1 units."""
    diff = (image - warped) / 255.0
    return tf.reduce_mean(mask[None, :, :, None] * tf.square(diff))


# ---------------------------------------------------------------- pyramid and palette (pure)

SMALLEST = 64  # px on the short side: a coarser level has too few positions for the deeper layers' Grams


def pyramid_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """(h, w) of each level of a coarse-to-fine pyramid, coarsest first, ending at the frame's own size;
    each level halves the next, and levels whose short side would fall under SMALLEST are left out."""
    sizes = [(height, width)]
    while len(sizes) < levels and min(sizes[0]) // 2 >= SMALLEST:
        h, w = sizes[0]
        sizes.insert(0, (round(h / 2), round(w / 2)))
    return sizes


def match_palette(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`image` (RGB) with its colours moved to the reference's: the affine map that gives its pixels the
    reference's mean and covariance (Gatys et al. 2017, "colour control"), float32 in 0..255. The
    frame's covariance gets a floor of 10 levels of spread: a near-flat frame (a fade) is not blown up to noise."""
    x = image.reshape(-1, 3).astype(np.float64)
    r = reference.reshape(-1, 3).astype(np.float64)

    def sqrt_cov(pixels: np.ndarray, power: float, floor: float) -> np.ndarray:
        values, vectors = np.linalg.eigh(np.cov(pixels, rowvar=False) + floor * np.eye(3))
        return (vectors * np.maximum(values, 1e-6) ** power) @ vectors.T

    mapped = (x - x.mean(0)) @ (sqrt_cov(r, 0.5, 1e-3) @ sqrt_cov(x, -0.5, 100.0)).T + r.mean(0)
    return np.clip(mapped, 0, 255).reshape(image.shape).astype(np.float32)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Float image to (height, width): area when shrinking, cubic when growing."""
    if image.shape[:2] == (height, width):
        return image
    shrink = height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


# ---------------------------------------------------------------- the engine


@dataclass(frozen=True)
class Settings:
    net: str = "squeezenet"
    iterations: int = 300
    first_iterations: int | None = None  # a frame with no warm start (default 2x iterations)
    optimizer: str = "lbfgs"
    learning_rate: float = 0.02 * 255  # Adam in pixel units (0..255): the popular TF2 recipe's 0.02 on 0..1
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 10.0
    tolerance: float = 1e-4
    window: int = 20
    seed: int = 0
    init: str = "content"  # first frame: "content" or seeded "noise"
    pyramid: int = 1  # a cold frame is optimized coarse to fine over this many sizes, each twice the last
    palette: str = "painting"  # "painting": the frame's colours are matched to the painting's first
    style_scale: float = 1.0  # the painting is scaled to this times the frame's long side for its Gram targets
    content_layers: tuple[str, ...] = ()
    style_layers: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def from_options(options: dict[str, Any]) -> Settings:
        known = set(Settings.__dataclass_fields__)
        unknown = set(options) - known - {"threads", "batch", "style_image", "max_memory"}
        if unknown:
            raise UsageError(f"gatys: unknown options {', '.join(sorted(unknown))}")
        values = {k: v for k, v in options.items() if k in known and v is not None}
        if "content_layers" in values:
            values["content_layers"] = tuple(values["content_layers"])
        if "style_layers" in values:
            values["style_layers"] = {str(k): float(v) for k, v in dict(values["style_layers"]).items()}
        settings = Settings(**values)
        if settings.optimizer not in ("lbfgs", "adam"):
            raise UsageError(f"gatys: optimizer must be lbfgs or adam, not {settings.optimizer!r}")
        if settings.palette not in ("source", "painting"):
            raise UsageError(f"gatys: palette must be source or painting, not {settings.palette!r}")
        return settings


class GatysEngine:
    name = "gatys"

    def __init__(self, style_image: np.ndarray, net: features.FeatureNet, settings: Settings) -> None:
        self.settings = settings
        self.net = net
        content, style = features.DEFAULT_LAYERS[net.name]
        self.content_layers = settings.content_layers or content
        self.style_weights = settings.style_layers or style
        self.wanted = tuple(dict.fromkeys([*self.content_layers, *self.style_weights]))
        known = [name for name, kind, _ in net.layers if kind != "pool"]
        unknown = [name for name in self.wanted if name not in known]
        if unknown:
            raise UsageError(f"gatys: {net.name} has no layer {', '.join(unknown)} (layers: {', '.join(known)})")
        self.style_image = style_image
        self._targets: dict[tuple[int, int], dict[str, tf.Tensor]] = {}
        self._step = tf.function(self._value_and_grad, reduce_retracing=True)

    # ------------------------------------------------------------ targets

    def style_targets(self, height: int, width: int) -> dict[str, tf.Tensor]:
        """Gram matrices of the style image scaled to the frame's long side; once per size."""
        key = (height, width)
        if key not in self._targets:
            sh, sw = self.style_image.shape[:2]
            scale = self.settings.style_scale * max(height, width) / max(sh, sw)
            size = (max(16, round(sw * scale)), max(16, round(sh * scale)))
            image = cv2.resize(self.style_image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
            feats = self.net(tf.constant(image[None], tf.float32), list(self.style_weights))
            self._targets[key] = {k: gram(feats[k]) for k in self.style_weights}
        return self._targets[key]

    # ------------------------------------------------------------ the compiled step

    def _value_and_grad(self, image: tf.Tensor, content: dict[str, tf.Tensor], grams: dict[str, tf.Tensor],
                        warped: tf.Tensor, mask: tf.Tensor, temporal_weight: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        s = self.settings
        with tf.GradientTape() as tape:
            tape.watch(image)
            feats = self.net(image, self.wanted)
            loss = (s.content_weight * content_loss({k: feats[k] for k in content}, content)
                    + s.style_weight * style_loss({k: gram(feats[k]) for k in grams}, grams, self.style_weights)
                    + s.tv_weight * tv_loss(image)
                    + temporal_weight * temporal_loss(image, warped, mask))
        return loss, tape.gradient(loss, image)

    def objective(self, frame: np.ndarray, guide: Guide | None) -> optimize.ValueAndGrad:
        """value_and_grad over images (H, W, 3) float in 0..255 for this frame (and guide): the frame as the
        content target (already in the painting's palette where the settings ask for it)."""
        h, w = frame.shape[:2]
        content_feats = self.net(tf.constant(frame[None], tf.float32), list(self.content_layers))
        content = {k: content_feats[k] for k in self.content_layers}
        grams = self.style_targets(h, w)
        if guide is not None:
            warped, mask = tf.constant(guide.warped[None], tf.float32), tf.constant(guide.mask, tf.float32)
            weight = tf.constant(guide.weight, tf.float32)
        else:
            warped, mask, weight = tf.zeros((1, h, w, 3)), tf.zeros((h, w)), tf.constant(0.0)

        def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
            loss, grad = self._step(tf.constant(x[None], tf.float32), content, grams, warped, mask, weight)
            return float(loss), grad.numpy()[0]

        return fg

    # ------------------------------------------------------------ stylizing

    def initial(self, frame: np.ndarray, guide: Guide | None) -> tuple[np.ndarray, str]:
        """Warm start from the warped previous output (content where unreliable), else content/noise."""
        if guide is not None:
            mask = guide.mask[..., None]
            return mask * guide.warped + (1 - mask) * frame.astype(np.float32), "warped"
        if self.settings.init == "noise":
            rng = np.random.default_rng(self.settings.seed)
            return rng.uniform(0, 255, frame.shape).astype(np.float32), "noise"
        return frame.astype(np.float32), "content"

    def optimize(self, frame: np.ndarray, guide: Guide | None, x0: np.ndarray, iterations: int,
                 callback: optimize.Callback | None = None) -> optimize.Result:
        s = self.settings
        fg = self.objective(frame, guide)
        stop = optimize.EarlyStop(s.tolerance, s.window)
        if s.optimizer == "adam":
            # beta1 0.99, eps 0.1 on a 0..1 image (the recipe's) is eps 0.1 / 255 in pixel units
            return optimize.adam(fg, x0, iterations, s.learning_rate, 0.99, 0.999, 0.1 / 255, (0.0, 255.0),
                                 stop, callback)
        return optimize.lbfgs(fg, x0, iterations, stop=stop, callback=callback)

    def content_frame(self, frame: np.ndarray) -> np.ndarray:
        """The frame the content loss (and a cold start) sees: in the painting's palette if so set."""
        if self.settings.palette == "painting":
            return match_palette(frame, self.style_image)
        return frame.astype(np.float32)

    def stylize_guided(self, frame: np.ndarray, guide: Guide | None,
                       callback: Callback | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """A warm frame (guide) is optimized at its size with the plain budget; a cold one coarse to fine,
        its budget shared equally by the pyramid's levels, each level starting from the one below.
        `callback` sees each iteration at the frame's own size (the last level) and may stop it."""
        started = time.monotonic()
        content = self.content_frame(frame)
        x0, init = self.initial(content, guide)
        if guide is not None:
            result = self.optimize(content, guide, x0, self.settings.iterations, callback)
            iterations, evaluations = result.iterations, result.evaluations
        else:
            height, width = frame.shape[:2]
            sizes = pyramid_sizes(height, width, self.settings.pyramid)
            budget = max(1, (self.settings.first_iterations or 2 * self.settings.iterations) // len(sizes))
            x, iterations, evaluations = resize(x0, *sizes[0]), 0, 0
            for h, w in sizes:
                last = (h, w) == sizes[-1]
                result = self.optimize(resize(content, h, w), None, resize(x, h, w), budget, callback if last else None)
                x, iterations, evaluations = result.x, iterations + result.iterations, evaluations + result.evaluations
        styled = np.clip(np.rint(result.x), 0, 255).astype(np.uint8)
        return styled, {"iterations": iterations, "evaluations": evaluations,
                        "loss": round(result.loss, 6), "stop": result.reason, "init": init,
                        "optimize_seconds": round(time.monotonic() - started, 3)}

    def stylize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.stylize_guided(f, None)[0] for f in frames]


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 image, or a one-line error."""
    try:
        return storage.read_rgb(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"style image {path} is missing or not a readable image") from exc


def load(model: Path | None, options: dict[str, Any]) -> GatysEngine:
    """Factory for the worker: `model` is the feature network's weight file, options carry the rest."""
    settings = Settings.from_options(options)
    if options.get("threads"):
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(options["threads"]))
        except RuntimeError:  # TensorFlow's runtime already runs in this process: it keeps its settings
            pass
    style = read_image(Path(options["style_image"]))
    net = features.load(settings.net, Path(model) if model else None)
    return GatysEngine(style, net, settings)
