"""`vpipe train-style`: the pieces (warp, weights, export, resume) and a tiny real run through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from click.testing import Result

from pipeline import flow, storage, training
from pipeline.engines import features
from pipeline.engines.fast.engine import FastEngine
from pipeline.errors import ModelError
from tests.helpers import ASSETS, assets_or_skip, load_weights, make_clip, texture


def test_tf_warp_matches_the_opencv_warp() -> None:
    image = texture(32, 40).astype(np.float32)
    rng = np.random.default_rng(0)
    to = rng.uniform(-3, 3, (32, 40, 2)).astype(np.float32)
    expected = flow.warp(image, to)
    got = training.tf_warp(tf.constant(image[None]), tf.constant(to[None])).numpy()[0]
    inner = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(got[inner], expected[inner], atol=0.05)


@pytest.mark.parametrize("kernels, decoder", [((5, 3), "resize"), ((9, 9), "transpose")])
def test_trained_weights_export_in_the_lengstrom_layout_and_run_the_same_in_the_fast_engine(
        tmp_path: Path, kernels: tuple[int, int], decoder: str) -> None:
    plan = training.Plan(channels=(8, 16, 32), blocks=3, kernels=kernels, decoder=decoder)
    weights = training.init_weights(plan, seed=1)
    assert len(weights) == 3 * (6 + 2 * 3)
    training.export(weights, tmp_path / "model", plan.decoder)
    engine = FastEngine(tmp_path / "model")
    assert engine.blocks == 3 and engine.decoder == decoder
    frame = texture(37, 51)
    out = engine.stylize([frame])[0]
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not (tmp_path / "model.partial").exists()
    # what training previews is what the engine produces
    trainer = training.Trainer.__new__(training.Trainer)
    trainer.plan, trainer.weights = plan, weights
    assert np.abs(trainer.stylize(frame).astype(int) - out).max() <= 1


def test_a_model_with_an_unknown_decoder_is_refused_in_one_line(tmp_path: Path) -> None:
    weights = training.init_weights(training.Plan(channels=(8, 16, 32), blocks=1), seed=1)
    training.export(weights, tmp_path / "model", "resize")
    manifest = tmp_path / "model" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"resize"', '"pixelshuffle"'))
    with pytest.raises(ModelError, match="decoder must be one of transpose, resize"):
        load_weights(tmp_path / "model")


def small_data() -> training.Data:
    frames = [texture(80, 96, seed=s) for s in range(3)]
    pair = (frames[0], frames[0], np.zeros((80, 96, 2), np.float32), np.ones((80, 96), np.float32))
    return training.Data(frames, [pair])


def test_training_steps_report_every_term_and_resume_from_the_checkpoint(tmp_path: Path) -> None:
    net = features.load("squeezenet", None)
    plan = training.Plan(size=48, steps=2, batch=2, temporal_weight=10.0, checkpoint_every=1, channels=(8, 16, 32), blocks=1)
    style = texture(64, 64, seed=7)
    seen: list[tuple[int, dict[str, float]]] = []

    def run(steps: int) -> Path:
        trainer_plan = training.Plan(**{**vars(plan), "steps": steps})
        original = training.collect
        training.collect = lambda sources: small_data()  # type: ignore[assignment]
        try:
            cv2.imwrite(str(tmp_path / "style.png"), style)
            return training.train(tmp_path / "style.png", [tmp_path], tmp_path / "out", net, trainer_plan,
                                  lambda step, parts, _s: seen.append((step, parts)), preview_every=1)
        finally:
            training.collect = original  # type: ignore[assignment]

    run(2)
    assert [s for s, _ in seen] == [1, 2]
    assert set(seen[0][1]) == {"loss", "content", "style", "tv", "temporal"}
    assert seen[1][1]["temporal"] == pytest.approx(0.0, abs=1e-9)  # identical frames, zero flow: steady output
    model = run(3)  # resumes at step 2: only step 3 runs
    assert [s for s, _ in seen] == [1, 2, 3]
    assert (model / "manifest.json").is_file() and (tmp_path / "out" / "preview.png").is_file()


def test_the_learning_rate_is_constant_then_settles_to_a_tenth_and_the_trainer_follows_it(tmp_path: Path) -> None:
    plan = training.Plan(steps=400, learning_rate=2e-3)
    rates = [training.learning_rate(plan, step) for step in range(plan.steps)]
    assert rates[:300] == [2e-3] * 300  # constant up to decay_from (0.75)
    assert all(a > b for a, b in zip(rates[300:], rates[301:], strict=False))  # then falling
    assert rates[-1] == pytest.approx(2e-4, rel=0.01)  # to a tenth at the last step
    trainer = training.Trainer(texture(64, 64, seed=7), features.load("squeezenet", None),
                               training.Plan(size=32, steps=4, batch=2, decay_from=0.5, channels=(4, 8, 8), blocks=1))
    trainer.train_step(small_data(), 3)
    assert float(trainer.optimizer.learning_rate) == pytest.approx(training.learning_rate(trainer.plan, 3), rel=1e-6)


@pytest.fixture()
def train_env(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    assets_or_skip("models/squeezenet")
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(ASSETS / "models"))
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(tmp_path / "styles"))
    return tmp_path / "styles"


def test_train_style_through_the_cli_then_stylize_with_it(tmp_path: Path, train_env: Path,
                                                          vpipe: Callable[..., Result]) -> None:
    painting = tmp_path / "Blue Swirls.png"
    cv2.imwrite(str(painting), texture(96, 96, seed=3))
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), texture(90, 120, seed=4))
    clip = make_clip(photos / "clip.mp4", size="96x80", seconds=0.3, audio=0)
    result = vpipe("train-style", str(painting), "--images", str(photos), "--size", "64", "--steps", "2",
                   "--batch", "2", "--net", "squeezenet")
    assert result.exit_code == 0, result.output
    assert "step 2/2" in result.output and "use it with --style Blue_Swirls" in result.output
    folder = train_env / "Blue_Swirls"
    config = (folder / "style.toml").read_text()
    assert (folder / "model" / "manifest.json").is_file() and 'engine = "fast"' in config
    # the arbitrary engine's models are present: distilled from it, its outputs cached for a resume
    assert 'teacher = "arbitrary"' in config and "distilling the arbitrary engine" in result.output
    assert not (folder / ".teacher").exists()  # its cached outputs are removed once the style is trained
    reference = storage.read_rgb(folder / "painting.jpg")  # the copy `vpipe styles --sheet` shows
    assert 'reference = "painting.jpg"' in config and max(reference.shape[:2]) <= 256
    assert vpipe("split", str(clip)).exit_code == 0
    styled = vpipe("stylize", "--style", "Blue_Swirls")
    assert styled.exit_code == 0, styled.output


def test_train_style_without_a_teacher_uses_the_gram_recipe(tmp_path: Path, train_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                             vpipe: Callable[..., Result]) -> None:
    painting = tmp_path / "p.png"
    cv2.imwrite(str(painting), texture(600, 400, seed=3))  # a big painting: its reference copy is reduced
    cv2.imwrite(str(tmp_path / "a.png"), texture(90, 120, seed=4))
    models = tmp_path / "models"  # only the loss network: no arbitrary engine to learn from
    (models / "squeezenet").mkdir(parents=True)
    for f in (ASSETS / "models" / "squeezenet").iterdir():
        (models / "squeezenet" / f.name).symlink_to(f)
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(models))
    result = vpipe("train-style", str(painting), "--images", str(tmp_path / "a.png"), "--size", "64", "--steps", "1",
                   "--batch", "2")
    assert result.exit_code == 0, result.output
    assert "no teacher" in result.output and "vpipe models pull magenta_tflite" in result.output
    config = (train_env / "p" / "style.toml").read_text()
    assert 'teacher = "none"' in config and "steps = 1\n" in config
    assert max(storage.read_rgb(train_env / "p" / "painting.jpg").shape[:2]) == 256
    asked = vpipe("train-style", str(painting), "--images", str(tmp_path / "a.png"), "--name", "q", "--teacher", "arbitrary")
    assert asked.exit_code != 0 and "magenta_tflite" in asked.output and "Traceback" not in asked.output


@pytest.mark.parametrize(("args", "message"), [
    (["missing.png", "--images", "."], "no such file"),
    (["{painting}", "--images", "nowhere"], "--images nowhere: no such file or folder"),
    (["{painting}", "--images", ".", "--name", "../x"], "not allowed"),
])
def test_train_style_bad_input_is_one_line(tmp_path: Path, train_env: Path, vpipe: Callable[..., Result],
                                           args: list[str], message: str) -> None:
    painting = tmp_path / "p.png"
    cv2.imwrite(str(painting), texture(32, 32))
    result = vpipe("train-style", *[a.replace("{painting}", str(painting)) for a in args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_the_shipped_style_needs_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import styles

    monkeypatch.delenv("VPIPE_MODELS_DIR", raising=False)
    monkeypatch.delenv("VPIPE_STYLES_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    style = styles.resolve("starry_night", None)
    assert style.engine == "fast" and style.model is not None
    assert style.model.is_relative_to(styles.styles_dir())
    size = sum(p.stat().st_size for p in style.model.iterdir())
    assert size < 2_000_000
    frame = texture(45, 61)
    out = FastEngine(style.model).stylize([frame])[0]
    assert out.shape == frame.shape and np.abs(out.astype(int) - frame).mean() > 20  # it does restyle
