"""Bad input, as tables. Each refusal is one clear line, exit code 2 for a usage error and 1 for a
runtime error, never a traceback, and nothing already made is lost. Inputs that only look odd
(one frame, odd sizes, 10-bit, 4:4:4, rotation, spaces and non-ASCII in paths) must simply work."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pipeline import video
from tests.helpers import FIXTURES, ROOT, make_clip, one_line_error, write_model


def ffmpeg(*args: str) -> None:
    subprocess.run([video.tools().ffmpeg, "-nostdin", "-v", "error", "-y", *args], check=True)


def synthetic(path: Path, *encode: str, size: str = "64x48", frames: int = 6) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate=30", "-frames:v", str(frames), *encode, str(path))
    return path


# ---------------------------------------------------------------- split: files that are not a usable video


def missing(tmp: Path) -> Path:
    return tmp / "missing.mp4"


def a_directory(tmp: Path) -> Path:
    (tmp / "folder.mp4").mkdir()
    return tmp / "folder.mp4"


def empty(tmp: Path) -> Path:
    (tmp / "empty.mp4").touch()
    return tmp / "empty.mp4"


def text_named_mp4(tmp: Path) -> Path:
    (tmp / "notes.mp4").write_text("this is not a video\n")
    return tmp / "notes.mp4"


def truncated_mp4(tmp: Path) -> Path:
    """The index (moov) of a plain mp4 sits at its end: cut in half, nothing can be found."""
    whole = make_clip(tmp / "whole.mp4", seconds=1.0).read_bytes()
    (tmp / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    return tmp / "truncated.mp4"


def audio_only(tmp: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "sine", "-t", "0.5", str(tmp / "sound.m4a"))
    return tmp / "sound.m4a"


def still_image(tmp: Path) -> Path:
    return synthetic(tmp / "still.png", frames=1)


@pytest.mark.parametrize(("make", "code", "words"), [
    (missing, 2, ["missing.mp4: no such file"]),
    (a_directory, 2, ["is a folder"]),
    (empty, 1, ["empty.mp4 is empty"]),
    (text_named_mp4, 1, ["cannot read notes.mp4 as a video"]),
    (truncated_mp4, 1, ["cannot read truncated.mp4 as a video (not a video, or damaged or truncated)"]),
    (audio_only, 1, ["sound.m4a: no video stream"]),
    (still_image, 1, ["still.png is a still image"]),
])
def test_split_refuses(tmp_path: Path, vpipe: Callable[..., Result], make: Callable[[Path], Path], code: int,
                       words: list[str]) -> None:
    one_line_error(vpipe("split", str(make(tmp_path))), code, *words)
    jobs = tmp_path / "jobs"
    assert not jobs.exists() or not list(jobs.glob("*/manifest.sqlite"))
    assert not jobs.exists() or not list(jobs.glob("*/frames*"))


@pytest.mark.parametrize(("job", "words"), [("../x", ["'../x' is not allowed"]), ("a/b", ["not allowed"]),
                                            (".hidden", ["not allowed"]), ("x" * 65, ["at most 64"])])
def test_bad_job_names_are_refused(tmp_path: Path, vpipe: Callable[..., Result], job: str, words: list[str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.1)
    for command in (["split", str(clip)], ["stylize"], ["assemble"], ["status"], ["verify"]):
        one_line_error(vpipe(*command, "--job", job), 2, *words)
    assert not (tmp_path / "x").exists() and not (tmp_path / "jobs").exists()


def test_an_unwritable_jobs_folder(tmp_path: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.1)
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("VPIPE_JOBS_DIR", str(tmp_path / "a-file" / "jobs"))  # cannot be created
    one_line_error(vpipe("split", str(clip)), 1, "cannot create the jobs folder")
    if os.geteuid() == 0:
        return  # root writes into read-only folders: the chmod case below cannot happen
    locked = tmp_path / "read-only"
    locked.mkdir(mode=0o555)
    monkeypatch.setenv("VPIPE_JOBS_DIR", str(locked))
    one_line_error(vpipe("split", str(clip)), 1, "is not writable")


# ---------------------------------------------------------------- split + stylize + assemble: inputs that work


def one_frame(tmp: Path) -> Path:
    return synthetic(tmp / "one.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p", frames=1)


def odd_size(tmp: Path) -> Path:
    return synthetic(tmp / "odd.mp4", "-c:v", "libx264", "-pix_fmt", "yuv444p", size="67x45")


def ten_bit(tmp: Path) -> Path:
    return synthetic(tmp / "ten.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p10le")


def full_chroma(tmp: Path) -> Path:
    return synthetic(tmp / "444.mp4", "-c:v", "libx264", "-pix_fmt", "yuv444p")


def rotated_phone(tmp: Path) -> Path:
    plain = synthetic(tmp / "plain.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p")
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(tmp / "phone.mp4"))
    return tmp / "phone.mp4"


def truncated_but_indexed(tmp: Path) -> Path:
    """moov first (faststart): half a file still holds the first frames: split keeps them and says so."""
    whole = make_clip(tmp / "whole.mp4", size="160x120", seconds=2.0, audio=0,
                      extra=("-movflags", "+faststart")).read_bytes()
    (tmp / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    return tmp / "cut.mp4"


def odd_path(tmp: Path) -> Path:
    folder = tmp / "my clips ünï 名前"
    folder.mkdir()
    return synthetic(folder / "holiday 2024 ✓ (final).mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p")


@pytest.mark.parametrize(("make", "frames", "size", "note"), [
    (one_frame, 1, (64, 48), None),
    (odd_size, 6, (67, 45), None),
    (ten_bit, 6, (64, 48), None),
    (full_chroma, 6, (64, 48), None),
    (rotated_phone, 6, (48, 64), None),
    (truncated_but_indexed, None, (160, 120), "truncated"),
    (odd_path, 6, (64, 48), None),
])
def test_these_inputs_work(tmp_path: Path, vpipe: Callable[..., Result], make: Callable[[Path], Path],
                           frames: int | None, size: tuple[int, int], note: str | None) -> None:
    source = make(tmp_path)
    jobs = tmp_path / "100% jöbs dir"  # spaces, non-ASCII and a '%' (a pattern character to ffmpeg) in the jobs path
    (tmp_path / "model.bin").write_bytes(b"quick")
    split = vpipe("--jobs-dir", str(jobs), "split", str(source))
    assert split.exit_code == 0, split.output
    assert (note or "") in split.output
    styled = vpipe("--jobs-dir", str(jobs), "stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"))
    assert styled.exit_code == 0, styled.output
    out = tmp_path / "out ünï.mp4"
    assembled = vpipe("--jobs-dir", str(jobs), "assemble", "-o", str(out))
    assert assembled.exit_code == 0, assembled.output
    info, src = video.probe(out), video.probe(source)
    assert info.display_size == src.display_size == size
    assert info.rotation == src.rotation
    assert Fraction(info.rate) == Fraction(src.rate)
    count = video.count_frames(out)
    assert count == frames if frames else 1 < count < 60  # a truncated source keeps its first frames
    job = next(p for p in jobs.iterdir() if p.is_dir())
    assert len(list((job / "styled").iterdir())) == count


# ---------------------------------------------------------------- arguments against a job that has work done

@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A job with 6 frames, 1-3 styled, made once: each test below gets a copy."""
    root = tmp_path_factory.mktemp("template")
    clip = make_clip(root / "clip.mp4", seconds=0.2)
    (root / "model.bin").write_bytes(b"quick")
    env = {"VPIPE_JOBS_DIR": str(root / "jobs"), "VPIPE_ENGINES": "posterize=quick_engines:load",
           "PYTHONPATH": os.pathsep.join([str(FIXTURES), str(ROOT)]), "VPIPE_FAULTS": None}
    from pipeline.cli import main

    for args in (["split", str(clip), "--job", "j"],
                 ["stylize", "--engine", "posterize", "--style", str(root / "model.bin"), "--range", "1-3"]):
        result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture()
def job(template: Path, tmp_path: Path, env: dict[str, str]) -> Path:
    shutil.copytree(template / "jobs", tmp_path / "jobs")
    return tmp_path / "jobs" / "j"


def snapshot(job: Path) -> dict[str, Any]:
    """What must never change when a command is refused: frame states and every frame file."""
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        rows = conn.execute("SELECT idx, status, attempts, output_hash FROM frames ORDER BY idx").fetchall()
    files = {str(p.relative_to(job)): (p.stat().st_ino, p.stat().st_mtime_ns)
             for folder in ("frames", "styled") if (job / folder).is_dir() for p in (job / folder).iterdir()}
    return {"frames": rows, "files": files}


def model_of_wrong_shape(tmp: Path) -> Path:
    model = write_model(tmp / "wrong-shape", channels=(8, 16, 32))
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["Variable_3"]["shape"] = [3, 3, 16, 8]  # same byte count; the channels no longer chain
    (model / "manifest.json").write_text(json.dumps(manifest))
    return model


def corrupt_model(tmp: Path) -> Path:
    model = write_model(tmp / "corrupt", channels=(8, 16, 32))
    data = (model / "Variable_7").read_bytes()
    (model / "Variable_7").write_bytes(data[: len(data) // 2])  # a download cut short
    return model


@pytest.mark.parametrize(("make", "words"), [
    (corrupt_model, ["could not be loaded", "variable_7 has 64 bytes, expected 128"]),
    (model_of_wrong_shape, ["could not be loaded", "variable_3 has shape [3, 3, 16, 8], expected 8 input channels"]),
])
def test_a_broken_model_stops_the_run_and_spends_no_attempt(tmp_path: Path, vpipe: Callable[..., Result],
                                                            make: Callable[[Path], Path], words: list[str]) -> None:
    """The real fast engine, in its worker: the weights are checked before any frame is touched."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.1)
    assert vpipe("split", str(clip), "--job", "m").exit_code == 0
    one_line_error(vpipe("stylize", "--engine", "fast", "--style", str(make(tmp_path))), 1, *words)
    with sqlite3.connect(tmp_path / "jobs" / "m" / "manifest.sqlite") as conn:
        assert conn.execute("SELECT DISTINCT status, attempts FROM frames").fetchall() == [("pending", 0)]


def style_image(tmp: Path, name: str, data: bytes | None) -> str:
    if data is not None:
        (tmp / name).write_bytes(data)
    return str(tmp / name)


ARGS: list[tuple[str, Callable[[Path], list[str]], int, list[str]]] = [
    ("range 0-5", lambda t: ["stylize", "--range", "0-5"], 2, ["numbered from 1"]),
    ("range 10-5", lambda t: ["stylize", "--range", "10-5"], 2, ["end comes before the start"]),
    ("range abc", lambda t: ["stylize", "--range", "abc"], 2, ["'abc' is not of the form a-b"]),
    ("range beyond", lambda t: ["stylize", "--range", "2-500"], 2, ["beyond the last frame (6)"]),
    ("chunk 0", lambda t: ["stylize", "--chunk", "0"], 2, ["--chunk", "0 is not in the range"]),
    ("chunk -3", lambda t: ["stylize", "--chunk", "-3"], 2, ["--chunk"]),
    ("workers 0", lambda t: ["stylize", "--workers", "0"], 2, ["--workers"]),
    ("max-attempts 0", lambda t: ["retry-failed", "--max-attempts", "0"], 2, ["--max-attempts"]),
    ("frame-timeout 0", lambda t: ["stylize", "--frame-timeout", "0"], 2, ["--frame-timeout"]),
    ("load-timeout 0", lambda t: ["stylize", "--load-timeout", "0"], 2, ["--load-timeout"]),
    ("max-side 8", lambda t: ["stylize", "--max-side", "8"], 2, ["--max-side"]),
    ("unknown option", lambda t: ["stylize", "--colour", "red"], 2, ["no such option", "--help"]),
    ("missing style image", lambda t: ["stylize", "--style", str(t / "starry.jpg")], 2, ["starry.jpg", "no such file"]),
    ("corrupt style image", lambda t: ["stylize", "--style", style_image(t, "bad.jpg", b"\xff\xd8 not really")], 1,
     ["bad.jpg: not a readable image"]),
    ("image for a model engine", lambda t: ["stylize", "--engine", "fast", "--style", style_image(t, "ok.png", synthetic(
        t / "ok.png", frames=1).read_bytes())], 2, ["ok.png is an image", "needs a trained model"]),
    ("unknown style", lambda t: ["stylize", "--style", "no-such-style"], 2, ["unknown style 'no-such-style'"]),
    ("missing model path", lambda t: ["stylize", "--style", "/no/such/model"], 2, ["no such file"]),
    ("unknown engine", lambda t: ["stylize", "--engine", "nope", "--style", "."], 2, ["unknown engine 'nope'"]),
    ("other settings", lambda t: ["stylize", "--engine", "posterize", "--style", style_image(t, "m2.bin", b"other")], 2,
     ["3 frames styled with other settings", "--restart"]),
    ("no such job", lambda t: ["stylize", "--job", "other"], 2, ["no job named 'other'"]),
    ("assemble unknown container", lambda t: ["assemble", "-o", str(t / "out.avi")], 2, ["out.avi", ".mp4"]),
    ("assemble into a missing folder", lambda t: ["assemble", "-o", str(t / "nope" / "out.mp4")], 2, ["does not exist"]),
    ("assemble crf 99", lambda t: ["assemble", "--crf", "99"], 2, ["--crf"]),
    ("assemble with frames missing", lambda t: ["assemble"], 1, ["3 of 6 frames are not styled yet (4-6)"]),
    ("split another video into the job", lambda t: ["split", str(make_clip(t / "other.mp4", size="32x32",
                                                                            seconds=0.1)), "--job", "j"], 2,
     ["already holds another video"]),
]


@pytest.mark.parametrize(("name", "args", "code", "words"), ARGS, ids=[a[0] for a in ARGS])
def test_refused_arguments_lose_nothing(tmp_path: Path, job: Path, vpipe: Callable[..., Result], name: str,
                                        args: Callable[[Path], list[str]], code: int, words: list[str]) -> None:
    before = snapshot(job)
    one_line_error(vpipe(*args(tmp_path)), code, *words)
    assert snapshot(job) == before


# ---------------------------------------------------------------- jobs in a bad state

def delete_frames(job: Path) -> None:
    shutil.rmtree(job / "frames")


def newer_manifest(job: Path) -> None:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")


def garbage_manifest(job: Path) -> None:
    (job / "manifest.sqlite").write_bytes(b"not a database, just bytes" * 100)


STATES: list[tuple[str, Callable[[Path], None], list[str], int, list[str]]] = [
    ("frames deleted: stylize", delete_frames, ["stylize"], 1, ["frames folder", "is missing"]),
    ("frames deleted: split again", delete_frames, ["split", "{clip}", "--job", "j"], 1, ["was deleted"]),
    ("frames deleted: fill from them", delete_frames, ["assemble", "--fill", "original"], 1,
     ["3 frames are not styled and the frames folder"]),
    ("newer manifest: status", newer_manifest, ["status"], 1, ["schema version 99", "upgrade vpipe"]),
    ("newer manifest: stylize", newer_manifest, ["stylize"], 1, ["schema version 99"]),
    ("newer manifest: assemble", newer_manifest, ["assemble", "--fill", "original"], 1, ["schema version 99"]),
    ("newer manifest: verify", newer_manifest, ["verify"], 1, ["schema version 99"]),
    ("garbage manifest", garbage_manifest, ["status"], 1, ["is damaged"]),
]


@pytest.mark.parametrize(("name", "damage", "args", "code", "words"), STATES, ids=[s[0] for s in STATES])
def test_jobs_in_a_bad_state(template: Path, job: Path, vpipe: Callable[..., Result], name: str,
                             damage: Callable[[Path], None], args: list[str], code: int, words: list[str]) -> None:
    damage(job)
    styled = {p.name: p.stat().st_mtime_ns for p in (job / "styled").iterdir()}
    one_line_error(vpipe(*[a.replace("{clip}", str(template / "clip.mp4")) for a in args]), code, *words)
    assert {p.name: p.stat().st_mtime_ns for p in (job / "styled").iterdir()} == styled
    assert not (job / "output.mp4").exists()


def test_no_jobs_yet(vpipe: Callable[..., Result]) -> None:
    for command in ("status", "stylize", "assemble", "verify", "retry-failed"):
        one_line_error(vpipe(command), 2, "no jobs in", "vpipe split")
