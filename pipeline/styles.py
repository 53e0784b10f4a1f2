"""Styles: what `--style` names. A style is a folder styles/<name>/ with a style.toml, a painting
(an image file: the arbitrary engine by default, or gatys), a model folder or file given as a path,
or a model name found by the model store.

style.toml keys: engine (default: the fast engine), model (a path inside the style folder, or a model-store
name), reference (the painting, relative to the folder; required by engines that take paintings:
arbitrary, gatys), params (a table of engine options, e.g. { strength = 0.8 }; the command line wins)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from . import engines, storage
from .errors import ModelError, UsageError
from .models import catalogue, lookup

STYLES_ENV = "VPIPE_STYLES_DIR"
DEFAULT_STYLE = "starry_night"  # shipped with vpipe: runs on a fresh install, no download
# An image given as --style goes to an engine that takes any painting (engines.PAINTING_ENGINE by default).
# What a style is for each engine (a painting or a model), the model family a bare name such as "udnie"
# is found in, and the model run for any painting are in the engine's spec.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Style:
    name: str
    engine: str
    model: Path | None  # the engine's weights (a style net, or the feature network for gatys)
    image: Path | None = None  # the painting, for engines that take one
    params: dict[str, Any] = field(default_factory=dict, compare=False)  # style.toml's engine options
    reference: Path | None = None  # the painting a style folder names (also for fast styles: the contact sheet)

    def settings(self) -> dict[str, str | None]:
        """What identifies the look: two runs with equal settings may share one video."""
        return {"style": self.name, "engine": self.engine, "model": str(self.model) if self.model else None,
                "model_sha256": lookup.fingerprint(self.model) if self.model else None,
                "image": str(self.image) if self.image else None,
                "image_sha256": lookup.fingerprint(self.image) if self.image else None}

    def with_model(self, model: Path) -> Style:
        return replace(self, model=model)


CHECK_SIDE = 64  # a painting is checked at 1/8 of its size where it is large: the coordinator never holds it whole


def check_painting(path: Path) -> None:
    """A one-line error unless `path` is an image within storage.MAX_PIXELS that decodes (at most 1/8 of it)."""
    try:
        storage.read_rgb(path, side=CHECK_SIDE)
    except storage.TooLarge as exc:
        raise UsageError(f"style image {exc}") from None
    except (OSError, ValueError):
        raise ModelError(f"style image {path}: not a readable image (corrupt, or not an image at all)") from None


def _image_style(path: Path, engine: str | None, find: Finder) -> Style:
    """A painting: it must exist and decode, and go to an engine that takes one."""
    if not path.is_file():
        raise UsageError(f"style image {str(path)!r}: no such file")
    check_painting(path)
    engine = engine or engines.PAINTING_ENGINE
    if not engines.spec_of(engine).takes_paintings:
        raise UsageError(f"style {path.name} is an image, but the {engine!r} engine needs a trained model: "
                         f"give a style name ({', '.join(available()) or 'see styles/'}) or a model folder, "
                         f"or use --engine {engines.PAINTING_ENGINE}")
    return Style(name=str(path.resolve()), engine=engine, model=engine_model(engine, find), image=path.resolve(),
                 reference=path.resolve())


def styles_dir() -> Path:
    """$VPIPE_STYLES_DIR, else the shipped styles: package data (pipeline/shipped_styles, a link to the
    repository's styles/ in a checkout, a copy of it in a wheel)."""
    if os.environ.get(STYLES_ENV):
        return Path(os.environ[STYLES_ENV])
    return Path(str(resources.files("pipeline").joinpath("shipped_styles"))).resolve()


def available() -> list[str]:
    base = styles_dir()
    return sorted(p.parent.name for p in base.glob("*/style.toml")) if base.is_dir() else []


Finder = Callable[[str], Path]  # a model name -> its path: lookup.find, or store.obtain (fetches what is missing)


def engine_model(engine: str, find: Finder = lookup.find) -> Path | None:
    """The model an engine runs for a bare painting, found by the model store (None: the engine has none)."""
    name = engines.spec_of(engine).painting_model
    return find(name) if name else None


PROJECT_LICENCE = "Apache-2.0 (vpipe's own: trained by vpipe train-style from a public-domain painting)"


def licence(data: dict[str, Any]) -> str:
    """What a style's licence allows, in one line: its style.toml's `licence`, else its catalogue model's."""
    if data.get("licence"):
        return f"licence: {data['licence']}"
    entry = catalogue.covering(str(data["model"])) if data.get("model") else None
    return catalogue.licence_line(entry) if entry else "licence: not stated in its style.toml"


def read_config(name: str, config: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(config.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"style {name!r}: {config} is not valid TOML ({exc})") from exc
    if not isinstance(data.get("params", {}), dict):
        raise UsageError(f"style {name!r}: params in {config} must be a table, e.g. params = {{ strength = 0.8 }}")
    return data


def inside(name: str, config: Path, key: str, value: object) -> Path:
    """A style.toml path (model, reference): relative, inside the style folder; an absolute path or '..'
    is a one-line error, never a look elsewhere on the file system."""
    text = str(value)
    if Path(text).is_absolute() or ".." in Path(text).parts or "\\" in text or not text.strip():
        raise UsageError(f"style {name!r}: {key} = {text!r} in {config}: name a file inside the style folder "
                         f"(no '/' at the start, no '..')" + (" or a model-store name" if key == "model" else ""))
    return config.parent / text


def from_folder(name: str, config: Path, engine: str | None, find: Finder = lookup.find) -> Style:
    """A styles/<name>/style.toml as a Style; the painting is checked, the model found."""
    data = read_config(name, config)
    style_engine = str(data.get("engine", engines.DEFAULT_ENGINE))
    if engine and engine != style_engine:
        raise UsageError(f"style {name!r} is for the {style_engine!r} engine, not {engine!r}")
    reference = inside(name, config, "reference", data["reference"]) if data.get("reference") else None
    paintings = engines.spec_of(style_engine).takes_paintings
    if paintings:
        if reference is None:
            raise UsageError(f"style {name!r}: the {style_engine} engine needs reference = \"painting.jpg\" in {config}")
        if not reference.is_file():
            raise UsageError(f"style {name!r}: its reference image {reference} is missing")
    elif reference is not None and not reference.is_file():
        reference = None  # only shown on the contact sheet
    if data.get("model"):
        local = inside(name, config, "model", data["model"])
        model: Path | None = local if local.exists() else find(str(data["model"]))
    else:
        model = engine_model(style_engine, find)
    image = reference.resolve() if reference and paintings else None
    return Style(name=name, engine=style_engine, model=model, image=image, params=dict(data.get("params", {})),
                 reference=reference)


def resolve(style: str | None, engine: str | None, find: Finder = lookup.find) -> Style:
    """Turn --style/--engine into a concrete model; every miss says what would have worked. `find` locates
    catalogue models (store.obtain for a run: it fetches what is missing)."""
    style = style or DEFAULT_STYLE
    path = Path(style).expanduser()
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _image_style(path, engine, find)
    if path.exists():
        return Style(name=str(path.resolve()), engine=engine or engines.DEFAULT_ENGINE, model=path.resolve())
    if os.sep in style:
        raise UsageError(f"style {style!r}: no such file or folder")
    config = styles_dir() / style / "style.toml"
    if config.is_file():
        return from_folder(style, config, engine, find)
    engine = engine or engines.DEFAULT_ENGINE
    family = engines.spec_of(engine).model_family
    if family:
        try:
            return Style(name=style, engine=engine, model=lookup.find(f"{family}/{style}"))
        except ModelError:
            pass
    known = ", ".join(available()) or "none"
    raise UsageError(f"unknown style {style!r}: not a file or folder, not in {styles_dir()} "
                     f"(styles there: {known})")
