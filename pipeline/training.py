"""`vpipe train-style`: train a feed-forward (Johnson-style) network for one painting.

Two recipes. Distillation (the default where the arbitrary engine's models are present): a teacher
that already stylizes well paints every training image once (cached, resumable), and the network
learns to reproduce it: pixel regression (L1 + L2), feature regression and the Gram matrices of the
teacher's output on a feature network, plus the Gram loss against the painting itself (the Gram
recipe's style loss: the regression alone paints the teacher's average, in duller colours). That is a
supervised image-to-image problem, so a few thousand CPU steps keep the objects of the frame readable.
The Gram recipe (`--teacher none`): perceptual loss on a feature network (the gatys engine's losses:
Gram style against the painting, content, TV). Both use Adam on random crops from photos and video
frames. With a temporal weight, each step also takes pairs of consecutive video frames with their DIS
flow and Ruder's reliability mask, and penalizes the difference between the output of frame t and the
warped output of frame t-1 where reliable (the ReCoNet idea), so the network is steady with no flow
at inference time.

Checkpoints (tf.train.Checkpoint: weights, optimizer, step) make a run resumable after a crash; the
data of step k depends only on (seed, k), so a resumed run sees what the lost one would have seen.
The result is written in the lengstrom layout, so `--engine fast` uses it at once.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from . import flow, storage, video
from . import teacher as teaching
from .engines import features, gatys
from .engines.fast import network, padding, weights
from .errors import UsageError
from .teacher import Teacher

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class Plan:
    size: int = 192  # crop side
    steps: int = 700
    batch: int = 4
    learning_rate: float = 1e-3
    decay_from: float = 0.75  # from here (a share of the steps) the rate falls to a tenth (learning_rate())
    channels: tuple[int, int, int] = (12, 24, 48)  # slim; (32, 64, 128) is the full Johnson net
    blocks: int = 3
    # First and last kernel sizes and the decoder. The slim net's 5/3 and resize decoder cost 5x less
    # than the Johnson net's 9/9 and transposed convs at 640x360, and do not paint a checkerboard.
    kernels: tuple[int, int] = (5, 3)
    decoder: str = "resize"
    style_weight: float = 7.0  # the Gram loss against the painting (cli/train.py RECIPES: distillation 1.5, Gram 7)
    content_weight: float = 1.0
    tv_weight: float = 30.0
    temporal_weight: float = 0.0  # the CLI sets it per recipe (cli/train.py RECIPES: distillation 300, Gram 1500)
    # Distillation (a teacher given to train()): pixel L1 + 4 L2 on [0, 1], plus these on the feature net
    feature_weight: float = 1.0  # content-layer features of the output vs the teacher's output
    gram_weight: float = 3.0  # Gram matrices of the output vs the teacher's output (keeps the strokes' contrast)
    seed: int = 0
    checkpoint_every: int = 100


def learning_rate(plan: Plan, step: int) -> float:
    """Adam's rate at a step: constant, then a cosine down to a tenth over the steps from `decay_from` on,
    so the last steps settle instead of bouncing on the noise of 4-crop batches. A pure function of the
    step, so a resumed run follows the same schedule."""
    start = int(plan.steps * plan.decay_from)
    if step < start:
        return plan.learning_rate
    done = (step - start) / max(plan.steps - start, 1)
    return plan.learning_rate * (0.1 + 0.45 * (1.0 + math.cos(math.pi * done)))


# ---------------------------------------------------------------- data


Pair = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # prev, cur, flow cur->prev, mask on cur


@dataclass
class Data:
    """Training images and consecutive-frame pairs. Once taught (`with_targets`), every image and every
    frame of a pair carries the teacher's output as 3 more channels (HxWx6), so crops stay aligned."""

    images: list[np.ndarray]  # RGB uint8, short side ~256
    pairs: list[Pair]

    def frames(self) -> list[np.ndarray]:
        """Every image the teacher paints: the images, then prev and cur of each pair."""
        return self.images + [f for prev, cur, _, _ in self.pairs for f in (prev, cur)]

    def with_targets(self, targets: list[np.ndarray]) -> Data:
        """The same data with the teacher's output for each of frames() stacked on as channels 3-5."""
        if len(targets) != len(self.frames()):
            raise ValueError(f"{len(targets)} teacher outputs for {len(self.frames())} training images")
        stacked = [np.concatenate([f, t], axis=-1) for f, t in zip(self.frames(), targets, strict=True)]
        n = len(self.images)
        pairs = [(stacked[n + 2 * k], stacked[n + 2 * k + 1], to_prev, mask)
                 for k, (_, _, to_prev, mask) in enumerate(self.pairs)]
        return Data(stacked[:n], pairs)


def _decode(video_path: Path, out: Path, frames: int, short_side: int) -> list[np.ndarray]:
    out.mkdir(parents=True, exist_ok=True)
    scale = f"scale='if(gt(iw,ih),-2,{short_side})':'if(gt(iw,ih),{short_side},-2)'"
    video.run([video.tools().ffmpeg, "-nostdin", "-v", "error", "-i", str(video_path), "-frames:v", str(frames),
               "-vf", scale, str(out / "%05d.png")], f"decoding {video_path.name}")
    return [storage.read_rgb(p) for p in sorted(out.glob("*.png"))]


def collect(sources: list[Path], short_side: int = 256, per_video: int = 300, pairs_per_video: int = 60) -> Data:
    """Training images from folders of photos and from videos; consecutive-frame pairs from the videos."""
    images: list[np.ndarray] = []
    pairs: list[Pair] = []
    with tempfile.TemporaryDirectory(prefix="vpipe-train-") as tmp:
        files = [p for s in sources for p in ([s] if s.is_file() else sorted(s.rglob("*")))]
        for n, path in enumerate(files):
            suffix = path.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                frames = _decode(path, Path(tmp) / str(n), per_video, short_side)
                images += frames[::3]
                step = max(1, (len(frames) - 1) // pairs_per_video)
                for i in range(1, len(frames), step):
                    prev, cur = frames[i - 1], frames[i]
                    g_prev, g_cur = flow.gray(prev), flow.gray(cur)
                    to_prev, to_cur = flow.compute(g_cur, g_prev), flow.compute(g_prev, g_cur)
                    pairs.append((prev, cur, to_prev, flow.reliability(to_prev, to_cur)))
            elif suffix in IMAGE_SUFFIXES:
                image = storage.read_rgb(path)
                scale = short_side / min(image.shape[:2])
                images.append(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    if not images:
        raise UsageError("--images: no photos or videos found there")
    return Data(images, pairs)


def crops(images: list[np.ndarray], size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for _ in range(count):
        image = images[rng.integers(len(images))]
        h, w = image.shape[:2]
        if min(h, w) < size:
            image = cv2.resize(image, None, fx=size / min(h, w) + 1e-3, fy=size / min(h, w) + 1e-3)
            h, w = image.shape[:2]
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        out.append(image[y:y + size, x:x + size])
    return np.stack(out).astype(np.float32)


def pair_crops(pairs: list[Pair], size: int, count: int,
               rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Aligned crops of (prev, cur, flow, mask); flow that leaves the crop is masked out."""
    prevs, curs, flows, masks = [], [], [], []
    grid_x, grid_y = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    for _ in range(count):
        prev, cur, to_prev, mask = pairs[rng.integers(len(pairs))]
        h, w = cur.shape[:2]
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        f = to_prev[y:y + size, x:x + size]
        tx, ty = grid_x + f[..., 0], grid_y + f[..., 1]
        inside = (tx >= 0) & (tx <= size - 1) & (ty >= 0) & (ty <= size - 1)
        prevs.append(prev[y:y + size, x:x + size])
        curs.append(cur[y:y + size, x:x + size])
        flows.append(f)
        masks.append(mask[y:y + size, x:x + size] * inside)
    return (np.stack(prevs).astype(np.float32), np.stack(curs).astype(np.float32),
            np.stack(flows).astype(np.float32), np.stack(masks).astype(np.float32))


# ---------------------------------------------------------------- the network and losses


def init_weights(plan: Plan, seed: int) -> list[tf.Variable]:
    """Variables in the lengstrom order: per layer kernel, IN shift, IN scale."""
    c1, c2, c3 = plan.channels
    k_in, k_out = plan.kernels
    # (kernel shape, output channels); transposed kernels are stored [k, k, out, in]
    up = [((3, 3, c2, c3), c2), ((3, 3, c1, c2), c1)]
    if plan.decoder == "resize":
        up = [((3, 3, c3, c2), c2), ((3, 3, c2, c1), c1)]
    layers = ([((k_in, k_in, 3, c1), c1), ((3, 3, c1, c2), c2), ((3, 3, c2, c3), c3)]
              + [((3, 3, c3, c3), c3)] * (2 * plan.blocks) + up + [((k_out, k_out, c1, 3), 3)])
    rng = np.random.default_rng(seed)
    out = []
    for shape, channels in layers:
        fan_in = shape[0] * shape[1] * (shape[2] + shape[3] - channels)
        out += [tf.Variable(rng.normal(0, 0.5 * np.sqrt(2.0 / fan_in), shape).astype(np.float32)),
                tf.Variable(np.zeros(channels, np.float32)), tf.Variable(np.ones(channels, np.float32))]
    return out


def tf_warp(image: tf.Tensor, to: tf.Tensor) -> tf.Tensor:
    """Bilinear sample of image (B, H, W, C) at (x + dx, y + dy) (flow.warp in TensorFlow, differentiable)."""
    b, h, w = tf.shape(image)[0], tf.shape(image)[1], tf.shape(image)[2]
    gy, gx = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32), indexing="ij")
    x = tf.clip_by_value(gx[None] + to[..., 0], 0.0, tf.cast(w - 1, tf.float32))
    y = tf.clip_by_value(gy[None] + to[..., 1], 0.0, tf.cast(h - 1, tf.float32))
    x0, y0 = tf.floor(x), tf.floor(y)
    x1, y1 = tf.minimum(x0 + 1, tf.cast(w - 1, tf.float32)), tf.minimum(y0 + 1, tf.cast(h - 1, tf.float32))
    batch = tf.broadcast_to(tf.range(b)[:, None, None], tf.shape(x))

    def at(yy: tf.Tensor, xx: tf.Tensor) -> tf.Tensor:
        return tf.gather_nd(image, tf.stack([batch, tf.cast(yy, tf.int32), tf.cast(xx, tf.int32)], axis=-1))

    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    return ((1 - wx) * (1 - wy) * at(y0, x0) + wx * (1 - wy) * at(y0, x1)
            + (1 - wx) * wy * at(y1, x0) + wx * wy * at(y1, x1))


class Trainer:
    """One network being trained. With `distill`, the data carries the teacher's output as channels 3-5
    and the loss regresses onto it; otherwise the Gram recipe against the painting."""

    def __init__(self, style_image: np.ndarray, net: features.FeatureNet, plan: Plan, distill: bool = False) -> None:
        self.plan = plan
        self.net = net
        self.distill = distill
        self.content_layers, self.style_weights = features.DEFAULT_LAYERS[net.name]
        scale = 1.5 * plan.size / max(style_image.shape[:2])  # style strokes at about the crop's scale
        style = cv2.resize(style_image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        feats = net(tf.constant(style[None], tf.float32), list(self.style_weights))
        self.targets = {k: gatys.gram(feats[k]) for k in self.style_weights}
        self.weights = init_weights(plan, plan.seed)
        self.optimizer = tf.keras.optimizers.Adam(plan.learning_rate)
        self.step = tf.Variable(0, dtype=tf.int64)
        self._train = tf.function(self._train_step, reduce_retracing=True)

    def perceptual(self, content: tf.Tensor, out: tf.Tensor) -> dict[str, tf.Tensor]:
        wanted = list(dict.fromkeys([*self.content_layers, *self.style_weights]))
        f_out = self.net(out, wanted)
        f_in = self.net(content, list(self.content_layers))
        content_loss = gatys.content_loss({k: f_out[k] for k in self.content_layers}, f_in)
        return {"content": content_loss, "style": self.painting_loss(self.grams(f_out)), "tv": gatys.tv_loss(out)}

    def grams(self, feats: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Per style layer, the (B, C, C) Gram matrices of a batch's features."""
        return {k: gatys.batch_gram(feats[k]) for k in self.style_weights}

    def painting_loss(self, grams: dict[str, tf.Tensor]) -> tf.Tensor:
        """The style loss: a batch's Gram matrices against the painting's, mean per crop
        (gatys.style_loss sums over the batch's matrices, broadcast against the target)."""
        batch = tf.cast(tf.shape(next(iter(grams.values())))[0], tf.float32)
        return gatys.style_loss(grams, self.targets, self.style_weights) / batch

    def distilled(self, out: tf.Tensor, target: tf.Tensor) -> dict[str, tf.Tensor]:
        """Regression onto the teacher's output: pixels (L1 + 4 L2 on [0, 1]), content-layer features, and
        the Gram matrices per crop (pixel regression alone averages strokes away)."""
        diff = (out - target) / 255.0
        wanted = list(dict.fromkeys([*self.content_layers, *self.style_weights]))
        f_out, f_target = self.net(out, wanted), self.net(target, wanted)
        feature = gatys.content_loss({k: f_out[k] for k in self.content_layers},
                                     {k: f_target[k] for k in self.content_layers})
        grams = self.grams(f_out)  # the teacher's term and the painting's share them
        gram = gatys.style_loss(grams, self.grams(f_target), self.style_weights)
        parts = {"pixel": tf.reduce_mean(tf.abs(diff)) + 4.0 * tf.reduce_mean(tf.square(diff)),
                 "feature": feature, "gram": gram}
        if self.plan.style_weight:
            parts["style"] = self.painting_loss(grams)
        return parts

    def _train_step(self, images: tf.Tensor, prev: tf.Tensor, cur: tf.Tensor, to_prev: tf.Tensor,
                    mask: tf.Tensor) -> dict[str, tf.Tensor]:
        p = self.plan
        with tf.GradientTape() as tape:
            out = network.transform(images[..., :3], self.weights, p.decoder)
            if self.distill:
                parts = self.distilled(out, images[..., 3:])
                loss = parts["pixel"] + p.feature_weight * parts["feature"] + p.gram_weight * parts["gram"]
                if p.style_weight:
                    loss += p.style_weight * parts["style"]
            else:
                parts = self.perceptual(images, out)
                loss = p.content_weight * parts["content"] + p.style_weight * parts["style"] + p.tv_weight * parts["tv"]
            if p.temporal_weight:
                out_prev = network.transform(prev[..., :3], self.weights, p.decoder)
                out_cur = network.transform(cur[..., :3], self.weights, p.decoder)
                diff = (out_cur - tf_warp(out_prev, to_prev)) / 255.0
                parts["temporal"] = tf.reduce_sum(mask[..., None] * tf.square(diff)) / (3 * tf.reduce_sum(mask) + 1e-6)
                loss += p.temporal_weight * parts["temporal"]
        grads = tape.gradient(loss, self.weights)
        self.optimizer.apply_gradients(zip(grads, self.weights, strict=True))
        return {"loss": loss, **parts}

    def train_step(self, data: Data, step: int) -> dict[str, float]:
        p = self.plan
        rng = np.random.default_rng([p.seed, step])  # step k's data depends on (seed, k) only
        n_pairs = p.batch // 2 if p.temporal_weight and data.pairs else 0
        images = crops(data.images, p.size, p.batch - n_pairs, rng)
        if n_pairs:
            prev, cur, to_prev, mask = pair_crops(data.pairs, p.size, n_pairs, rng)
            images = np.concatenate([images, cur])
        else:
            prev = cur = np.zeros((1, 4, 4, images.shape[-1]), np.float32)
            to_prev, mask = np.zeros((1, 4, 4, 2), np.float32), np.zeros((1, 4, 4), np.float32)
        self.optimizer.learning_rate.assign(learning_rate(p, step))
        parts = self._train(tf.constant(images), tf.constant(prev), tf.constant(cur), tf.constant(to_prev),
                            tf.constant(mask))
        self.step.assign_add(1)
        return {k: float(v) for k, v in parts.items()}

    def stylize(self, image: np.ndarray) -> np.ndarray:
        padded, (h, w) = padding.pad_to_multiple(image, 4, padding.MARGIN)
        batch = tf.constant(padded[None].astype(np.float32))
        out = network.transform(batch, self.weights, self.plan.decoder).numpy()[0]
        return np.rint(out[padding.MARGIN:padding.MARGIN + h, padding.MARGIN:padding.MARGIN + w]).astype(np.uint8)


# ---------------------------------------------------------------- output


def export(variables: list[tf.Variable], folder: Path, decoder: str) -> None:
    """The trained variables in the fast engine's layout (weights.write)."""
    weights.write(folder, [v.numpy() for v in variables], decoder)


def train(style_path: Path, sources: list[Path], out_dir: Path, net: features.FeatureNet, plan: Plan,
          report: Callable[[int, dict[str, float], float], None], preview_every: int = 100,
          teacher: Teacher | None = None, taught: Callable[[int, int], None] = lambda done, total: None) -> Path:
    """Train (resuming from out_dir/.train when present), export to out_dir/model, return that folder.
    With a teacher, its outputs (cached in out_dir/.teacher) are the targets: distillation."""
    style = gatys.read_image(style_path)
    data = collect(sources)
    if teacher is not None:
        data = data.with_targets(teaching.targets(teacher, data.frames(), out_dir / ".teacher", taught))
    trainer = Trainer(style, net, plan, distill=teacher is not None)
    ckpt = tf.train.Checkpoint(weights=trainer.weights, optimizer=trainer.optimizer, step=trainer.step)
    manager = tf.train.CheckpointManager(ckpt, str(out_dir / ".train"), max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
    sample = data.images[0]  # the preview: source | (teacher |) network
    started = time.monotonic()
    first = int(trainer.step.numpy())
    for step in range(first, plan.steps):
        parts = trainer.train_step(data, step)
        done = step + 1
        if done % plan.checkpoint_every == 0 or done == plan.steps:
            manager.save(checkpoint_number=done)
        if done % preview_every == 0 or done == plan.steps:
            shown = [sample[..., :3], sample[..., 3:]] if teacher else [sample]
            shown.append(trainer.stylize(sample[..., :3]))
            storage.publish(out_dir / "preview.png", storage.encode(np.hstack(shown), "png"))
        report(done, parts, (time.monotonic() - started) / (done - first))
    export(trainer.weights, out_dir / "model", plan.decoder)
    return out_dir / "model"
