"""Option types and the options shared by the commands that run workers."""

from __future__ import annotations

from typing import Any

import click

from .. import engines, resources
from ..engines.spec import Option
from ..errors import UsageError
from ..frames import FrameRange, parse_range


class RangeType(click.ParamType):
    name = "A-B"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> FrameRange:
        if isinstance(value, FrameRange):
            return value
        try:
            return parse_range(str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


def engine_flag(option: Option, owners: list[str]) -> click.Option:
    """The `vpipe stylize` flag of an engine option, from its spec."""
    kind: Any = option.type if option.type in (int, float) and option.parse is None else str
    if option.choices:
        kind = click.Choice(option.choices)
    elif kind is int and (option.min is not None or option.max is not None):
        kind = click.IntRange(None if option.min is None else int(option.min), None if option.max is None else int(option.max))
    elif kind is float and (option.min is not None or option.max is not None):
        kind = click.FloatRange(option.min, option.max)
    default = option.describe_default()
    help_text = f"{', '.join(owners)}: {option.help}" + (f" (default {default})" if default else "") + "."
    return click.Option([option.flag, option.name], type=kind, help=help_text)


class EngineOptionsCommand(click.Command):
    """A command that also takes every registered engine's options as flags (read from the specs when it
    runs, so that a plugin engine registered by VPIPE_ENGINES brings its own), placed before --restart."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        if "engine_flags" not in ctx.meta:
            ctx.meta["engine_flags"] = [engine_flag(option, owners) for option, owners in engines.options().values()
                                        if option.cli]
        at = next((i for i, p in enumerate(params) if p.name == "restart"), len(params))
        return [*params[:at], *ctx.meta["engine_flags"], *params[at:]]


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return resources.parse_size(str(value), "--max-memory")
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


run_options = [
    click.option("--job", help="Job name (default: the only job, else the last one split)."),
    click.option("--chunk", type=click.IntRange(min=1),
                 help="Frames per chunk, at most (default 50; evened out so that the workers finish together)."),
    click.option("--workers", type=click.IntRange(min=1),
                 help="Worker processes (default: 1 per GPU, else 1 per core up to 4, see README \"Speed\")."),
    click.option("--max-attempts", type=click.IntRange(min=1), help="Tries per frame in this run (default 2)."),
    click.option("--frame-timeout", type=click.FloatRange(min=0, min_open=True),
                 help="Seconds before a frame counts as hung (default 600)."),
    click.option("--load-timeout", type=click.FloatRange(min=0, min_open=True),
                 help="Seconds a worker may take to load its engine before it is replaced (default 300)."),
    click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), help="Where engines run (default auto)."),
    click.option("--executor", type=click.Choice(["local", "ray"]),
                 help="Worker processes on this machine (default), or on a Ray cluster (pip install 'vpipe[ray]')."),
    click.option("--ray-address", metavar="auto|HOST:PORT",
                 help="ray: the cluster to join (default: start a local Ray instance)."),
    click.option("--gpus-per-worker", type=click.IntRange(min=0),
                 help="ray: GPUs each worker reserves (default 1 when the cluster has GPUs, else 0)."),
    click.option("--threads", type=click.IntRange(min=1),
                 help="Compute threads per worker (default: chosen from the machine, see README \"Speed\")."),
    click.option("--max-memory", type=SizeType(),
                 help="Memory budget per worker, e.g. 4G: larger frames take a leaner path (tiles, or the fast "
                      "engine's TF graph) (default: half the available RAM over the workers, at most 8G)."),
]


def with_run_options(func: Any) -> Any:
    for option in reversed(run_options):
        func = option(func)
    return func


def parse_temporal(value: str | None, off: bool) -> float | bool | None:
    if off:
        return False
    if value is None or value == "on":
        return None if value is None else True
    try:
        weight = float(value)
    except ValueError:
        raise UsageError(f"--temporal {value!r}: expected a weight (a number)") from None
    if weight < 0:
        raise UsageError("--temporal: the weight cannot be negative")
    return weight
