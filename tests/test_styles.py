"""What --style names (pipeline/styles.py), `vpipe styles` and its contact sheet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from pipeline import sheet, styles
from pipeline.errors import ModelError, UsageError
from tests.helpers import ASSETS, ROOT, assets_or_skip, write_model


def painting(path: Path, size: tuple[int, int] = (96, 128)) -> Path:
    y, x = np.mgrid[0:size[0], 0:size[1]]
    image = np.stack([np.sin(x / 5) * 120 + 128, np.cos(y / 7) * 120 + 128, (x * y) % 256], -1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def style_folder(base: Path, name: str, toml: str, files: dict[str, Path] | None = None) -> Path:
    folder = base / name
    folder.mkdir(parents=True)
    (folder / "style.toml").write_text(toml)
    for target, source in (files or {}).items():
        (folder / target).write_bytes(source.read_bytes())
    return folder


@pytest.fixture()
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty styles and models folders; a stand-in magenta_tflite folder (resolution only checks it is there)."""
    models, base = tmp_path / "models", tmp_path / "styles"
    (models / "magenta_tflite").mkdir(parents=True)
    base.mkdir()
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(base))
    return {"models": models, "styles": base, "tmp": tmp_path}


def test_an_image_goes_to_the_arbitrary_engine(places: dict[str, Path]) -> None:
    image = painting(places["tmp"] / "my painting.png")
    style = styles.resolve(str(image), None)
    assert (style.engine, style.model, style.image) == ("arbitrary", places["models"] / "magenta_tflite", image.resolve())
    gatys = styles.resolve(str(image), "gatys")
    assert (gatys.engine, gatys.model, gatys.image) == ("gatys", None, image.resolve())
    with pytest.raises(UsageError, match="needs a trained model"):  # a fast net is no image
        styles.resolve(str(image), "fast")


def test_arbitrary_without_its_models_says_what_to_pull(places: dict[str, Path]) -> None:
    (places["models"] / "magenta_tflite").rmdir()
    with pytest.raises(ModelError, match="vpipe models pull magenta_tflite"):
        styles.resolve(str(painting(places["tmp"] / "p.png")), None)


def test_a_style_folder_with_a_reference_and_params(places: dict[str, Path]) -> None:
    image = painting(places["tmp"] / "p.png")
    style_folder(places["styles"], "swirl", 'engine = "arbitrary"\nreference = "p.png"\nparams = { strength = 0.6 }\n',
                 {"p.png": image})
    style = styles.resolve("swirl", None)
    assert style.engine == "arbitrary" and style.params == {"strength": 0.6}
    assert style.image == style.reference == (places["styles"] / "swirl" / "p.png").resolve()
    assert style.model == places["models"] / "magenta_tflite"
    with pytest.raises(UsageError, match="is for the 'arbitrary' engine, not 'fast'"):
        styles.resolve("swirl", "fast")


@pytest.mark.parametrize(("toml", "message"), [
    ('engine = "arbitrary"\n', 'needs reference = "painting.jpg"'),
    ('engine = "gatys"\nreference = "gone.jpg"\n', "reference image .*gone.jpg is missing"),
    ('engine = "arbitrary"\nreference = "p.png"\nparams = 3\n', "params .* must be a table"),
])
def test_bad_style_folders(places: dict[str, Path], toml: str, message: str) -> None:
    style_folder(places["styles"], "bad", toml, {"p.png": painting(places["tmp"] / "p.png")})
    with pytest.raises(UsageError, match=message):
        styles.resolve("bad", None)


def test_a_fast_style_folder_with_its_own_weights(places: dict[str, Path]) -> None:
    folder = style_folder(places["styles"], "mine", 'model = "net"\nreference = "not here.jpg"\n')
    (folder / "net").mkdir()
    style = styles.resolve("mine", None)
    assert (style.engine, style.model, style.image, style.reference) == ("fast", folder / "net", None, None)


def test_styles_lists_the_shipped_styles(vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(assets_or_skip("models")))
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(ROOT / "styles"))
    result = vpipe("styles")
    assert result.exit_code == 0, result.output
    wave = next(line for line in result.output.splitlines() if line.startswith("wave "))
    assert wave.split()[:3] == ["wave", "fast", "yes"] and str(ASSETS / "models/lengstrom_fst/wave") in wave


def test_contact_sheet(places: dict[str, Path], vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("VPIPE_MODELS_DIR", str(assets_or_skip("models")))
    base, tmp = places["styles"], places["tmp"]
    style_folder(base, "any_painting", 'engine = "arbitrary"\nreference = "p.png"\nparams = { strength = 0.9 }\n',
                 {"p.png": painting(tmp / "p.png")})
    write_model(style_folder(base, "own_fast", 'model = "net"\n') / "net", channels=(8, 16, 32))
    style_folder(base, "slow", 'engine = "gatys"\nreference = "p.png"\n', {"p.png": painting(tmp / "p.png")})
    style_folder(base, "broken", 'engine = "fast"\nmodel = "lengstrom_fst/nope"\n')
    listed = vpipe("styles")
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines()[1:] if line and not line.startswith(" ")}
    assert lines["broken"].split()[2] == "no" and "vpipe models pull" not in lines["broken"]  # not a catalogue name
    assert "not found" in lines["broken"] and lines["any_painting"].split()[1:3] == ["arbitrary", "yes"]
    out = tmp / "sheet" / "styles.png"
    result = vpipe("styles", "--sheet", str(out))
    assert result.exit_code == 0, result.output
    assert f"contact sheet of 4 styles: {out}" in result.output
    image = cv2.imread(str(out))
    height = round(sheet.CELL / 1.5)  # the synthetic sample is 384x256
    names = ["sample"] + sorted(["any_painting", "own_fast", "slow", "broken"])
    assert image.shape == (len(names) * (height + sheet.GAP) - sheet.GAP, sheet.LABEL + sheet.GAP + sheet.CELL, 3)

    def lower(name: str) -> np.ndarray:  # the band's sample-frame cell
        y = names.index(name) * (height + sheet.GAP)
        return image[y:y + height, sheet.LABEL + sheet.GAP:].astype(int)

    def painting_shown(name: str) -> bool:  # under the caption in the label column
        y = names.index(name) * (height + sheet.GAP)
        return bool(image[y + 40:y + height, :sheet.LABEL].std() > 10)

    sample = lower("sample")
    assert np.abs(lower("any_painting") - sample).mean() > 10  # rendered in the painting's style
    assert np.abs(lower("own_fast") - sample).mean() > 10
    assert lower("slow").std() < 30 and lower("broken").std() < 30  # placeholders with a note
    assert painting_shown("any_painting") and painting_shown("slow")
    assert not painting_shown("own_fast") and not painting_shown("broken")  # no empty "no reference" box
