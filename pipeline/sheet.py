"""`vpipe styles`: the styles in styles/, and a contact sheet PNG of them.

Each band of the sheet shows a style's name and painting (its `reference`, where it has one) beside a
sample frame stylized by the style itself (engines whose spec says `preview`: fast and arbitrary; gatys
is too slow here: `vpipe preview` runs it at a reduced budget). The sample is --sample IMAGE or, by default, a
small synthetic landscape drawn here, so the sheet needs no asset. Rendering runs the engines in
this process (TensorFlow is imported only then).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import engines, output, storage, styles
from .engines.base import Engine
from .errors import VpipeError


@dataclass(frozen=True)
class Row:
    name: str
    engine: str
    model: str  # where the model is, or why not
    present: bool
    reference: str
    style: styles.Style | None  # None when the style could not be resolved
    licence: str


def rows() -> list[Row]:
    out = []
    for name in styles.available():
        config = styles.styles_dir() / name / "style.toml"
        try:
            style = styles.from_folder(name, config, None)
        except VpipeError as exc:
            data = _quiet_config(name, config)
            out.append(Row(name, str(data.get("engine", engines.DEFAULT_ENGINE)), str(exc), False,
                           str(data.get("reference", "-")), None, styles.licence(data)))
            continue
        spec = engines.spec_of(style.engine)
        chosen = spec.model_option  # the model is picked by an option when the run starts (gatys: --net)
        model = str(style.model) if style.model else f"(per {spec.option(chosen).flag})" if chosen else "-"
        out.append(Row(name, style.engine, model, style.model is not None or chosen is not None,
                       str(style.reference) if style.reference else "-", style, styles.licence(_quiet_config(name, config))))
    return out


def _quiet_config(name: str, config: Path) -> dict[str, object]:
    try:
        return styles.read_config(name, config)
    except VpipeError:
        return {}


def sample_frame(width: int = 384, height: int = 256) -> np.ndarray:
    """A synthetic landscape (sky, sun, hills, a house, a road): RGB uint8, deterministic."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky = (np.array([70, 130, 210]) * (1 - y) + np.array([230, 200, 170]) * y).astype(np.uint8)
    image = np.ascontiguousarray(np.broadcast_to(sky, (height, width, 3)))
    cv2.circle(image, (int(width * 0.78), int(height * 0.25)), height // 9, (250, 220, 90), -1, cv2.LINE_AA)
    xs = np.arange(width)
    for base, amp, colour in ((0.55, 0.08, (60, 120, 70)), (0.68, 0.05, (90, 160, 80))):
        ridge = (height * (base + amp * np.sin(xs / width * 7 + base * 10))).astype(np.int32)
        pts = np.concatenate([np.stack([xs, ridge], 1), [[width - 1, height - 1], [0, height - 1]]]).astype(np.int32)
        cv2.fillPoly(image, [pts], colour, cv2.LINE_AA)
    hx, hy = int(width * 0.2), int(height * 0.62)
    cv2.rectangle(image, (hx, hy), (hx + 60, hy + 45), (200, 190, 170), -1)
    cv2.fillPoly(image, [np.array([[hx - 8, hy], [hx + 30, hy - 30], [hx + 68, hy]], np.int32)], (160, 50, 40), cv2.LINE_AA)
    cv2.rectangle(image, (hx + 24, hy + 20), (hx + 38, hy + 45), (90, 60, 40), -1)
    road = np.array([[width * 0.45, height], [width * 0.55, height * 0.7], [width * 0.6, height * 0.7], [width * 0.8, height]])
    cv2.fillPoly(image, [road.astype(np.int32)], (120, 115, 110), cv2.LINE_AA)
    grain = np.random.default_rng(0).normal(0, 7, image.shape[:2])[..., None]  # texture, as real footage has
    return np.clip(cv2.GaussianBlur(image.astype(np.float32) + grain, (3, 3), 0), 0, 255).astype(np.uint8)


LABEL = 200  # the left column: a band's caption, and its painting under it where it has one
CELL = 320  # width of each image cell; its height follows the images' aspect
GAP = 4


@dataclass(frozen=True)
class Band:
    """One row of a sheet: a caption (a few short lines), the painting if there is one, and image cells
    (None: a dark cell with `note`)."""

    caption: tuple[str, ...]
    painting: np.ndarray | None
    cells: tuple[np.ndarray | None, ...]
    note: str = ""


def fit(image: np.ndarray, width: int, height: int, fill: int = 40) -> np.ndarray:
    """`image` scaled to fit width x height, centred on a dark background."""
    box = np.full((height, width, 3), fill, np.uint8)
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    top, left = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    box[top:top + small.shape[0], left:left + small.shape[1]] = small
    return box


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.5) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA)


def layout(bands: list[Band], aspect: float) -> np.ndarray:
    """The bands stacked into one RGB image: label column, then the cells at `aspect` (width / height)."""
    columns = max(len(b.cells) for b in bands)
    height = max(round(CELL / aspect), 120)
    rows = []
    for band in bands:
        label = np.full((height, LABEL, 3), 20, np.uint8)
        for i, line in enumerate(band.caption):
            _text(label, line[:26], (6, 20 + 18 * i), 0.45)
        top = 28 + 18 * (len(band.caption) - 1)
        if band.painting is not None and height - top > 24:
            label[top:height - 4, 4:LABEL - 4] = fit(band.painting, LABEL - 8, height - top - 4, fill=20)
        parts = [label]
        for cell in (*band.cells, *[None] * (columns - len(band.cells))):
            image = fit(cell, CELL, height) if cell is not None else np.full((height, CELL, 3), 40, np.uint8)
            if cell is None and band.note:
                _text(image, band.note, (8, height // 2), 0.45)
            parts += [np.zeros((height, GAP, 3), np.uint8), image]
        rows += [np.hstack(parts), np.zeros((GAP, LABEL + columns * (CELL + GAP), 3), np.uint8)]
    return np.vstack(rows[:-1])


def render(style: styles.Style, sample: np.ndarray) -> np.ndarray | None:
    """The sample stylized by `style` in this process, or None when the engine is not previewed."""
    if not _previewed(style.engine) or style.model is None:
        return None
    return load_here(style, style.params).stylize([sample])[0]


def load_here(style: styles.Style, params: dict[str, Any]) -> Engine:
    """The style's engine built in this process (not a worker), with these params: for sheets and previews."""
    assert style.model is not None
    options: dict[str, Any] = {**params, "threads": 0, "batch": 1}
    if style.image:
        options["style_image"] = str(style.image)
    return engines.load(style.engine, style.model, options)


def _previewed(engine: str) -> bool:
    try:
        return engines.spec_of(engine).preview
    except VpipeError:
        return False


def style_files(chosen: list[styles.Style]) -> dict[Path, str]:
    """The files these styles read (paintings, models): never a place for a sheet or a preview."""
    files: dict[Path, str] = {}
    for style in chosen:
        for path, what in ((style.reference, "a style's painting"), (style.image, "a style's painting"),
                           (style.model, "a style's model")):
            if path is not None:
                files[path] = f"{what} ({style.name})"
    return files


def sheet(out: Path, sample_path: Path | None = None, force: bool = False) -> int:
    """Write the contact sheet PNG (a band per style: its painting beside the sample it stylized); returns
    how many styles it shows."""
    listed = rows()
    reads = style_files([row.style for row in listed if row.style is not None])
    output.check(out, "--sheet", {**reads, **({sample_path: "the --sample frame"} if sample_path else {})}, force)
    sample = storage.read_rgb(sample_path) if sample_path else sample_frame()
    bands = [Band(("sample frame",), None, (sample,))]
    for row in listed:
        painting = storage.read_rgb(row.style.reference, side=LABEL) if row.style and row.style.reference else None
        styled = render(row.style, sample) if row.style is not None and row.present else None
        note = "model missing" if not row.present else "not previewed (see vpipe preview)"
        bands.append(Band((row.name, f"engine {row.engine}"), painting, (styled,), note))
    out.parent.mkdir(parents=True, exist_ok=True)
    storage.publish(out, storage.encode(layout(bands, sample.shape[1] / sample.shape[0]), "png"))
    return len(bands) - 1
