"""`vpipe preview VIDEO --style ...`: frames spread over the user's video, stylized by each style, one PNG."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from pipeline import preview, sheet, storage, video
from tests.helpers import assets_or_skip, make_clip


def test_frames_are_spread_over_the_video() -> None:
    assert preview.spread(10.0, 4) == [1.25, 3.75, 6.25, 8.75]
    assert preview.spread(1.0, 1) == [0.5]


def test_one_frame_at_a_time_is_grabbed_small_and_upright(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="640x360", seconds=1.0)
    frames = video.frames_at(clip, [0.2, 0.8], preview.SIDE)
    assert [f.shape for f in frames] == [(216, 384, 3)] * 2  # at most SIDE on the long side, aspect kept
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 1  # testsrc moves: other times


def test_preview_sheet(tmp_path: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(assets_or_skip("models")))
    clip = make_clip(tmp_path / "my clip.mp4", size="320x180", seconds=2.0)
    painting = assets_or_skip("styles/the_scream.jpg")
    out = tmp_path / "sheet.png"
    result = vpipe("preview", str(clip), "--style", "starry_night", "--style", str(painting), "--frames", "3",
                   "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "2 styles on 3 frames" in result.output and str(out) in result.output
    image = storage.read_rgb(out)
    height = round(sheet.CELL / (320 / 180))
    assert image.shape == (3 * (height + sheet.GAP) - sheet.GAP, sheet.LABEL + 3 * (sheet.CELL + sheet.GAP), 3)

    def cell(band: int, column: int) -> np.ndarray:
        y, x = band * (height + sheet.GAP), sheet.LABEL + sheet.GAP + column * (sheet.CELL + sheet.GAP)
        return image[y:y + height, x:x + sheet.CELL].astype(int)

    source = video.frames_at(clip, preview.spread(video.probe(clip).duration or 0, 3), preview.SIDE)
    for column in range(3):
        fitted = sheet.fit(source[column], sheet.CELL, height).astype(int)
        assert np.abs(cell(0, column) - fitted).mean() < 3  # the top band: the user's own frames
        for band in (1, 2):
            assert np.abs(cell(band, column) - fitted).mean() > 15  # stylized
    scream = image[height + sheet.GAP:, :sheet.LABEL][height + 40:2 * height]
    assert scream.std() > 10  # the painting beside its band
    again = vpipe("preview", str(clip), "--style", "starry_night", "-o", str(out))
    assert again.exit_code == 2 and "add --force" in again.output  # never replaced silently


def test_gatys_runs_at_its_preview_budget_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(assets_or_skip("models")))
    styles_dir = tmp_path / "styles"
    (styles_dir / "oil").mkdir(parents=True)
    (styles_dir / "oil" / "style.toml").write_text('engine = "gatys"\nreference = "p.jpg"\n')
    (styles_dir / "oil" / "p.jpg").write_bytes(assets_or_skip("styles/starry_night.jpg").read_bytes())
    monkeypatch.setenv("VPIPE_STYLES_DIR", str(styles_dir))
    frame = cv2.resize(storage.read_rgb(assets_or_skip("content/chicago.jpg")), (96, 64))
    band, engine = preview.stylized("oil", [frame])
    assert engine == "gatys" and band.caption == ("oil", "engine gatys", "preview: iterations 40")
    assert band.painting is not None and band.cells[0] is not None and band.cells[0].shape == frame.shape
    assert np.abs(band.cells[0].astype(int) - frame.astype(int)).mean() > 5


def test_bad_input_is_one_line(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    missing = vpipe("preview", str(tmp_path / "nope.mp4"), "--style", "starry_night")
    assert missing.exit_code == 2 and "no such video file" in missing.output
    itself = vpipe("preview", str(clip), "--style", "starry_night", "-o", str(clip))
    assert itself.exit_code == 2 and "is the video itself" in itself.output
    unknown = vpipe("preview", str(clip), "--style", "no_such_style", "-o", str(tmp_path / "x.png"))
    assert unknown.exit_code != 0 and "unknown style" in unknown.output
    assert not (tmp_path / "x.png").exists()
