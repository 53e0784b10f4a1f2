"""Disk space: split and stylize refuse up front, with the figures and a hint, when the frames would not
fit; nothing is written then; `status` shows what a job takes. Free space is injected (VPIPE_FREE_SPACE)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from pipeline import disk, storage
from tests.helpers import make_clip


def test_per_frame_size_follows_the_format() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    assert disk.per_frame([frame], "png") > disk.per_frame([frame], "jpg") > 0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_no_png_frame_exceeds_the_bound_that_lets_a_check_skip_sampling(dtype: type) -> None:
    size = (97, 31)  # odd sizes: the per-row filter byte counts most in a narrow frame
    noise = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, (size[1], size[0], 3), dtype=dtype)
    worst = len(storage.encode(noise, "png"))  # incompressible
    bound = disk.largest(size, "png")
    assert bound is not None and worst <= bound < 2.1 * worst + 4096  # and not so loose it never helps
    assert disk.largest(size, "jpg") is None  # no bound: sampled


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_frames_decode_to_the_same_pixels(dtype: type, tmp_path: Path) -> None:
    """encode's PNG settings (one row filter, zlib's run-length strategy) trade speed for size, never pixels:
    brush-like texture over flat fields, in 8 and 16 bits, decodes exactly."""
    rng = np.random.default_rng(2)
    image = np.zeros((90, 120, 3), dtype)
    image[:, :60] = np.iinfo(dtype).max // 3  # a flat field: long runs
    image[:, 60:] = rng.integers(0, np.iinfo(dtype).max, (90, 60, 3), dtype=dtype)  # texture: no repeats
    path = tmp_path / "frame.png"
    path.write_bytes(storage.encode(image, "png"))
    decoded = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert decoded.dtype == dtype and np.array_equal(decoded, image)


def test_split_and_stylize_sample_no_frames_when_even_the_largest_fit(
        tmp_path: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    """Sampling costs three seeks and decodes (a third of a short split): skipped where the bound fits."""
    sampled: list[str] = []
    monkeypatch.setattr(disk, "per_frame", lambda *a, **k: sampled.append("x") or 1.0)
    clip = make_clip(tmp_path / "clip.mp4", size="160x120", seconds=0.4)
    monkeypatch.setenv(disk.FREE_ENV, "1G")
    assert vpipe("split", str(clip), "--job", "s").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    args = ["stylize", "--job", "s", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--workers", "1"]
    assert vpipe(*args).exit_code == 0 and not sampled
    monkeypatch.setenv(disk.FREE_ENV, "1M")  # 12 frames of 160x120: 1.7 MB at the bound
    assert vpipe("split", str(clip), "--job", "t").exit_code == 0 and sampled


def test_free_space_can_be_injected_and_falls_back_to_the_nearest_folder(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert disk.free(tmp_path / "not" / "yet") > 0
    monkeypatch.setenv(disk.FREE_ENV, "2M")
    assert disk.free(tmp_path) == 2 << 20


def test_split_refuses_when_its_frames_would_not_fit(tmp_path: Path, vpipe: Callable[..., Result],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="320x240", seconds=1.0)
    monkeypatch.setenv(disk.FREE_ENV, "100K")
    refused = vpipe("split", str(clip), "--job", "d")
    assert refused.exit_code == 3, refused.output
    line = refused.output.strip()
    assert len(line.splitlines()) == 1 and "splitting clip.mp4 needs about" in line and "30 frames" in line
    assert "kB is free" in line and "--format jpg" in line
    assert not (tmp_path / "jobs" / "d").exists()  # nothing written
    monkeypatch.setenv(disk.FREE_ENV, "1G")
    assert vpipe("split", str(clip), "--job", "d").exit_code == 0


def test_stylize_refuses_when_its_styled_frames_would_not_fit_and_status_shows_the_use(
        tmp_path: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="160x120", seconds=0.4)
    assert vpipe("split", str(clip), "--job", "s").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    monkeypatch.setenv(disk.FREE_ENV, "20K")
    args = ["stylize", "--job", "s", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--workers", "1"]
    refused = vpipe(*args)
    assert refused.exit_code == 3 and "stylizing 12 frames needs about" in refused.output
    assert "--format jpg" in refused.output and not list((tmp_path / "jobs" / "s" / "styled").iterdir())
    monkeypatch.setenv(disk.FREE_ENV, "1G")
    assert vpipe(*args).exit_code == 0
    status = vpipe("status", "--job", "s").output
    line = next(x for x in status.splitlines() if x.startswith("disk: "))
    assert "frames " in line and "styled " in line and line.endswith("1.1 GB free")
