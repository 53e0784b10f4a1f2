"""Tests for the lengstrom fast-style-transfer engine: synthetic weights always, real 'wave' weights when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.engines.fast.engine import FastEngine
from pipeline.engines.fast.padding import pad_to_multiple
from pipeline.errors import ModelError
from tests.helpers import frame, load_weights, write_model

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
WAVE = ASSETS / "models" / "lengstrom_fst" / "wave"


@pytest.fixture(scope="module")
def engine(slim: Path) -> FastEngine:
    return FastEngine(slim, batch_size=3)


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    return write_model(tmp_path / "wave")


# ---------------------------------------------------------------- synthetic weights


def test_pad_to_multiple() -> None:
    f = frame(67, 45)
    padded, (h, w) = pad_to_multiple(f, 4)
    assert padded.shape == (68, 48, 3) and (h, w) == (67, 45)
    assert np.array_equal(padded[:67, :45], f)
    padded, _ = pad_to_multiple(f, 4, margin=8)
    assert padded.shape[0] % 4 == 0 and padded.shape[1] % 4 == 0
    assert np.array_equal(padded[8 : 8 + 67, 8 : 8 + 45], f)


def test_full_size_model_loads_and_runs(model: Path) -> None:
    weights = load_weights(model)
    assert len(weights) == 48 and weights[0].shape == (9, 9, 3, 32) and weights[39].shape == (3, 3, 64, 128)
    eng = FastEngine(model)
    assert eng.name == "fast"
    out = eng.stylize([frame(67, 45)])
    assert out[0].shape == (67, 45, 3) and out[0].dtype == np.uint8


@pytest.mark.parametrize("size", [(64, 48), (67, 45), (33, 97)])
def test_shape_and_dtype(engine: FastEngine, size: tuple[int, int]) -> None:
    [one] = engine.stylize([frame(*size)])
    assert one.shape == (*size, 3) and one.dtype == np.uint8
    three = engine.stylize([frame(*size, seed=s) for s in range(3)])
    assert [o.shape for o in three] == [(*size, 3)] * 3 and all(o.dtype == np.uint8 for o in three)


def test_batch_equals_per_frame(engine: FastEngine) -> None:
    frames = [frame(67, 45, seed=s) for s in range(3)]
    batched = engine.stylize(frames)
    for f, b in zip(frames, batched, strict=True):
        [single] = engine.stylize([f])
        assert np.abs(single.astype(int) - b.astype(int)).max() <= 1


def test_mixed_sizes_keep_order(engine: FastEngine) -> None:
    frames = [frame(40, 40, 1), frame(33, 97, 2), frame(40, 40, 3), frame(21, 10, 4)]
    out = engine.stylize(frames)
    assert [o.shape for o in out] == [f.shape for f in frames]
    assert np.abs(out[2].astype(int) - engine.stylize([frames[2]])[0].astype(int)).max() <= 1
    assert engine._run.experimental_get_tracing_count() == 1  # new sizes reuse the one graph


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)]
)
def test_rejects_bad_frames(engine: FastEngine, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        engine.stylize([frame(8, 8), bad])


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nowhere.*manifest.json"):
        load_weights(tmp_path / "nowhere")


def test_missing_manifest(model: Path) -> None:
    (model / "manifest.json").unlink()
    with pytest.raises(ModelError, match="manifest.json missing"):
        load_weights(model)


def test_bad_manifest_json(model: Path) -> None:
    (model / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="manifest.json unreadable"):
        load_weights(model)


def test_missing_variable_file(model: Path) -> None:
    (model / "Variable_17").unlink()
    with pytest.raises(ModelError, match="Variable_17.*missing"):
        load_weights(model)


def test_wrong_byte_size(model: Path) -> None:
    (model / "Variable_3").write_bytes(b"\0" * 1000)
    with pytest.raises(ModelError, match=r"Variable_3 has 1000 bytes, expected 73728 \(shape \[3, 3, 32, 64\]\)"):
        load_weights(model)


def test_wrong_shape_in_manifest(model: Path) -> None:
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["Variable_3"]["shape"] = [3, 3, 64, 32]  # same byte count, channels no longer chain
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="Variable_3 has shape"):
        load_weights(model)


def test_wrong_kernel_rank(model: Path) -> None:
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["Variable_45"]["shape"] = [81, 32, 3]
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="Variable_45 has shape"):
        load_weights(model)


# ---------------------------------------------------------------- real 'wave' weights


@pytest.fixture(scope="module")
def wave() -> FastEngine:
    if not ASSETS.is_dir():
        pytest.skip("../shared/assets not found: real model weights unavailable")
    return FastEngine(WAVE)


@pytest.fixture(scope="module")
def chicago() -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(ASSETS / "content" / "chicago.jpg"))
    assert bgr is not None
    return cv2.cvtColor(cv2.resize(bgr, (256, 170), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def test_real_wave_stylizes(wave: FastEngine, chicago: np.ndarray) -> None:
    [out] = wave.stylize([chicago])
    assert out.shape == chicago.shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - chicago.astype(float)).mean() > 20
    assert out.std() > 20
    [again] = wave.stylize([chicago])
    assert np.array_equal(out, again)
