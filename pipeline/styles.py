"""Styles: what `--style` names. A style is a folder styles/<name>/ with a style.toml, a model
folder or file given as a path, or a model name found by the model store."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import models, storage
from .errors import ModelError, UsageError

STYLES_ENV = "VPIPE_STYLES_DIR"
DEFAULT_STYLE = "wave"
# Model families per engine, used to find a bare name such as "udnie" in the model store.
MODEL_FAMILIES = {"fast": "lengstrom_fst"}


# An image given as --style goes to an engine that takes any painting.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
IMAGE_ENGINE = "gatys"


@dataclass(frozen=True)
class Style:
    name: str
    engine: str
    model: Path | None  # the engine's weights (a style net, or the feature network for gatys)
    image: Path | None = None  # the painting, for engines that take one

    def settings(self) -> dict[str, str | None]:
        """What identifies the look: two runs with equal settings may share one video."""
        return {"style": self.name, "engine": self.engine, "model": str(self.model) if self.model else None,
                "model_sha256": models.fingerprint(self.model) if self.model else None,
                "image": str(self.image) if self.image else None,
                "image_sha256": models.fingerprint(self.image) if self.image else None}

    def with_model(self, model: Path) -> Style:
        return Style(self.name, self.engine, model, self.image)


def _image_style(path: Path, engine: str | None) -> Style:
    """A painting: it must exist and decode, and go to an engine that takes one."""
    if not path.is_file():
        raise UsageError(f"style image {str(path)!r}: no such file")
    try:
        storage.read_rgb(path)
    except ValueError:
        raise ModelError(f"style image {path}: not a readable image (corrupt, or not an image at all)") from None
    engine = engine or IMAGE_ENGINE
    if engine in MODEL_FAMILIES:
        raise UsageError(f"style {path.name} is an image, but the {engine!r} engine needs a trained model: "
                         f"give a style name ({', '.join(available()) or 'see styles/'}) or a model folder, "
                         f"or use --engine {IMAGE_ENGINE}")
    return Style(name=str(path.resolve()), engine=engine, model=None, image=path.resolve())


def styles_dir() -> Path:
    return Path(os.environ.get(STYLES_ENV) or Path(__file__).resolve().parents[1] / "styles")


def available() -> list[str]:
    base = styles_dir()
    return sorted(p.parent.name for p in base.glob("*/style.toml")) if base.is_dir() else []


def resolve(style: str | None, engine: str | None) -> Style:
    """Turn --style/--engine into a concrete model; every miss says what would have worked."""
    style = style or DEFAULT_STYLE
    path = Path(style).expanduser()
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _image_style(path, engine)
    if path.exists():
        return Style(name=str(path.resolve()), engine=engine or "fast", model=path.resolve())
    if os.sep in style:
        raise UsageError(f"style {style!r}: no such file or folder")
    config = styles_dir() / style / "style.toml"
    if config.is_file():
        try:
            data = tomllib.loads(config.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"style {style!r}: {config} is not valid TOML ({exc})") from exc
        style_engine = str(data.get("engine", "fast"))
        if engine and engine != style_engine:
            raise UsageError(f"style {style!r} is for the {style_engine!r} engine, not {engine!r}")
        local = config.parent / str(data.get("model", ""))
        model = local if data.get("model") and local.exists() else models.find(str(data.get("model")))
        return Style(name=style, engine=style_engine, model=model)
    family = MODEL_FAMILIES.get(engine or "fast")
    if family:
        try:
            return Style(name=style, engine=engine or "fast", model=models.find(f"{family}/{style}"))
        except ModelError:
            pass
    known = ", ".join(available()) or "none"
    raise UsageError(f"unknown style {style!r}: not a file or folder, not in {styles_dir()} "
                     f"(styles there: {known})")
