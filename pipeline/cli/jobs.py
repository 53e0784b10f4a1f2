"""`vpipe split | stylize | retry-failed | assemble`: the commands that make and change a job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .. import stages
from ..engines import PARAMS as ENGINE_PARAMS
from ..engines.fast.precision import PRECISIONS
from ..logs import format_seconds
from ..manifest import Status
from ..storage import FORMATS
from ..video import CODECS
from .app import base
from .params import RangeType, parse_layers, parse_temporal, with_run_options

GATYS_PARAMS = ENGINE_PARAMS["gatys"]
ARBITRARY_PARAMS = ("strength",)  # on the command line; mode and transfer only in a style.toml
FAST_PARAMS = ENGINE_PARAMS["fast"]


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--job", help="Job name (default: from the file name).")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="Frame files: lossless PNG or faster JPEG.")
@click.pass_context
def split(ctx: click.Context, video: Path, job: str | None, fmt: str) -> None:
    """Decode VIDEO into numbered frames and create a job."""
    result = stages.split(video, base(ctx), job, fmt)
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


@click.command()
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
@click.option("--format", "frame_format", type=click.Choice(FORMATS),
              help="Styled frames' files: png (lossless, default), jpg or webp (smaller).")
@click.option("--quality", type=click.IntRange(1, 100),
              help="jpg/webp quality (default jpg 95, webp 90; webp 100 is lossless).")
@click.pass_context
def stylize(ctx: click.Context, job: str | None, temporal: str | None, no_temporal: bool, **kw: Any) -> None:
    """Stylize pending frames in crash-isolated workers; resumable."""
    params = {k: kw.pop(k) for k in (*GATYS_PARAMS, *ARBITRARY_PARAMS, *FAST_PARAMS)}
    params["content_layers"] = parse_layers(params["content_layers"], weighted=False)
    params["style_layers"] = parse_layers(params["style_layers"], weighted=True)
    options = _run_options(**kw, temporal=parse_temporal(temporal, no_temporal),
                           params={k: v for k, v in params.items() if v is not None})
    _report(stages.stylize(base(ctx), job, options))


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
@click.option("--force", is_flag=True, help="Replace a --frames-out folder that is not empty.")
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
