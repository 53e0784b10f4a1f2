"""Engine registry. Engines are imported only inside worker processes (they pull in TensorFlow).

Extra engines can be registered with VPIPE_ENGINES="name=module:factory,..." (plugins, and the
test suite's misbehaving fixtures).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .base import Engine

BUILTIN = {"fast": "pipeline.engines.fast.engine:load", "gatys": "pipeline.engines.gatys:load",
           "arbitrary": "pipeline.engines.arbitrary:load"}
# The options each engine takes (command line, or a style.toml's params); any other is refused.
PARAMS = {
    "gatys": ("net", "iterations", "optimizer", "style_weight", "content_weight", "tv_weight", "init", "seed",
              "content_layers", "style_layers"),
    "arbitrary": ("strength", "mode", "transfer"),
    "fast": ("precision",),  # bf16/fp16 convolutions; gatys (an optimization) and arbitrary (TF Lite) stay fp32
}


def registry() -> dict[str, str]:
    extra = os.environ.get("VPIPE_ENGINES", "")
    entries = dict(item.split("=", 1) for item in extra.split(",") if "=" in item)
    return {**BUILTIN, **entries}


def check_name(name: str) -> str:
    if name not in registry():
        raise UsageError(f"unknown engine {name!r} (known: {', '.join(sorted(registry()))})")
    return name


def check_params(name: str, params: dict[str, Any]) -> None:
    """Refuse options the engine does not take, naming the engine that does."""
    refused = [k for k in params if k not in PARAMS.get(name, ())]
    if not refused:
        return
    by_owner: dict[str, list[str]] = {}
    for key in refused:
        owner = next((engine for engine, keys in PARAMS.items() if key in keys), "")
        by_owner.setdefault(owner, []).append("--" + key.replace("_", "-"))
    raise UsageError("; ".join(f"{', '.join(flags)}: " + (f"only for the {owner} engine" if owner else
                                                          f"not an option of the {name} engine")
                               for owner, flags in by_owner.items()))


def load(name: str, model: Path, options: dict[str, Any]) -> Engine:
    """Import the engine's module and build it once; called by the worker, never the coordinator."""
    module_name, _, attr = registry()[check_name(name)].partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    engine: Engine = factory(model, options)
    return engine
