"""`vpipe split | stylize | retry-failed | assemble`: the commands that make and change a job."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from .. import engines, stages
from .. import output as output_files
from ..logs import format_seconds
from ..manifest import Status
from ..storage import FORMATS
from ..video import CODECS
from .app import base
from .params import EngineOptionsCommand, RangeType, parse_temporal, with_run_options

BUILTIN = engines.BUILTIN.values()


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--job", help="Job name (default: from the file name).")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="Frame files: lossless PNG or faster JPEG.")
@click.pass_context
def split(ctx: click.Context, video: Path, job: str | None, fmt: str) -> str:
    """Decode VIDEO into numbered frames and create a job."""
    result = stages.split(video, base(ctx), job, fmt)
    info = result.info
    if result.already:
        click.echo(f"job {result.job.name}: already split ({result.frames} frames), nothing to do")
        return result.job.name
    w, h = info.display_size
    audio = ", ".join(f"{a.codec}" + (f" ({a.language})" if a.language else "") for a in info.audio) or "none"
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"job {result.job.name}: {result.frames} frames, {w}x{h}, {info.rate} fps"
               f"{f', rotation {info.rotation}' if info.rotation else ''}, audio: {audio}")
    click.echo(f"frames in {result.job.frames_dir}")
    return result.job.name


def _run_options(**kw: Any) -> stages.RunOptions:
    return stages.RunOptions(**{k: v for k, v in kw.items() if v is not None})


def _report(result: stages.RunResult, stop_on_failed: bool = True) -> None:
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
    if counts[Status.FAILED] and stop_on_failed:
        click.echo("failed frames: see `vpipe status`, then `vpipe retry-failed`")
        sys.exit(1 if result.outcome.failed else 0)


def stylize_options(func: Any) -> Any:
    """The options of `stylize` (shared with `run`); engine options come from EngineOptionsCommand."""
    options = [
        click.option("--style", help="Style name from styles/, a model path, or a painting "
                                     f"(an image: {engines.PAINTING_ENGINE} engine)."),
        click.option("--engine", help=f"Engine: {', '.join(s.name for s in BUILTIN)} "
                                      f"(default: the style's; {engines.PAINTING_ENGINE} for an image)."),
        click.option("--range", "frames", type=RangeType(), help="Frames A-B, 1-based inclusive (default all)."),
        click.option("--max-side", type=click.IntRange(min=16), help="Stylize at most this many pixels on the long side."),
        click.option("--temporal", "temporal", is_flag=False, flag_value="on", metavar="[W]",
                     help="Video mode: guide each frame by the previous styled one "
                          f"({'; '.join(f'{s.name}: {s.video.describe()}' for s in BUILTIN)})."),
        click.option("--no-temporal", "no_temporal", is_flag=True, help="Stylize every frame independently."),
        click.option("--restart", is_flag=True, help="Discard styled frames made with other settings."),
        click.option("--format", "frame_format", type=click.Choice(FORMATS),
                     help="Styled frames' files: png (lossless, default), jpg or webp (smaller)."),
        click.option("--quality", type=click.IntRange(1, 100),
                     help="jpg/webp quality (default jpg 95, webp 90; webp 100 is lossless)."),
    ]
    for option in reversed(options):
        func = option(func)
    return with_run_options(func)


def _stylize_options(temporal: str | None, no_temporal: bool, kw: dict[str, Any]) -> stages.RunOptions:
    """What the stylize options say, engine options parsed by their specs."""
    params = {}
    for name, (option, _) in engines.options().items():
        value = kw.pop(name, None)
        if value is not None:
            params[name] = option.parse(value) if option.parse else value
    return _run_options(**kw, temporal=parse_temporal(temporal, no_temporal), params=params)


@click.command(cls=EngineOptionsCommand)
@stylize_options
@click.pass_context
def stylize(ctx: click.Context, temporal: str | None, no_temporal: bool, job: str | None, **kw: Any) -> None:
    """Stylize pending frames in crash-isolated workers; resumable. Engine options (from the engines'
    specs) are flags here too, or params in a style.toml."""
    _report(stages.stylize(base(ctx), job, _stylize_options(temporal, no_temporal, kw)))


@click.command("retry-failed")
@with_run_options
@click.pass_context
def retry_failed(ctx: click.Context, job: str | None, **kw: Any) -> None:
    """Put failed frames back to pending (history kept) and stylize them."""
    _report(stages.stylize(base(ctx), job, _run_options(**kw), retry_failed=True))


@click.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Output file (default jobs/NAME/output.mp4).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="x264 quality (lower is better).")
@click.option("--fill", type=click.Choice(["fail", "original"]), default="fail", show_default=True,
              help="Missing styled frames: stop, or use the source frames.")
@click.option("--codec", type=click.Choice(CODECS),
              help="h264 (default), h265, prores (ProRes 4444, .mov) or ffv1 (lossless, .mkv); "
                   "the default output's suffix follows it.")
@click.option("--frames-out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the styled image sequence into this folder (instead of the video; with -o as well).")
@click.option("--force", is_flag=True, help="Replace an existing -o file, or a --frames-out folder that is not empty.")
@click.pass_context
def assemble(ctx: click.Context, job: str | None, output: Path | None, crf: int, fill: str, codec: str | None,
             frames_out: Path | None, force: bool) -> None:
    """Encode the styled frames at the source's exact rate, with its audio, subtitles, chapters and tags."""
    result = stages.assemble(base(ctx), job, output, crf, fill, codec, frames_out, force)
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.filled:
        click.echo(f"note: {result.filled} missing frames filled with the original frames")
    if result.output is not None:
        extras = "".join(f", {n} {what}" for n, what in ((result.subtitle_streams, "subtitle streams"),
                                                         (result.chapters, "chapters")) if n)
        click.echo(f"job {result.job.name}: {result.frames} frames ({result.codec}), "
                   f"{result.audio_streams} audio streams{extras}")
        click.echo(str(result.output))
    if result.frames_out is not None:
        click.echo(f"job {result.job.name}: {result.frames} frames written to {result.frames_out}")


def _retry_options(options: stages.RunOptions) -> stages.RunOptions:
    """A retry runs on the job's stored style settings: only where and how to run carries over."""
    return dataclasses.replace(options, style=None, engine=None, params={}, temporal=None, restart=False,
                               max_side=None, frame_format=None, quality=None)


@click.command("run", cls=EngineOptionsCommand)
@click.argument("video", type=click.Path(path_type=Path))
@stylize_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (default jobs/NAME/output.mp4).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="x264 quality (lower is better).")
@click.option("--fill", type=click.Choice(["fail", "original"]), default="fail", show_default=True,
              help="Frames still failed after one retry: stop before assembling, or use the source frames.")
@click.option("--force", is_flag=True, help="Replace an existing -o file.")
@click.pass_context
def run(ctx: click.Context, video: Path, temporal: str | None, no_temporal: bool, job: str | None,
        output: Path | None, crf: int, fill: str, force: bool, **kw: Any) -> None:
    """Split VIDEO (or reuse its job), stylize it, retry the failed frames once, assemble: one command for a
    film, resumable by running it again. Exit codes as the parts (1: frames still failed)."""
    if output is not None:  # refused now, not after a night of stylizing
        output_files.check(output, "-o", {video: "the source video"}, force)
    options = _stylize_options(temporal, no_temporal, kw)
    name = ctx.invoke(split, video=video, job=job, fmt="png")
    result = stages.stylize(base(ctx), name, options)
    _report(result, stop_on_failed=False)
    if result.counts[Status.FAILED]:
        retry = stages.stylize(base(ctx), name, _retry_options(options), retry_failed=True)
        _report(retry, stop_on_failed=False)
        if retry.counts[Status.FAILED] and fill == "fail":
            click.echo(f"job {name}: {retry.counts[Status.FAILED]} frames still failed after one retry: see "
                       "`vpipe status`; `vpipe run` again retries them, or add --fill original to use the source frames")
            sys.exit(1)
    ctx.invoke(assemble, job=name, output=output, crf=crf, fill=fill, codec=None, frames_out=None, force=force)
