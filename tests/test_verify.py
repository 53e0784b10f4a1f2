"""`vpipe verify [--fix]`: a done frame whose file is missing, truncated, garbled, of the wrong size or
not the one recorded is found, listed, and with --fix goes back to pending and is made again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from pipeline.manifest import Manifest, Status
from pipeline.verify import check_data
from tests.helpers import make_clip


def styled_job(tmp_path: Path, vpipe: Callable[..., Result], fmt: str) -> Path:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.4)  # 12 frames, 64x48
    assert vpipe("split", str(clip), "--job", "v", "--format", fmt).exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick")
    result = vpipe("stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"))
    assert result.exit_code == 0, result.output
    return tmp_path / "jobs" / "v"


def encoded(image: np.ndarray, ext: str) -> bytes:
    return cv2.imencode("." + ext, image)[1].tobytes()


def test_verify_finds_each_kind_of_damage_and_fix_makes_them_again(
        tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    job = styled_job(tmp_path, vpipe, "png")
    styled = job / "styled"
    clean = vpipe("verify")
    assert clean.exit_code == 0, clean.output
    assert "12 done frames checked: 12 good, 0 bad" in clean.output

    def damage(i: int, change: Callable[[bytes], bytes]) -> None:
        path = styled / f"{i:06d}.png"
        path.write_bytes(change(path.read_bytes()))

    damage(2, lambda d: d[: len(d) // 2])  # truncated
    damage(4, lambda d: d[:60] + bytes(b ^ 0x5A for b in d[60:200]) + d[200:])  # garbled
    (styled / "000006.png").unlink()  # missing
    damage(8, lambda d: encoded(np.zeros((32, 32, 3), np.uint8), "png"))  # a whole image of another size
    damage(10, lambda d: encoded(np.full((48, 64, 3), 7, np.uint8), "png"))  # right size, not the recorded one
    untouched = {p.name: p.stat().st_mtime_ns for p in styled.iterdir()
                 if p.name not in {"000002.png", "000004.png", "000008.png", "000010.png"}}

    found = vpipe("verify")
    assert found.exit_code == 1, found.output
    assert "Traceback" not in found.output
    assert "12 done frames checked: 7 good, 5 bad" in found.output
    lines = {int(line.split()[0]): line for line in found.output.splitlines() if line.startswith("  ")}
    assert sorted(lines) == [2, 4, 6, 8, 10]
    assert "does not decode" in lines[2] and "does not decode" in lines[4]
    assert "missing" in lines[6] and "is 32x32, the job's frames are 64x48" in lines[8]
    assert "recorded hash" in lines[10]
    assert "verify --fix" in found.output
    m = Manifest.open(job / "manifest.sqlite")
    assert m.counts()[Status.DONE] == 12  # plain verify changes nothing
    m.close()

    fixed = vpipe("verify", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert "put 5 frames back to pending" in fixed.output
    m = Manifest.open(job / "manifest.sqlite")
    assert m.frames(Status.PENDING) == [2, 4, 6, 8, 10]
    m.close()
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        reasons = dict(conn.execute("SELECT idx, message FROM events WHERE event='reset'").fetchall())
    assert sorted(reasons) == [2, 4, 6, 8, 10] and reasons[6] == "verify: file missing"
    assert not any((styled / f"{i:06d}.png").exists() for i in (2, 4, 8, 10))  # bad files removed

    remade = vpipe("stylize")
    assert remade.exit_code == 0 and "5 frames styled" in remade.output, remade.output
    assert {p.name: p.stat().st_mtime_ns for p in styled.iterdir() if p.name in untouched} == untouched
    again = vpipe("verify")
    assert again.exit_code == 0 and "12 good, 0 bad" in again.output, again.output


def test_a_garbled_jpeg_still_decodes_but_the_hash_catches_it(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    job = styled_job(tmp_path, vpipe, "jpg")
    path = job / "styled" / "000003.jpg"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 8):  # flip bits in the scan data; never make a 0xFF marker byte
        data[i] ^= 0x01 if data[i] < 0xFE else 0
    path.write_bytes(bytes(data))
    assert cv2.imread(str(path)) is not None  # JPEG has no checksum: it decodes, with wrong pixels
    found = vpipe("verify")
    assert found.exit_code == 1
    assert "000003.jpg  content differs from the recorded hash" in found.output


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "empty file"),
    (b"\x89PNG\r\n\x1a\nnot really", "does not decode"),
    (encoded(np.zeros((4, 6, 3), np.uint8), "png"), "is 6x4"),
])
def test_check_data(data: bytes, problem: str) -> None:
    assert problem in (check_data(data, (64, 48), None) or "")


def test_check_data_good() -> None:
    from pipeline.storage import digest

    data = encoded(np.zeros((48, 64, 3), np.uint8), "png")
    assert check_data(data, (64, 48), digest(data)) is None
    assert check_data(data, (64, 48), None) is None
    assert "hash" in (check_data(data, (64, 48), "0" * 64) or "")
