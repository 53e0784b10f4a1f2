"""What the coordinator knows about an engine without loading it: an EngineSpec.

A spec is plain data (no TensorFlow): the options the engine takes (the `vpipe stylize` flags and
the keys a style.toml's params may hold are both made from them), what a style gives it (a trained
model, or a painting), where its model comes from, its video-mode default and its memory model for
the budget check. The engine itself is built in the worker by `factory` ("module:attr").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import UsageError


def layer_list(text: str) -> list[str]:
    """"fire3,fire5" -> ["fire3", "fire5"]."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError("layer list is empty")
    return items


def weighted_layers(text: str) -> dict[str, float]:
    """"conv1:0.5,fire2" -> {"conv1": 0.5, "fire2": 1.0}."""
    out = {}
    for item in layer_list(text):
        name, _, weight = item.partition(":")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise UsageError(f"layer {item!r}: the weight after ':' must be a number") from None
    return out


@dataclass(frozen=True)
class Option:
    """One engine option: a `vpipe stylize` flag (unless cli=False) and a style.toml params key."""

    name: str  # python name; the flag is --name-with-dashes
    type: type = str  # int, float or str: what the value is once parsed
    help: str = ""  # what it does, without the engine's name or the default
    default: Any = None  # the engine's own default (None: none, or chosen from other options)
    about_default: str | None = None  # how the help states the default, when not just `default` ("" hides it)
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    parse: Callable[[str], Any] | None = None  # text (the command line, a style.toml string) -> value
    cli: bool = True  # False: only in a style.toml

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe_default(self) -> str:
        if self.about_default is not None:
            return self.about_default
        if self.default is None:
            return ""
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def check(self, value: Any, engine: str) -> Any:
        """A value from the command line, a style.toml or a stored job, checked; returns it parsed."""
        if self.parse is not None:
            return self.parse(value) if isinstance(value, str) else value
        wrong = isinstance(value, bool) or not isinstance(value, (int, float) if self.type is float else self.type)
        if wrong:
            raise UsageError(f"{engine} engine: {self.name} = {value!r} is not {_kind(self.type)}")
        if self.choices and value not in self.choices:
            raise UsageError(f"{engine} engine: {self.name} = {value!r} is not one of {', '.join(self.choices)}")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            bounds = f"{self.min:g}..{self.max:g}" if self.min is not None and self.max is not None else \
                (f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}")
            raise UsageError(f"{engine} engine: {self.name} = {value!r} is out of range ({bounds})")
        return value


def _kind(kind: type) -> str:
    return {int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)


@dataclass(frozen=True)
class VideoMode:
    """The engine's video mode unless --temporal/--no-temporal says otherwise."""

    on: bool = False
    weight: float = 0.5  # guided engines: the temporal loss weight; others: the flow-guided blend strength
    meaning: str = "blend"  # what the weight is, for the help

    def describe(self) -> str:
        return f"on, {self.meaning} {self.weight:g}" if self.on else f"off, {self.meaning} {self.weight:g} when given"


@dataclass(frozen=True)
class MemoryModel:
    """Resident memory a worker needs above a loaded worker for one frame on the engine's leanest path:
    fixed + per_pixel * pixels. `refusal` starts the message of a run that cannot fit ({need}, {size})."""

    per_pixel: int
    fixed: int = 0
    refusal: str = "the {engine} engine needs about {need} for a {size} frame:"

    def need(self, pixels: int, base: int) -> int:
        return base + self.fixed + self.per_pixel * pixels

    def fitting_pixels(self, budget: int, base: int) -> int:
        return (budget - base - self.fixed) // self.per_pixel


@dataclass(frozen=True)
class EngineSpec:
    name: str
    factory: str  # "module:attr" building the engine from (model, options); imported only in workers
    options: tuple[Option, ...] = ()
    style: Literal["model", "painting"] = "model"  # what a style gives the engine: a trained model, or a painting
    model_family: str | None = None  # the model-store family a bare style name is found in
    painting_model: str | None = None  # the model-store entry run for every painting (painting engines)
    model_option: str | None = None  # the option that picks the engine's model among `models`
    models: Mapping[str, str] = field(default_factory=dict)  # model_option's value -> model-store name
    video: VideoMode = VideoMode()
    memory: MemoryModel | None = None  # None: not checked against the budget (it tiles, or is small)
    preview: bool = False  # `vpipe styles --sheet` renders a sample with it (quick enough in-process)
    preview_budget: Mapping[str, Any] = field(default_factory=dict)  # `vpipe preview`: options for a quick look

    @property
    def takes_paintings(self) -> bool:
        return self.style == "painting"

    @property
    def takes_precision(self) -> bool:
        return "precision" in self.option_names

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def option(self, name: str) -> Option:
        return next(o for o in self.options if o.name == name)
