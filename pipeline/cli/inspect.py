"""`vpipe status | metrics | verify | doctor`: read a job (or the machine) and report."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from .. import disk
from .. import doctor as doctor_module
from .. import preview as preview_module
from .. import status as status_module
from .. import verify as verify_stage
from ..errors import UsageError
from ..frames import FrameRange
from ..logs import format_seconds
from ..manifest import Status
from .app import base
from .params import RangeType


@click.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.pass_context
def status(ctx: click.Context, job: str | None) -> None:
    """Counts by status, failed frames with reasons, throughput and ETA (read-only)."""
    report = status_module.status(base(ctx), job)
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
    click.echo("disk: " + ", ".join(f"{name} {disk.human(size)}" for name, size in report.disk.items())
               + f"; {disk.human(disk.free(report.job.styled_dir))} free")
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


@click.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.option("--range", "frames", type=RangeType(), help="Frames A-B (default all done frames).")
@click.option("--style-image", type=click.Path(dir_okay=False, path_type=Path),
              help="Painting to measure the style loss against (default: the job's style image).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def metrics(ctx: click.Context, job: str | None, frames: FrameRange | None, style_image: Path | None,
            as_json: bool) -> None:
    """Flicker (warping error), style kept (Gram distance) and structure kept of the styled frames."""
    from .. import metrics as measuring

    if style_image is not None and not style_image.is_file():
        raise UsageError(f"--style-image {style_image}: no such file")
    report = measuring.measure(base(ctx), job, frames, style_image)
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
    click.echo(f"  structure kept: {cell(report.structure)} (outlines of styled vs source frames correlated; 1 keeps "
               "every outline, a blobby frame scores low)")


@click.command()
@click.option("--job", help="Job name (default: the only job, else the last one split).")
@click.option("--fix", is_flag=True, help="Put bad frames back to pending (and remove their files).")
@click.pass_context
def verify(ctx: click.Context, job: str | None, fix: bool) -> None:
    """Check that every done frame's file decodes, has the job's size and its recorded hash."""
    report = verify_stage.verify(base(ctx), job, fix)
    for line in verify_stage.report_lines(report):
        click.echo(line)
    if report.bad and not fix:
        sys.exit(1)


@click.command()
def doctor() -> None:
    """Which ffmpeg, TensorFlow, devices and model folders vpipe uses here."""
    for key, value in doctor_module.doctor():
        click.echo(f"{key:<18} {value}")


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--style", "names", multiple=True, required=True,
              help="A style to show (repeatable): a name from `vpipe styles`, a model path or a painting.")
@click.option("--frames", "count", type=click.IntRange(1, 12), default=preview_module.FRAMES, show_default=True,
              help="Frames spread over the video.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("preview.png"),
              show_default=True, help="The sheet (PNG).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
def preview(video: Path, names: tuple[str, ...], count: int, output: Path, force: bool) -> None:
    """How styles look on your own VIDEO: a few frames stylized by each style, with its painting, in one PNG."""
    result = preview_module.preview(video, list(names), output, count, force)
    at = ", ".join(f"{t:g}" for t in result.frames)
    click.echo(f"{len(result.styles)} styles on {len(result.frames)} frames (at {at} s): {result.path}")
