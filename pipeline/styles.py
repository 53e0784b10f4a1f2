"""Styles: what `--style` names. A style is a folder styles/<name>/ with a style.toml, a model
folder or file given as a path, or a model name found by the model store."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import models
from .errors import ModelError, UsageError

STYLES_ENV = "VPIPE_STYLES_DIR"
DEFAULT_STYLE = "wave"
# Model families per engine, used to find a bare name such as "udnie" in the model store.
MODEL_FAMILIES = {"fast": "lengstrom_fst"}


@dataclass(frozen=True)
class Style:
    name: str
    engine: str
    model: Path

    def settings(self) -> dict[str, str]:
        """What identifies the look: two runs with equal settings may share one video."""
        return {"style": self.name, "engine": self.engine, "model_sha256": models.fingerprint(self.model)}


def styles_dir() -> Path:
    return Path(os.environ.get(STYLES_ENV) or Path(__file__).resolve().parents[1] / "styles")


def available() -> list[str]:
    base = styles_dir()
    return sorted(p.parent.name for p in base.glob("*/style.toml")) if base.is_dir() else []


def resolve(style: str | None, engine: str | None) -> Style:
    """Turn --style/--engine into a concrete model; every miss says what would have worked."""
    style = style or DEFAULT_STYLE
    path = Path(style).expanduser()
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
