"""The CLI's everyday behaviour: job choice, settings changes, retry-failed, doctor. (Bad input: test_bad_input.py.)"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.helpers import make_clip, one_line_error, write_model


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", seconds=0.2)


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


def test_restart_with_a_model_that_does_not_load_discards_nothing(tmp_path: Path, vpipe: Callable[..., Result],
                                                                   clip: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(b"model a")
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "manifest.json").write_text("{}")
    assert vpipe("split", str(clip)).exit_code == 0
    assert vpipe("stylize", "--engine", "posterize", "--style", str(a), "--range", "1-3").exit_code == 0
    styled = sorted(p.name for p in (tmp_path / "jobs" / "clip" / "styled").iterdir())
    refused = vpipe("stylize", "--engine", "fast", "--style", str(broken), "--restart")
    one_line_error(refused, 1, "--restart: nothing discarded", "manifest.json lists 0 variables")
    assert sorted(p.name for p in (tmp_path / "jobs" / "clip" / "styled").iterdir()) == styled
    status = vpipe("status")
    assert re.search(r"^\s*done\s+3$", status.output, re.MULTILINE), status.output
    assert vpipe("stylize").exit_code == 0  # the job's own settings still work


def test_doctor_names_ffmpeg_and_model_path(vpipe: Callable[..., Result]) -> None:
    result = vpipe("doctor")
    assert result.exit_code == 0
    assert "ffmpeg" in result.output and "model search path" in result.output and "tensorflow" in result.output
    assert "fast on a CPU" in result.output and " on " in result.output


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


def test_precision_is_a_fast_engine_setting_the_job_keeps(tmp_path: Path, vpipe: Callable[..., Result], clip: Path) -> None:

    from pipeline.manifest import Manifest

    model = write_model(tmp_path / "net", channels=(8, 16, 32))
    assert vpipe("split", str(clip), "--job", "p").exit_code == 0
    refused = vpipe("stylize", "--engine", "posterize", "--style", str(model / "manifest.json"), "--precision", "bf16")
    one_line_error(refused, 2, "--precision: only for the fast engine")
    done = vpipe("stylize", "--engine", "fast", "--style", str(model), "--precision", "bf16", "--range", "1-2",
                 "--workers", "1", "--threads", "1")
    assert done.exit_code == 0, done.output
    manifest = Manifest.open(tmp_path / "jobs" / "p" / "manifest.sqlite")
    try:
        assert manifest.meta("settings")["params"] == {"precision": "bf16"}
    finally:
        manifest.close()
    one_line_error(vpipe("stylize", "--precision", "fp32"), 2, "2 frames styled with other settings")
    resumed = vpipe("stylize", "--range", "3-3", "--workers", "1")  # the job's own bf16
    assert resumed.exit_code == 0 and "1 frames styled" in resumed.output
