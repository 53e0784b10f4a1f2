"""The contract every engine meets, run on each one (built-in and the test fixtures' engines), loaded
through the registry as a worker loads it: any frame size, uint8 RGB in and out, as many frames out as
in, the same output for the same input where the engine promises it, and a one-line ModelError or
UsageError for a model it cannot use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline import engines, storage
from pipeline.engines.base import Engine
from pipeline.errors import ModelError, UsageError
from tests.helpers import ASSETS, FIXTURES, frame, write_model

SIZES = [(48, 64), (9, 17), (31, 45)]  # (height, width): even, odd and thin, odd both ways


@dataclass(frozen=True)
class Case:
    """How to load one engine on tiny models: its good model, its options, and a model it must refuse."""

    name: str
    model: Callable[[Path], Path | None]
    options: Callable[[Path], dict[str, object]]
    bad_model: Callable[[Path], Path] | None  # None: the engine takes no model (the reason is in `why`)
    deterministic: bool = True
    why: str = ""


def painting(folder: Path) -> Path:
    path = folder / "painting.png"
    y, x = np.mgrid[0:64, 0:64]
    image = np.stack([np.sin(x / 3) * 120 + 128, np.cos(y / 4) * 120 + 128, (x * y) % 256], -1).astype(np.uint8)
    storage.publish(path, storage.encode(image, "png"))
    return path


def slim_fast(folder: Path) -> Path:
    return write_model(folder / "slim", channels=(8, 16, 32))


def broken_fast(folder: Path) -> Path:
    (folder / "broken").mkdir()
    (folder / "broken" / "manifest.json").write_text("{}")
    return folder / "broken"


def squeezenet(_: Path) -> Path | None:
    """The real SqueezeNet weights when the assets are there; else None, which gatys.load takes as a
    random-weight net (the contract is about shapes and types, not about how the frames look)."""
    found = sorted((ASSETS / "models" / "squeezenet").glob("*.h5"))
    return found[0] if found else None


def garbage_file(folder: Path) -> Path:
    path = folder / "garbage.h5"
    path.write_bytes(b"not a weights file")
    return path


def magenta(_: Path) -> Path:
    folder = ASSETS / "models" / "magenta_tflite"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found: the arbitrary engine needs the Magenta TF Lite models "
                    "(`vpipe models pull magenta_tflite`)")
    return folder


def empty_folder(folder: Path) -> Path:
    (folder / "empty").mkdir()
    return folder / "empty"


CASES = [
    Case("fast", slim_fast, lambda _: {"threads": 1}, broken_fast),
    Case("gatys", squeezenet, lambda folder: {"style_image": str(painting(folder)), "iterations": 2, "seed": 0,
                                              "threads": 1}, garbage_file),
    Case("arbitrary", magenta, lambda folder: {"style_image": str(painting(folder)), "threads": 1}, empty_folder),
    Case("posterize", lambda folder: folder / "unused", lambda _: {}, None,
         why="the quick fixture engine takes no model: any path is as good as another"),
]


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def loaded(case: Case, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp(case.name)
    with pytest.MonkeyPatch.context() as patch:  # the fixture engines register the way plugins do
        patch.setenv("VPIPE_ENGINES", "posterize=quick_engines:load")
        patch.syspath_prepend(str(FIXTURES))
        return engines.load(case.name, case.model(folder), case.options(folder))  # type: ignore[arg-type]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for h, w in SIZES])
def test_any_size_uint8_rgb_in_and_out(case: Case, loaded: Engine, size: tuple[int, int],
                                       request: pytest.FixtureRequest) -> None:
    if case.name == "gatys" and min(size) < 16:  # strict: this test says so the day it is fixed
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "known bug: SqueezeNet's strides leave no feature map for a 9-pixel-high frame (TF InvalidArgumentError "
            "instead of a frame); the engine should pad tiny frames up to the net's minimum and crop")))
    frames = [frame(*size, seed=1)]
    out = loaded.stylize(frames)
    assert len(out) == 1
    assert out[0].shape == (*size, 3) and out[0].dtype == np.uint8


def test_as_many_frames_out_as_in_and_in_order(loaded: Engine) -> None:
    frames = [frame(48, 64, seed=s) for s in range(3)]
    out = loaded.stylize(frames)
    assert len(out) == len(frames)
    for each, source in zip(out, frames, strict=True):
        assert each.shape == source.shape and each.dtype == np.uint8
    assert loaded.stylize([]) == []


def test_the_same_frame_gives_the_same_output(case: Case, loaded: Engine) -> None:
    if not case.deterministic:
        pytest.skip(f"{case.name} does not promise the same output twice")
    image = frame(48, 64, seed=2)
    first, second = loaded.stylize([image])[0], loaded.stylize([image.copy()])[0]
    np.testing.assert_array_equal(first, second)


def test_a_model_it_cannot_use_is_one_clear_line(case: Case, tmp_path: Path) -> None:
    if case.bad_model is None:
        pytest.skip(case.why)
    with pytest.raises((ModelError, UsageError)) as refused:
        engines.load(case.name, case.bad_model(tmp_path), case.options(tmp_path))
    message = str(refused.value)
    assert message and "\n" not in message and "Traceback" not in message
