"""The `vpipe` command: parse, call one stage, format. The only place errors become exit codes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from . import report as report_module
from . import resources, stages
from . import verify as verify_stage
from .cli_models import models_group, styles_command
from .cli_train import train_style
from .engines import PARAMS as ENGINE_PARAMS
from .engines.fast.precision import PRECISIONS
from .errors import DISK_FULL_HINT, DiskFullError, UsageError, VpipeError, is_disk_full
from .frames import FrameRange, parse_range
from .job import jobs_dir
from .logs import format_seconds
from .manifest import Status


class RangeType(click.ParamType):
    name = "A-B"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> FrameRange:
        if isinstance(value, FrameRange):
            return value
        try:
            return parse_range(str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return resources.parse_size(str(value), "--max-memory")
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"vpipe: error: {message}", err=True)
    sys.exit(code)


class Group(click.Group):
    """Turns every known error into one line and its exit code; never a traceback for the user."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VpipeError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except click.UsageError as exc:  # a bad option: one line too, like every other error
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback on request
            if is_disk_full(exc):  # e.g. the log or the manifest could not grow
                _fail(f"no space left on the device ({exc}); {DISK_FULL_HINT}", DiskFullError.exit_code)
            if os.environ.get("VPIPE_DEBUG"):
                traceback.print_exc()
            _fail(f"internal error ({type(exc).__name__}: {exc}); set VPIPE_DEBUG=1 for the traceback", 1)


def _base(ctx: click.Context) -> Path:
    return jobs_dir(ctx.obj.get("jobs_dir"))


@click.group(cls=Group)
@click.option("--jobs-dir", type=click.Path(file_okay=False, path_type=Path), envvar="VPIPE_JOBS_DIR",
              help="Where jobs live (default ./jobs).")
@click.version_option(package_name="vpipe")
@click.pass_context
def main(ctx: click.Context, jobs_dir: Path | None) -> None:
    """Resumable batch video stylization: split, stylize, retry-failed, assemble."""
    ctx.ensure_object(dict)
    ctx.obj["jobs_dir"] = jobs_dir
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops as cleanly as Ctrl-C


@main.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--job", help="Job name (default: from the file name).")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="Frame files: lossless PNG or faster JPEG.")
@click.pass_context
def split(ctx: click.Context, video: Path, job: str | None, fmt: str) -> None:
    """Decode VIDEO into numbered frames and create a job."""
    result = stages.split(video, _base(ctx), job, fmt)
    info = result.info
    if result.already:
        click.echo(f"job {result.job.name}: already split ({result.frames} frames), nothing to do")
        return
    w, h = info.display_size
    audio = ", ".join(f"{a.codec}" + (f" ({a.language})" if a.language else "") for a in info.audio) or "none"
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"job {result.job.name}: {result.frames} frames, {w}x{h}, {info.rate} fps"
               f"{f', rotation {info.rotation}' if info.rotation else ''}, audio: {audio}")
    click.echo(f"frames in {result.job.frames_dir}")


def _run_options(**kw: Any) -> stages.RunOptions:
    return stages.RunOptions(**{k: v for k, v in kw.items() if v is not None})


def _report(result: stages.RunResult) -> None:
    for note in result.notes:
        click.echo(f"note: {note}")
    counts = result.counts
    if not result.todo:
        click.echo(f"job {result.job.name}: nothing to do in this range "
                   f"({counts[Status.DONE]} done, {counts[Status.FAILED]} failed of {sum(counts.values())})")
    else:
        o = result.outcome
        click.echo(f"job {result.job.name}: {o.done} frames styled, {o.failed} failed in "
                   f"{format_seconds(result.seconds)} ({o.done / max(result.seconds, 1e-6):.2f} frames/s); "
                   f"job total: {counts[Status.DONE]} done, {counts[Status.FAILED]} failed, "
                   f"{counts[Status.PENDING]} pending")
    if counts[Status.FAILED]:
        click.echo("failed frames: see `vpipe status`, then `vpipe retry-failed`")
        sys.exit(1 if result.outcome.failed else 0)


run_options = [
    click.option("--job", help="Job name (default: the only job, else the last one split)."),
    click.option("--chunk", type=click.IntRange(min=1),
                 help="Frames per chunk, at most (default 50; evened out so that the workers finish together)."),
    click.option("--workers", type=click.IntRange(min=1),
                 help="Worker processes (default: 1 per GPU, else 1 per core up to 4, see README \"Speed\")."),
    click.option("--max-attempts", type=click.IntRange(min=1), help="Tries per frame in this run (default 2)."),
    click.option("--frame-timeout", type=click.FloatRange(min=0, min_open=True),
                 help="Seconds before a frame counts as hung (default 600)."),
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


def _temporal(value: str | None, off: bool) -> float | bool | None:
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


GATYS_PARAMS = ENGINE_PARAMS["gatys"]
ARBITRARY_PARAMS = ("strength",)  # on the command line; mode and transfer only in a style.toml
FAST_PARAMS = ENGINE_PARAMS["fast"]


def _layers(text: str | None, weighted: bool) -> Any:
    """"fire3,fire5" -> ["fire3", "fire5"]; with weights "conv1:0.5,fire2" -> {"conv1": 0.5, "fire2": 1.0}."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError("layer list is empty")
    if not weighted:
        return items
    out = {}
    for item in items:
        name, _, weight = item.partition(":")
        try:
            out[name] = float(weight) if weight else 1.0
        except ValueError:
            raise UsageError(f"layer {item!r}: the weight after ':' must be a number") from None
    return out


@main.command()
@with_run_options
@click.option("--style", help="Style name from styles/, a model path, or a painting (an image: arbitrary engine).")
@click.option("--engine", help="Engine: fast, arbitrary, gatys (default: the style's; arbitrary for an image).")
@click.option("--range", "frames", type=RangeType(), help="Frames A-B, 1-based inclusive (default all).")
@click.option("--max-side", type=click.IntRange(min=16), help="Stylize at most this many pixels on the long side.")
@click.option("--temporal", "temporal", is_flag=False, flag_value="on", metavar="[W]",
              help="Video mode: guide each frame by the previous styled one (gatys: on, loss weight 200; "
                   "fast: off, blend 0.5 when given).")
@click.option("--no-temporal", "no_temporal", is_flag=True, help="Stylize every frame independently.")
@click.option("--net", type=click.Choice(["squeezenet", "vgg19"]), help="gatys: feature network (default squeezenet).")
@click.option("--iterations", type=click.IntRange(min=1), help="gatys: iterations per frame (default 300; 2x for a cold start).")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), help="gatys: optimizer (default lbfgs).")
@click.option("--style-weight", type=click.FloatRange(min=0), help="gatys: style loss weight (default 10).")
@click.option("--content-weight", type=click.FloatRange(min=0), help="gatys: content loss weight (default 1).")
@click.option("--tv-weight", type=click.FloatRange(min=0), help="gatys: total-variation weight (default 10).")
@click.option("--init", type=click.Choice(["content", "noise"]), help="gatys: start of a cold frame (default content).")
@click.option("--seed", type=int, help="gatys: seed of the noise start (--init noise).")
@click.option("--content-layers", help="gatys: content layers, e.g. fire3,fire5 (default per --net).")
@click.option("--style-layers", help="gatys: style layers with weights, e.g. conv1:0.5,fire2,fire3 (default per --net).")
@click.option("--strength", type=click.FloatRange(0, 1),
              help="arbitrary: how much of the painting's style, 0..1 (default 1; less keeps more of the frame's own).")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="fast: number format of the convolutions (default auto: bf16 on CPUs with AVX-512 BF16/AMX, "
                   "fp16 on GPUs, else fp32).")
@click.option("--restart", is_flag=True, help="Discard styled frames made with other settings.")
@click.pass_context
def stylize(ctx: click.Context, job: str | None, temporal: str | None, no_temporal: bool, **kw: Any) -> None:
    """Stylize pending frames in crash-isolated workers; resumable."""
    params = {k: kw.pop(k) for k in (*GATYS_PARAMS, *ARBITRARY_PARAMS, *FAST_PARAMS)}
    params["content_layers"] = _layers(params["content_layers"], weighted=False)
    params["style_layers"] = _layers(params["style_layers"], weighted=True)
    options = _run_options(**kw, temporal=_temporal(temporal, no_temporal),
                           params={k: v for k, v in params.items() if v is not None})
    _report(stages.stylize(_base(ctx), job, options))


@main.command("retry-failed")
@with_run_options
@click.pass_context
def retry_failed(ctx: click.Context, job: str | None, **kw: Any) -> None:
    """Put failed frames back to pending (history kept) and stylize them."""
    _report(stages.stylize(_base(ctx), job, _run_options(**kw), retry_failed=True))


@main.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Output file (default jobs/NAME/output.mp4).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="x264 quality (lower is better).")
@click.option("--fill", type=click.Choice(["fail", "original"]), default="fail", show_default=True,
              help="Missing styled frames: stop, or use the source frames.")
@click.pass_context
def assemble(ctx: click.Context, job: str | None, output: Path | None, crf: int, fill: str) -> None:
    """Encode the styled frames at the source's exact rate, with its audio."""
    result = stages.assemble(_base(ctx), job, output, crf, fill)
    if result.filled:
        click.echo(f"note: {result.filled} missing frames filled with the original frames")
    click.echo(f"job {result.job.name}: {result.frames} frames, {result.audio_streams} audio streams")
    click.echo(str(result.output))


@main.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.pass_context
def status(ctx: click.Context, job: str | None) -> None:
    """Counts by status, failed frames with reasons, throughput and ETA (read-only)."""
    report = report_module.status(_base(ctx), job)
    if report.note:
        click.echo(f"note: {report.note}")
    counts = report.counts
    total = sum(counts.values())
    running = f"run in progress (pid {report.holder})" if report.holder else "no run in progress"
    click.echo(f"job {report.job.name}: {total} frames, {running}")
    for state in Status:
        stale = "  (left by a run that died: the next run reclaims them)" \
            if state is Status.RUNNING and counts[state] and not report.holder else ""
        click.echo(f"  {state.value:<8} {counts[state]:>7}{stale}")
    if report.settings:
        click.echo(f"style: {report.settings.get('style')} (engine {report.settings.get('engine')})")
    if report.rate:
        eta = f", ETA {format_seconds(report.eta)}" if report.eta else ""
        click.echo(f"throughput: {report.rate:.2f} frames/s (latest run){eta}")
    if report.failures:
        click.echo("failed frames:")
        for record in report.failures[:50]:
            click.echo(f"  {record.idx:>7}  {record.error_kind or '?':<10} attempts {record.attempts}  "
                       f"{record.last_error or ''}")
        if len(report.failures) > 50:
            click.echo(f"  ... and {len(report.failures) - 50} more")


@main.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.option("--range", "frames", type=RangeType(), help="Frames A-B (default all done frames).")
@click.option("--style-image", type=click.Path(dir_okay=False, path_type=Path),
              help="Painting to measure the style loss against (default: the job's style image).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def metrics(ctx: click.Context, job: str | None, frames: FrameRange | None, style_image: Path | None,
            as_json: bool) -> None:
    """Flicker (warping error, lower is steadier) and style kept (Gram distance) of the styled frames."""
    from . import metrics as measuring

    if style_image is not None and not style_image.is_file():
        raise UsageError(f"--style-image {style_image}: no such file")
    report = measuring.measure(_base(ctx), job, frames, style_image)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), indent=1))
        return
    for note in report.notes:
        click.echo(f"note: {note}")

    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.5f}"

    click.echo(f"job {report.job}: {report.frames} styled frames in {report.first}-{report.last}, "
               f"{report.pairs} consecutive pairs")
    click.echo(f"  {'':<8} {'E_warp':>10} {'style loss':>11}")
    click.echo(f"  {'styled':<8} {cell(report.warping_error):>10} {cell(report.style_loss):>11}")
    click.echo(f"  {'source':<8} {cell(report.source_warping_error):>10} {cell(report.source_style_loss):>11}")
    click.echo("  E_warp: Lai et al. warping error (RGB 0..1, flow on the source frames); lower is steadier.")
    if report.style_image:
        click.echo(f"  style loss: Gram distance to {report.style_image} (SqueezeNet); lower is more styled.")


@main.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.option("--fix", is_flag=True, help="Put bad frames back to pending (and remove their files).")
@click.pass_context
def verify(ctx: click.Context, job: str | None, fix: bool) -> None:
    """Check that every done frame's file decodes, has the job's size and its recorded hash."""
    report = verify_stage.verify(_base(ctx), job, fix)
    for line in verify_stage.report_lines(report):
        click.echo(line)
    if report.bad and not fix:
        sys.exit(1)


@main.command()
def doctor() -> None:
    """Which ffmpeg, TensorFlow, devices and model folders vpipe uses here."""
    for key, value in report_module.doctor():
        click.echo(f"{key:<18} {value}")


main.add_command(models_group)
main.add_command(train_style)
main.add_command(styles_command)

if __name__ == "__main__":
    main()
