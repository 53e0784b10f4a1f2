"""Bad input: one clear line, exit 2 for usage errors and 1 for runtime errors, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from conftest import make_clip

from pipeline import video


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", seconds=0.2)


def one_line_error(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines, "no message"
    message = lines[-1].lower()
    for word in words:
        assert word.lower() in message, f"{word!r} not in {message!r}"


def test_split_bad_inputs(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    audio_only = tmp_path / "sound.m4a"
    image = tmp_path / "still.png"
    ff = video.tools().ffmpeg
    import subprocess
    subprocess.run([ff, "-v", "error", "-f", "lavfi", "-i", "sine", "-t", "0.5", str(audio_only)], check=True)
    subprocess.run([ff, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1", str(image)],
                   check=True)
    truncated = tmp_path / "truncated.mp4"
    whole = make_clip(tmp_path / "whole.mp4", seconds=1.0).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 3])
    one_line_error(vpipe("split", str(tmp_path / "missing.mp4")), 2, "no such file")
    one_line_error(vpipe("split", str(tmp_path)), 2, "folder")
    one_line_error(vpipe("split", str(empty)), 1, "empty")
    one_line_error(vpipe("split", str(text)), 1, "notes.mp4")
    one_line_error(vpipe("split", str(audio_only)), 1, "no video stream")
    one_line_error(vpipe("split", str(image)), 1, "still image")
    one_line_error(vpipe("split", str(truncated)), 1, "truncated.mp4")
    one_line_error(vpipe("split", str(text), "--job", "../x"), 2, "not allowed")
    one_line_error(vpipe("split", str(text), "--job", "a/b"), 2, "not allowed")
    assert not (tmp_path / "jobs").exists() or not list((tmp_path / "jobs").glob("*/manifest.sqlite"))


def test_another_video_into_an_existing_job(tmp_path: Path, vpipe: Callable[..., Result], clip: Path) -> None:
    other = make_clip(tmp_path / "other.mp4", size="32x32", seconds=0.2)
    assert vpipe("split", str(clip), "--job", "j").exit_code == 0
    one_line_error(vpipe("split", str(other), "--job", "j"), 2, "already holds another video")


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--range", "0-5"], 2, ["numbered from 1"]),
    (["--range", "10-5"], 2, ["end comes before"]),
    (["--range", "abc"], 2, ["A-B"]),
    (["--range", "2-500"], 2, ["beyond the last frame (6)"]),
    (["--chunk", "0"], 2, ["--chunk"]),
    (["--chunk", "-3"], 2, ["--chunk"]),
    (["--workers", "0"], 2, ["--workers"]),
    (["--style", "no-such-style"], 2, ["unknown style"]),
    (["--style", "/no/such/model"], 2, ["no such file"]),
    (["--engine", "nope", "--style", "."], 2, ["unknown engine"]),
    (["--job", "other"], 2, ["no job named"]),
])
def test_stylize_bad_arguments(vpipe: Callable[..., Result], clip: Path, args: list[str], code: int,
                               words: list[str]) -> None:
    assert vpipe("split", str(clip)).exit_code == 0
    one_line_error(vpipe("stylize", *args), code, *words)


def test_job_state_problems(tmp_path: Path, vpipe: Callable[..., Result], clip: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    one_line_error(vpipe("status"), 2, "no jobs")
    assert vpipe("split", str(clip), "--job", "j").exit_code == 0
    job = tmp_path / "jobs" / "j"
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    one_line_error(vpipe("status"), 1, "newer")
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    (job / "frames").rename(job / "frames.gone")
    one_line_error(vpipe("stylize", "--style", "."), 1, "frames folder")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("VPIPE_JOBS_DIR", str(blocker / "jobs"))
    one_line_error(vpipe("split", str(clip)), 1, "cannot create the jobs folder")


def test_several_jobs_use_the_last_split_and_say_so(tmp_path: Path, vpipe: Callable[..., Result], clip: Path) -> None:
    other = make_clip(tmp_path / "other.mp4", size="32x32", seconds=0.2)
    assert vpipe("split", str(clip), "--job", "first").exit_code == 0
    assert vpipe("split", str(other), "--job", "second").exit_code == 0
    result = vpipe("status")
    assert result.exit_code == 0
    assert "using job 'second'" in result.output


def test_settings_change_is_refused_then_restart_discards(tmp_path: Path, vpipe: Callable[..., Result],
                                                          clip: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"model a")
    b.write_bytes(b"model b")
    assert vpipe("split", str(clip)).exit_code == 0
    assert vpipe("stylize", "--engine", "posterize", "--style", str(a), "--range", "1-3").exit_code == 0
    refused = vpipe("stylize", "--engine", "posterize", "--style", str(b))
    one_line_error(refused, 2, "3 frames styled with other settings", "--restart")
    resumed = vpipe("stylize")  # no --style: the job's own settings
    assert resumed.exit_code == 0 and "3 frames styled" in resumed.output
    restarted = vpipe("stylize", "--engine", "posterize", "--style", str(b), "--restart")
    assert restarted.exit_code == 0 and "discarded 6 styled frames" in restarted.output


def test_doctor_names_ffmpeg_and_model_path(vpipe: Callable[..., Result]) -> None:
    result = vpipe("doctor")
    assert result.exit_code == 0
    assert "ffmpeg" in result.output and "model search path" in result.output and "tensorflow" in result.output


def test_retry_failed_runs_only_the_failed_frames(tmp_path: Path, vpipe: Callable[..., Result], clip: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    model = tmp_path / "m.bin"
    model.write_bytes(b"quick")
    assert vpipe("split", str(clip)).exit_code == 0
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"2": "raise"}, "times": 1, "state": str(tmp_path)}))
    assert vpipe("stylize", "--engine", "posterize", "--style", str(model), "--range", "1-3",
                 "--max-attempts", "1").exit_code == 1
    result = vpipe("retry-failed")
    assert result.exit_code == 0 and "retrying 1 failed frames: 2" in result.output
    status = vpipe("status").output
    assert "done           3" in status and "pending        3" in status  # 4-6 were never asked for


def test_relative_jobs_dir_assembles(tmp_path: Path, vpipe: Callable[..., Result], clip: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VPIPE_JOBS_DIR", "rel-jobs")
    assert vpipe("split", str(clip)).exit_code == 0
    result = vpipe("assemble", "--fill", "original")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rel-jobs/clip/output.mp4").is_file()


def test_temporal_option_takes_an_optional_weight(vpipe: Callable[..., Result], clip: Path, tmp_path: Path) -> None:
    assert vpipe("split", str(clip), "--job", "t").exit_code == 0
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    one_line_error(vpipe("stylize", "--engine", "posterize", "--style", str(model), "--temporal", "abc"), 2,
                   "--temporal 'abc'")

    def settings() -> dict[str, object]:
        with sqlite3.connect(tmp_path / "jobs" / "t" / "manifest.sqlite") as conn:
            return dict(json.loads(conn.execute("SELECT value FROM meta WHERE key='settings'").fetchone()[0]))

    common = ["stylize", "--engine", "posterize", "--style", str(model), "--range", "1-2", "--restart"]
    assert vpipe(*common, "--temporal").exit_code == 0
    assert settings()["temporal"] == {"weight": 0.5}  # a plain engine's default blend
    assert vpipe(*common, "--temporal", "0.8").exit_code == 0
    assert settings()["temporal"] == {"weight": 0.8}
    assert vpipe(*common, "--no-temporal").exit_code == 0
    assert settings()["temporal"] is None
    assert vpipe(*common).exit_code == 0
    assert settings()["temporal"] is None  # off by default for plain engines
