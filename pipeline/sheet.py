"""`vpipe styles`: the styles in styles/, and a contact sheet PNG of them.

Each cell of the sheet shows the style's painting (its `reference`) above a sample frame stylized
by the style itself (engines whose spec says `preview`: fast and arbitrary; gatys is too slow for a
preview and shows only its painting), captioned with the name and engine. The sample is --sample IMAGE or, by default, a
small synthetic landscape drawn here, so the sheet needs no asset. Rendering runs the engines in
this process (TensorFlow is imported only then).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import engines, storage, styles
from .errors import VpipeError

THUMB = 224
CAPTION = 44
PER_ROW = 4


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


def thumbnail(image: np.ndarray | None, note: str = "", size: int = THUMB) -> np.ndarray:
    """`image` fitted into a size x size dark square (letterboxed), or the note on an empty one."""
    cell = np.full((size, size, 3), 40, np.uint8)
    if image is None:
        _text(cell, note or "-", (8, size // 2), 0.45)
        return cell
    h, w = image.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    top, left = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    cell[top:top + small.shape[0], left:left + small.shape[1]] = small
    return cell


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.5) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA)


def compose(cells: list[tuple[str, np.ndarray, np.ndarray]], per_row: int = PER_ROW) -> np.ndarray:
    """Grid of (caption, top thumbnail, bottom thumbnail) cells: a contact sheet, RGB uint8."""
    blocks = []
    for caption, top, bottom in cells:
        label = np.full((CAPTION, THUMB, 3), 20, np.uint8)
        _text(label, caption[:30], (6, 28))
        blocks.append(np.vstack([top, bottom, label]))
    blank = np.full_like(blocks[0], 20) if blocks else np.full((2 * THUMB + CAPTION, THUMB, 3), 20, np.uint8)
    blocks += [blank] * (-len(blocks) % per_row)
    gap = np.full((blank.shape[0], 4, 3), 0, np.uint8)
    lines = [np.hstack([part for b in blocks[i:i + per_row] for part in (b, gap)][:-1])
             for i in range(0, len(blocks), per_row)]
    return np.vstack(lines) if lines else blank


def render(style: styles.Style, sample: np.ndarray) -> np.ndarray | None:
    """The sample stylized by `style` in this process, or None when the engine is not previewed."""
    if not _previewed(style.engine) or style.model is None:
        return None
    options = {**style.params, "threads": 0, "batch": 1}
    if style.image:
        options["style_image"] = str(style.image)
    engine = engines.load(style.engine, style.model, options)
    return engine.stylize([sample])[0]


def _previewed(engine: str) -> bool:
    try:
        return engines.spec_of(engine).preview
    except VpipeError:
        return False


def sheet(out: Path, sample_path: Path | None = None) -> int:
    """Write the contact sheet PNG; returns how many styles it shows."""
    sample = storage.read_rgb(sample_path) if sample_path else sample_frame()
    sample = cv2.resize(sample, None, fx=min(1.0, 384 / max(sample.shape[:2])), fy=min(1.0, 384 / max(sample.shape[:2])),
                        interpolation=cv2.INTER_AREA)
    cells = [("sample frame", thumbnail(None, "painting above, sample below"), thumbnail(sample))]
    for row in rows():
        reference = storage.read_rgb(row.style.reference) if row.style and row.style.reference else None
        styled = None
        note = "model missing" if _previewed(row.engine) else "not previewed"
        if row.style is not None and row.present:
            styled = render(row.style, sample)
        cells.append((f"{row.name} ({row.engine})", thumbnail(reference, "no reference image"), thumbnail(styled, note)))
    data = storage.encode(compose(cells), "png")
    out.parent.mkdir(parents=True, exist_ok=True)
    storage.publish(out, data)
    return len(cells) - 1
