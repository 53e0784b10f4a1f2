"""Disk space: split and stylize refuse up front, with the figures and a hint, when the frames would not
fit; nothing is written then; `status` shows what a job takes. Free space is injected (VPIPE_FREE_SPACE)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

from pipeline import disk
from tests.helpers import make_clip


def test_per_frame_size_follows_the_format() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    assert disk.per_frame([frame], "png") > disk.per_frame([frame], "jpg") > 0


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
