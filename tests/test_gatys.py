"""The gatys engine: losses against hand-computed values, real iterations, the optimizers, feature nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline import optimize
from pipeline.engines import features, gatys
from pipeline.engines.base import Guide
from pipeline.errors import ModelError, UsageError
from tests.helpers import assets_or_skip


def t(values: object) -> tf.Tensor:
    return tf.constant(values, tf.float32)


# ---------------------------------------------------------------- losses


def test_gram_is_averaged_over_positions() -> None:
    feature = t([[[[1, 2], [3, 4]]]])  # 1x1x2x2: two positions, two channels
    np.testing.assert_allclose(gatys.gram(feature).numpy(), [[5, 7], [7, 10]])


def test_style_loss_is_weighted_and_normalized_per_layer() -> None:
    loss = gatys.style_loss({"a": t([[1, 0], [0, 1]])}, {"a": t([[2, 0], [0, 0]])}, {"a": 2.0})
    assert float(loss) == pytest.approx(2 * 2 / 4)


def test_content_loss_is_normalized_by_the_target() -> None:
    assert float(gatys.content_loss({"c": t([1, 2])}, {"c": t([1, 0])})) == pytest.approx(4.0)


def test_tv_loss_counts_neighbour_differences_in_unit_range() -> None:
    image = t([[[[0], [255]], [[0], [255]]]])  # vertical stripes: no vertical change, full horizontal
    assert float(gatys.tv_loss(image)) == pytest.approx(1.0)


def test_temporal_loss_is_masked_per_pixel() -> None:
    image = tf.zeros((1, 1, 2, 3))
    warped = tf.fill((1, 1, 2, 3), 255.0)
    assert float(gatys.temporal_loss(image, warped, t([[1, 0]]))) == pytest.approx(3 / 6)
    assert float(gatys.temporal_loss(image, warped, t([[0, 0]]))) == 0.0


# ---------------------------------------------------------------- optimizers


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    a, b = x[0], x[1]
    value = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    grad = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
    return value, grad


def test_lbfgs_solves_rosenbrock() -> None:
    result = optimize.lbfgs(rosenbrock, np.array([-1.2, 1.0]), 200)
    np.testing.assert_allclose(result.x, [1, 1], atol=1e-4)
    assert result.iterations < 100 and result.evaluations >= result.iterations


def test_lbfgs_beats_adam_on_an_ill_conditioned_quadratic() -> None:
    scales = np.logspace(0, 3, 50)

    def quad(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(0.5 * np.sum(scales * x * x)), scales * x

    x0 = np.ones(50)
    lb = optimize.lbfgs(quad, x0, 30)
    ad = optimize.adam(quad, x0, 30, lr=0.05)
    assert lb.loss < 1e-3 * quad(x0)[0] and lb.loss < 0.1 * ad.loss


def test_callback_and_early_stop_end_the_run() -> None:
    seen: list[int] = []
    result = optimize.lbfgs(rosenbrock, np.array([-1.2, 1.0]), 100, callback=lambda i, _: seen.append(i) or i == 3)
    assert result.iterations == 3 and result.reason == "callback" and seen == [1, 2, 3]
    stop = optimize.EarlyStop(tolerance=0.1, window=2)
    assert [stop(v) for v in (10.0, 9.0, 8.95, 8.9)] == [False, False, False, True]


# ---------------------------------------------------------------- feature networks


def test_vgg19_architecture_runs_with_random_weights() -> None:
    net = features.load("vgg19", None)
    out = net(tf.zeros((1, 32, 48, 3)), ["block1_conv1", "block3_conv1", "block5_conv1"])
    assert out["block1_conv1"].shape == (1, 32, 48, 64)
    assert out["block3_conv1"].shape == (1, 8, 12, 256)
    assert out["block5_conv1"].shape == (1, 2, 3, 512)
    assert len(features.conv_shapes("vgg19")) == 16


def test_real_squeezenet_weights_load_and_match_the_architecture() -> None:
    path = assets_or_skip("models/squeezenet/squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
    net = features.load("squeezenet", path)
    assert [tuple(k.shape) for k, _ in net.params] == features.conv_shapes("squeezenet")
    out = net(tf.zeros((1, 64, 96, 3)), ["conv1", "fire9"])
    assert out["fire9"].shape[-1] == 512


def write_h5(path: Path, shapes: list[tuple[int, ...]]) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [f"layer{i}".encode() for i in range(len(shapes))]
        for i, shape in enumerate(shapes):
            group = f.create_group(f"layer{i}")
            group.attrs["weight_names"] = [b"kernel", b"bias"]
            group["kernel"] = np.zeros(shape, np.float32)
            group["bias"] = np.zeros(shape[-1], np.float32)
    return path


def test_wrong_or_damaged_weight_files_fail_in_one_line(tmp_path: Path) -> None:
    shapes = features.conv_shapes("squeezenet")
    wrong = write_h5(tmp_path / "wrong.h5", [shapes[0][:3] + (32,), *shapes[1:]])
    with pytest.raises(ModelError, match=r"conv 1 has shape \[3, 3, 3, 32\], squeezenet needs \[3, 3, 3, 64\]"):
        features.load("squeezenet", wrong)
    short = write_h5(tmp_path / "short.h5", shapes[:5])
    with pytest.raises(ModelError, match="5 conv layers, squeezenet needs 25"):
        features.load("squeezenet", short)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(ModelError, match="not a readable Keras weights file"):
        features.load("squeezenet", garbage)


# ---------------------------------------------------------------- the engine


@pytest.fixture(scope="module")
def engine() -> gatys.GatysEngine:
    rng = np.random.default_rng(0)
    style = (rng.uniform(0, 1, (48, 48, 3)) * np.array([255, 60, 20])).astype(np.uint8)  # reddish noise
    return gatys.GatysEngine(style, features.load("squeezenet", None), gatys.Settings(iterations=8, tolerance=0))


def frame(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4 % 256, y * 5 % 256, (x + y) * 2 % 256], axis=-1).astype(np.uint8)


def test_a_few_real_iterations_lower_the_loss(engine: gatys.GatysEngine) -> None:
    losses: list[float] = []
    content = frame().astype(np.float32)
    engine.optimize(frame(), None, content, 8, lambda _i, loss: losses.append(loss) or False)
    start, _ = engine.objective(frame(), None)(content)
    assert len(losses) == 8 and losses[-1] < 0.8 * start
    styled, stats = engine.stylize_guided(frame(), None)
    assert styled.shape == frame().shape and styled.dtype == np.uint8
    assert stats["init"] == "content" and stats["iterations"] == 16  # cold start: twice the budget
    assert stats["loss"] < start


def test_style_targets_are_computed_once_per_size(engine: gatys.GatysEngine) -> None:
    first = engine.style_targets(48, 64)
    assert engine.style_targets(48, 64) is first
    assert engine.style_targets(32, 40) is not first


def test_temporal_term_holds_only_reliable_pixels(engine: gatys.GatysEngine) -> None:
    content = frame()
    warped = np.full(content.shape, 128.0, np.float32)
    mask = np.zeros(content.shape[:2], np.float32)
    mask[:, :32] = 1
    x0, init = engine.initial(content, Guide(warped, mask, 0.0))
    assert init == "warped"
    assert (x0[:, :32] == 128).all() and (x0[:, 32:] == content[:, 32:]).all()
    styled, stats = engine.stylize_guided(content, Guide(warped, mask, 1e5))
    assert stats["iterations"] == 8  # warm start: the plain budget
    held = np.abs(styled[:, 4:28].astype(float) - 128).mean()
    free = np.abs(styled[:, 36:].astype(float) - 128).mean()
    assert held < 3 < 10 < free


def test_unknown_options_and_optimizers_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown options colour"):
        gatys.Settings.from_options({"colour": 1})
    with pytest.raises(UsageError, match="lbfgs or adam"):
        gatys.Settings.from_options({"optimizer": "sgd"})
    assert gatys.Settings.from_options({"iterations": 5, "threads": 2, "style_image": "x"}).iterations == 5


def test_missing_style_image_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a readable image"):
        gatys.read_image(tmp_path / "nope.jpg")


def test_layers_are_configurable_and_checked() -> None:
    net = features.load("squeezenet", None)
    style = np.zeros((16, 16, 3), np.uint8)
    custom = gatys.GatysEngine(style, net, gatys.Settings.from_options(
        {"content_layers": ["fire2"], "style_layers": {"conv1": 2}}))
    assert custom.content_layers == ("fire2",) and custom.style_weights == {"conv1": 2.0}
    with pytest.raises(UsageError, match="squeezenet has no layer block4_conv2"):
        gatys.GatysEngine(style, net, gatys.Settings(content_layers=("block4_conv2",)))


# ---------------------------------------------------------------- the look: pyramid, palette, defaults


def test_pyramid_halves_each_level_down_to_a_floor() -> None:
    assert gatys.pyramid_sizes(360, 640, 3) == [(90, 160), (180, 320), (360, 640)]
    assert gatys.pyramid_sizes(360, 640, 1) == [(360, 640)]
    assert gatys.pyramid_sizes(100, 640, 3) == [(100, 640)]  # 50 px would be under the floor
    assert gatys.pyramid_sizes(135, 241, 9) == [(68, 120), (135, 241)]


def test_palette_match_gives_the_reference_mean_and_covariance() -> None:
    rng = np.random.default_rng(1)
    image = (rng.uniform(0, 255, (40, 50, 3)) * [1.0, 0.6, 0.8]).astype(np.uint8)
    reference = np.clip(rng.normal([40, 90, 170], [20, 25, 30], (30, 30, 3)), 0, 255).astype(np.uint8)
    mapped = gatys.match_palette(image, reference).reshape(-1, 3)
    ref = reference.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mapped.mean(0), ref.mean(0), atol=2)
    np.testing.assert_allclose(np.cov(mapped, rowvar=False), np.cov(ref, rowvar=False), rtol=0.15, atol=15)
    flat = (100 + rng.integers(0, 2, (40, 50, 3))).astype(np.uint8)  # a near-flat frame: not blown up to noise
    assert gatys.match_palette(flat, reference).std(axis=(0, 1)).max() < 5


def painting() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 1, (64, 64, 3)) * np.array([40, 90, 255])).astype(np.uint8)  # bluish noise


def test_the_defaults_paint_in_the_paintings_colours_and_the_pyramid_works() -> None:
    assert (gatys.Settings().pyramid, gatys.Settings().palette) == (1, "painting")
    settings = gatys.Settings(iterations=6, tolerance=0, pyramid=3)
    engine = gatys.GatysEngine(painting(), features.load("squeezenet", None), settings)
    content = frame(128, 160)
    styled, stats = engine.stylize_guided(content, None)
    assert stats["iterations"] == 12  # the cold budget (2 x 6) shared by 2 levels: 64x80 and 128x160
    assert styled.shape == content.shape

    def style(image: np.ndarray) -> float:
        grams = engine.style_targets(*image.shape[:2])
        feats = engine.net(tf.constant(image[None], tf.float32), list(engine.style_weights))
        return float(gatys.style_loss({k: gatys.gram(feats[k]) for k in grams}, grams, engine.style_weights))

    assert style(styled) < 0.5 * style(content)
    target = painting().reshape(-1, 3).mean(0)
    assert np.abs(styled.reshape(-1, 3).mean(0) - target).sum() < 0.3 * np.abs(content.reshape(-1, 3).mean(0) - target).sum()


def test_a_callback_sees_and_may_stop_only_the_frames_own_size() -> None:
    engine = gatys.GatysEngine(painting(), features.load("squeezenet", None),
                               gatys.Settings(iterations=6, tolerance=0, pyramid=3))
    seen: list[int] = []
    _, stats = engine.stylize_guided(frame(128, 160), None, lambda it, _loss: seen.append(it) or it == 2)
    assert seen == [1, 2]  # the coarse level (64x80) ran its 6 iterations unwatched
    assert (stats["iterations"], stats["stop"]) == (6 + 2, "callback")


def test_vgg19_builds_and_stylizes_with_the_defaults() -> None:
    engine = gatys.GatysEngine(painting(), features.load("vgg19", None),
                               gatys.Settings(iterations=2, tolerance=0, pyramid=3))
    assert engine.content_layers == ("block4_conv2",) and "block5_conv1" in engine.style_weights
    styled, stats = engine.stylize_guided(frame(128, 128), None)
    assert styled.shape == (128, 128, 3) and stats["iterations"] == 4


def test_palette_option_is_checked() -> None:
    with pytest.raises(UsageError, match="palette must be source or painting"):
        gatys.Settings.from_options({"palette": "sepia"})
