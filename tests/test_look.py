"""The quality judge (structure kept) and distillation (`train-style` with a teacher)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from pipeline import metrics, sheet, teacher, training
from pipeline.engines import features
from pipeline.engines.fast import network
from pipeline.engines.fast.engine import FastEngine
from tests.helpers import texture

FRAME = sheet.sample_frame(384, 256)  # a synthetic landscape: sky, sun, hills, a house, a road


def blobby(image: np.ndarray) -> np.ndarray:
    """What a Gram-loss net does to objects: big blobs of a few colours with a fine texture on top."""
    small = cv2.resize(image, None, fx=1 / 24, fy=1 / 24, interpolation=cv2.INTER_AREA)
    blobs = cv2.GaussianBlur(cv2.resize(small, image.shape[1::-1], interpolation=cv2.INTER_CUBIC), (0, 0), 6)
    grid = (np.indices(image.shape[:2]).sum(0) % 4 < 2)[..., None] * 40
    return np.clip(blobs.astype(int) // 64 * 64 + grid, 0, 255).astype(np.uint8)


def painterly(image: np.ndarray) -> np.ndarray:
    """A faithful stylization: another palette, fine brush texture, every outline where it was."""
    recoloured = cv2.applyColorMap(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLORMAP_OCEAN)
    strokes = np.random.default_rng(1).normal(0, 18, image.shape[:2])[..., None]
    return np.clip(recoloured.astype(np.float32) + cv2.GaussianBlur(strokes, (0, 0), 0.7)[..., None], 0, 255).astype(np.uint8)


def test_structure_is_one_for_the_source_itself() -> None:
    assert metrics.structure(FRAME, FRAME) == pytest.approx(1.0)


@pytest.mark.parametrize(("name", "change", "low", "high"), [
    ("blurred", lambda f: cv2.GaussianBlur(f, (0, 0), 8), -1.0, 0.6),
    ("blobby", blobby, -1.0, 0.5),
    ("flat", lambda f: np.full_like(f, 120), 0.0, 0.0),
    ("painterly", painterly, 0.85, 1.0),
    ("inverted", lambda f: 255 - f, 0.99, 1.0),
])
def test_structure_scores_blurred_and_blobby_frames_low_and_faithful_ones_high(name: str, change: object,
                                                                               low: float, high: float) -> None:
    score = metrics.structure(change(FRAME), FRAME)  # type: ignore[operator]
    assert low <= score <= high, f"{name}: structure {score:.3f} not in [{low}, {high}]"


def test_structure_refuses_frames_of_different_sizes() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        metrics.structure(FRAME[:100], FRAME)


def swap(image: np.ndarray) -> np.ndarray:
    """The tiny teacher: a mapping a small net can learn in a few hundred steps (channels reversed)."""
    return np.ascontiguousarray(image[..., ::-1])


TINY_TEACHER = teacher.Teacher("swap", "swap-v1", swap)


def test_teacher_outputs_are_cached_and_a_changed_input_repaints(tmp_path: Path) -> None:
    images = [texture(40, 48, seed=s) for s in range(5)]
    calls: list[int] = []
    counting = teacher.Teacher("swap", "swap-v1", lambda im: (calls.append(1), swap(im))[1])
    first = teacher.targets(counting, images, tmp_path)
    assert len(calls) == 5 and all(np.array_equal(t, swap(i)) for t, i in zip(first, images, strict=True))
    again = teacher.targets(counting, images, tmp_path)  # a resumed run: nothing repainted
    assert len(calls) == 5 and all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    for part in tmp_path.iterdir():  # a damaged cache file is repainted, not trusted
        part.write_bytes(b"garbage")
    teacher.targets(counting, images, tmp_path)
    assert len(calls) == 10
    other = teacher.Teacher("swap", "swap-v2", counting.paint)  # another painting or model: another key
    teacher.targets(other, images, tmp_path)
    assert len(calls) == 15
    mine = (tmp_path / "mine.npz", tmp_path / "notes.txt")  # not what targets() writes: never removed
    for path in mine:
        path.write_bytes(b"the user's")
    assert teacher.forget(tmp_path) > 0 and sorted(tmp_path.iterdir()) == sorted(mine)
    for path in mine:
        path.unlink()
    teacher.targets(counting, images, tmp_path)
    assert teacher.forget(tmp_path) > 0 and not tmp_path.exists()  # the folder goes once it is empty


def test_distillation_learns_the_teachers_mapping_on_tiny_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [sheet.sample_frame(w, h) for w, h in ((96, 72), (120, 80), (88, 88))] + [texture(72, 88, seed=s) for s in range(3)]
    pair = (frames[-2], frames[-1], np.zeros((72, 88, 2), np.float32), np.ones((72, 88), np.float32))
    monkeypatch.setattr(training, "collect", lambda sources: training.Data(frames, [pair]))
    cv2.imwrite(str(tmp_path / "painting.png"), texture(64, 64, seed=9))
    # pixel regression only: the feature terms need real SqueezeNet weights to mean anything (a random net here)
    plan = training.Plan(size=48, steps=400, batch=4, channels=(8, 16, 32), blocks=1, learning_rate=3e-3,
                         feature_weight=0.0, gram_weight=0.0, style_weight=0.0, temporal_weight=10.0,
                         checkpoint_every=1000)
    seen: list[dict[str, float]] = []
    model = training.train(tmp_path / "painting.png", [tmp_path], tmp_path / "out", features.load("squeezenet", None),
                           plan, lambda step, parts, _s: seen.append(parts), preview_every=1000, teacher=TINY_TEACHER)
    assert {"pixel", "feature", "gram", "temporal"} <= set(seen[0])
    unseen = np.ascontiguousarray(sheet.sample_frame(104, 76)[:, ::-1])  # a size and a view not trained on
    wanted = swap(unseen).astype(float)
    learned = FastEngine(model).stylize([unseen])[0].astype(float)
    untrained = training.Trainer(texture(64, 64), features.load("squeezenet", None), plan).stylize(unseen).astype(float)
    error, before = np.abs(learned - wanted).mean(), np.abs(untrained - wanted).mean()
    kept = metrics.structure(learned.astype(np.uint8), wanted.astype(np.uint8))  # the teacher's outlines
    assert error < 0.4 * before and kept > 0.75, f"mean error {error:.1f} (untrained {before:.1f}), structure {kept:.2f}"
    assert (tmp_path / "out" / ".teacher").is_dir()  # the targets were cached for a resumed run


def test_the_style_weight_pulls_a_distilled_net_towards_the_paintings_gram_matrices() -> None:
    """`--style-weight` in distillation: beside the teacher's targets, the Gram loss against the painting itself."""
    frames = [texture(72, 88, seed=s) for s in range(3)]
    data = training.Data(frames, []).with_targets([255 - f for f in frames])
    painting = texture(64, 64, seed=9)
    net = features.load("squeezenet", None)
    probe = np.stack([texture(48, 48, seed=20 + s) for s in range(4)]).astype(np.float32)

    def trained(weight: float) -> tuple[float, set[str]]:
        plan = training.Plan(size=48, steps=40, batch=4, channels=(8, 16, 32), blocks=1, learning_rate=3e-3,
                             feature_weight=0.0, gram_weight=0.0, style_weight=weight)
        trainer = training.Trainer(painting, net, plan, distill=True)
        parts: dict[str, float] = {}
        for step in range(plan.steps):
            parts = trainer.train_step(data, step)
        out = network.transform(tf.constant(probe), trainer.weights, plan.decoder)
        return float(trainer.painting_loss(trainer.grams(net(out, list(trainer.style_weights))))), set(parts)

    plain, plain_terms = trained(0.0)
    pulled, pulled_terms = trained(30.0)
    assert "style" in pulled_terms and "style" not in plain_terms
    assert pulled < 0.7 * plain, f"Gram distance to the painting {pulled:.3f} with the term, {plain:.3f} without"
