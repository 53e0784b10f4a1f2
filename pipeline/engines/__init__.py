"""Engine registry: the EngineSpec of every engine (TensorFlow-free); the engines themselves are
imported only inside worker processes (they pull in TensorFlow).

Extra engines can be registered with VPIPE_ENGINES="name=module:factory,..." (plugins, and the
test suite's fixtures). `module` is imported by the coordinator to read its module-level `SPEC`
(an EngineSpec; without one, or where the coordinator cannot import the module, the engine takes no
options and a model path as its style), so it must import cheaply: TensorFlow belongs in the factory.
Adding an engine = one module (its SPEC and its factory) + one entry here or in VPIPE_ENGINES.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import arbitrary_spec, gatys_spec
from .base import Engine
from .fast import spec as fast_spec
from .spec import EngineSpec, Option

BUILTIN = {spec.name: spec for spec in (fast_spec.SPEC, arbitrary_spec.SPEC, gatys_spec.SPEC)}
DEFAULT_ENGINE = fast_spec.SPEC.name  # a style.toml without `engine`, a model path
PAINTING_ENGINE = arbitrary_spec.SPEC.name  # an image given as --style


def _plugins() -> dict[str, str]:
    extra = os.environ.get("VPIPE_ENGINES", "")
    return dict(item.split("=", 1) for item in extra.split(",") if "=" in item)


def registry() -> dict[str, str]:
    """Engine name -> the factory ("module:attr") a worker builds it with."""
    return {**{name: spec.factory for name, spec in BUILTIN.items()}, **_plugins()}


def check_name(name: str) -> str:
    if name not in registry():
        raise UsageError(f"unknown engine {name!r} (known: {', '.join(sorted(registry()))})")
    return name


def spec_of(name: str) -> EngineSpec:
    """The engine's spec: a builtin's, or the SPEC of a plugin's module (read without building the engine)."""
    plugin = _plugins().get(check_name(name))
    if plugin is None:
        return BUILTIN[name]
    module_name = plugin.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # importable only where the workers run (their PYTHONPATH): they say why if not
        module = None
    found = getattr(module, "SPEC", None)
    if found is None:
        return EngineSpec(name=name, factory=plugin)
    if not isinstance(found, EngineSpec):
        raise UsageError(f"engine {name!r}: {module_name}.SPEC is not an EngineSpec")
    return replace(found, name=name, factory=plugin)


def all_specs() -> list[EngineSpec]:
    """Every registered engine's spec."""
    return [spec_of(name) for name in registry()]


def options() -> dict[str, tuple[Option, list[str]]]:
    """Every engine option by name, with the engines that take it (one option, one meaning)."""
    out: dict[str, tuple[Option, list[str]]] = {}
    for engine in all_specs():
        for option in engine.options:
            if option.name in out and out[option.name][0] != option:
                raise UsageError(f"engine {engine.name!r}: its option {option.name!r} differs from the "
                                 f"{out[option.name][1][0]} engine's")
            out.setdefault(option.name, (option, []))[1].append(engine.name)
    return out


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse options the engine does not take, naming the engine that does, and values its spec
    does not allow; returns the params with text values parsed."""
    engine = spec_of(name)
    refused = [k for k in params if k not in engine.option_names]
    if refused:
        known = options()
        by_owner: dict[str, list[str]] = {}
        for key in refused:
            owners = known[key][1] if key in known else []
            by_owner.setdefault(" and ".join(owners), []).append("--" + key.replace("_", "-"))
        raise UsageError("; ".join(f"{', '.join(flags)}: " + (f"only for the {owner} engine" if owner else
                                                              f"not an option of the {name} engine")
                                   for owner, flags in by_owner.items()))
    return {k: engine.option(k).check(v, name) for k, v in params.items()}


def load(name: str, model: Path, options: dict[str, Any]) -> Engine:
    """Import the engine's module and build it once; called by the worker, never the coordinator."""
    module_name, _, attr = registry()[check_name(name)].partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    engine: Engine = factory(model, options)
    return engine
