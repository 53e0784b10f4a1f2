"""The whole flow with the real fast engine: synthetic clips always, the real footage when present."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result

from pipeline import probe, video
from tests.helpers import assets_or_skip, make_clip, write_model


def check_output(path: Path, width: int, height: int, rate: str, frames: int, audio: int) -> probe.VideoInfo:
    info = video.probe(path)
    assert info.display_size == (width, height)
    assert Fraction(info.rate) == Fraction(rate)
    assert video.count_frames(path) == frames
    assert len(info.audio) == audio
    return info


@pytest.mark.parametrize(("size", "audio", "rotate"), [("64x48", 1, None), ("67x45", 0, None),
                                                        ("64x48", 2, "90")])
def test_synthetic_clip_end_to_end(tmp_path: Path, vpipe: Callable[..., Result], size: str, audio: int,
                                   rotate: str | None) -> None:
    clip = make_clip(tmp_path / "in put é.mp4", size=size, seconds=0.5, audio=audio)
    if rotate:
        rotated = tmp_path / "rotated.mp4"
        subprocess.run([video.tools().ffmpeg, "-v", "error", "-display_rotation", rotate, "-i", str(clip),
                        "-map", "0", "-c", "copy", str(rotated)], check=True)
        clip = rotated
    model = write_model(tmp_path / "model", channels=(8, 16, 32))
    result = vpipe("split", str(clip))
    assert result.exit_code == 0, result.output
    assert vpipe("split", str(clip)).output.count("already split") == 1  # re-running is a no-op
    result = vpipe("stylize", "--style", str(model), "--chunk", "6")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out.mp4"
    result = vpipe("assemble", "-o", str(out))
    assert result.exit_code == 0, result.output
    src = video.probe(clip)
    info = check_output(out, *src.display_size, rate="30000/1001", frames=15, audio=audio)
    assert info.rotation == src.rotation
    assert (info.width, info.height) == (src.width, src.height)


def test_real_footage_with_audio(tmp_path: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    clip = assets_or_skip("video/slow_traffic_small.mp4")
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(assets_or_skip("models")))
    assert vpipe("split", str(clip), "--job", "traffic").exit_code == 0
    result = vpipe("stylize", "--style", "wave", "--range", "100-129", "--chunk", "10", "--max-side", "192")
    assert result.exit_code == 0, result.output
    styled = cv2.imread(str(tmp_path / "jobs/traffic/styled/000110.png"))
    source = cv2.imread(str(tmp_path / "jobs/traffic/frames/000110.png"))
    assert styled.shape == source.shape == (360, 640, 3)
    assert np.abs(styled.astype(int) - source.astype(int)).mean() > 20  # visibly stylized
    failing = vpipe("assemble")
    assert failing.exit_code == 1 and "1-99, 130-914" in failing.output and "retry-failed" in failing.output
    result = vpipe("assemble", "--fill", "original")
    assert result.exit_code == 0, result.output
    assert "884 missing frames filled" in result.output
    out = tmp_path / "jobs/traffic/output.mp4"
    info = check_output(out, 640, 360, "30000/1001", 914, audio=1)
    assert info.audio[0].codec == "aac"
    assert abs((info.duration or 0) - 914 * 1001 / 30000) < 2 * 1001 / 30000


def test_coordinator_never_imports_tensorflow(tmp_path: Path, env: dict[str, str]) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    model = write_model(tmp_path / "model", channels=(8, 16, 32))
    code = ("import sys; from click.testing import CliRunner; from pipeline.cli import main; "
            f"r = CliRunner().invoke(main, ['split', {str(clip)!r}]); assert r.exit_code == 0, r.output; "
            f"r = CliRunner().invoke(main, ['stylize', '--style', {str(model)!r}]); assert r.exit_code == 0, r.output; "
            "assert 'tensorflow' not in sys.modules, 'the coordinator imported tensorflow'")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_variable_frame_rate_becomes_constant_at_the_average_rate(tmp_path: Path, vpipe: Callable[..., Result]) -> None:
    vfr = tmp_path / "vfr.mp4"  # 15 frames at 30 fps, then 15 at 10 fps: 1.8 s, average 50/3 fps
    subprocess.run([video.tools().ffmpeg, "-v", "error", "-f", "lavfi", "-t", "1", "-i", "testsrc=size=64x48:rate=30",
                    "-vf", "setpts='if(lt(N,15),N/30,0.5+(N-15)/10)/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(vfr)], check=True)
    result = vpipe("split", str(vfr))
    assert result.exit_code == 0, result.output
    assert "variable frame rate" in result.output
    frames = len(list((tmp_path / "jobs/vfr/frames").glob("*.png")))
    assert abs(frames - 30) <= 1
    result = vpipe("assemble", "--fill", "original", "-o", str(tmp_path / "out.mp4"))
    assert result.exit_code == 0, result.output
    out = video.probe(tmp_path / "out.mp4")
    assert Fraction(out.rate) == Fraction(50, 3)
    assert abs((out.duration or 0) - 1.8) <= 3 / 50


def test_real_tensorflow_worker_killed_mid_chunk(tmp_path: Path, vpipe: Callable[..., Result],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The real fast engine in its worker: SIGKILL on frame 4 fails only frame 4; a fresh worker
    (a fresh TensorFlow) finishes the chunk; retry-failed completes the job."""
    import json

    clip = make_clip(tmp_path / "clip.mp4", seconds=0.3)  # 9 frames
    model = write_model(tmp_path / "model", channels=(8, 16, 32))
    assert vpipe("split", str(clip)).exit_code == 0
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"4": "sigkill"}, "times": 1, "state": str(state)}))
    result = vpipe("stylize", "--style", str(model), "--max-attempts", "1")
    assert result.exit_code == 1
    status = vpipe("status").output
    assert "done           8" in status and "killed" in status and "likely out of memory" in status
    assert vpipe("retry-failed").exit_code == 0
    assert "done           9" in vpipe("status").output
