"""`vpipe models list|pull|import` and `vpipe styles`: parse, call the store or the sheet, format.

Errors are raised as VpipeError and turned into one line and an exit code by the main group.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import sheet
from ..models import catalogue, importer, lookup, store


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.0f} kB"


@click.group("models")
def models_group() -> None:
    """The model store: what is known and present, download, import local copies."""


@models_group.command("list")
@click.option("--verify", is_flag=True, help="Check every present file against its published checksum.")
def list_models(verify: bool) -> None:
    """Known models: present or not, where, and their size."""
    click.echo(f"search path: {' then '.join(str(p) for p in lookup.search_path())}")
    for found in store.listing(verify):
        entry = found.entry
        size = _size(found.size) if found.where else f"~{_size(entry.size)}"
        click.echo(f"{entry.name:<28} {found.state:<12} {size:>9}  {entry.what}")
        hint = str(found.where) if found.where else f"get it: vpipe models pull {entry.name}"
        click.echo(f"{'':<28} {'':<12} {'':>9}  {hint}")
        click.echo(f"{'':<28} {'':<12} {'':>9}  {catalogue.licence_line(entry)}")


@models_group.command("pull")
@click.argument("name")
def pull(name: str) -> None:
    """Download NAME from its canonical URL into the cache, checksum verified."""
    result = store.pull(name)
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.already:
        click.echo(f"{result.name}: already present and verified at {result.path}")
    else:
        click.echo(f"{result.name}: {result.copied} files downloaded and verified into {result.path}")


@models_group.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", help="Model name (a catalogue name, or your own, e.g. my_models/candy; a .t7 defaults to its stem).")
@click.option("--force", is_flag=True, help="Replace a model of your own that has this name.")
def import_(path: Path, name: str | None, force: bool) -> None:
    """Copy a local model file or folder into the cache (verified when the catalogue knows it).

    A Torch7 fast-neural-style model (x.t7) is converted into a fast-engine model folder."""
    result = importer.import_model(path, name, force)
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"{result.name}: {result.copied} files imported into {result.path}")


@click.command("styles")
@click.option("--sheet", "sheet_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a contact sheet PNG: each style's painting and a sample frame in that style.")
@click.option("--sample", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The frame to show each style on (default: a synthetic landscape).")
@click.option("--force", is_flag=True, help="Replace an existing --sheet file.")
def styles_command(sheet_path: Path | None, sample: Path | None, force: bool) -> None:
    """The styles in styles/: engine, model, whether it is present, painting."""
    rows = sheet.rows()
    click.echo(f"{'NAME':<18} {'ENGINE':<10} {'PRESENT':<8} MODEL / REFERENCE")
    for row in rows:
        click.echo(f"{row.name:<18} {row.engine:<10} {'yes' if row.present else 'no':<8} {row.model}")
        if row.reference != "-":
            click.echo(f"{'':<18} {'':<10} {'':<8} painting: {row.reference}")
        click.echo(f"{'':<18} {'':<10} {'':<8} {row.licence}")
    if not rows:
        click.echo(f"(no styles in {sheet.styles.styles_dir()})")
    if sheet_path:
        count = sheet.sheet(sheet_path, sample, force)
        click.echo(f"contact sheet of {count} styles: {sheet_path}")
