"""What several test files (and the benches) share: places, real clips, tiny models, synthetic images.

Test files import these from `tests.helpers`; conftest.py imports from here too and only defines
fixtures (never the other way round). The repository root is on sys.path for pytest (pyproject's
`pythonpath`), for the benches (they insert it) and for subprocess runs (PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import Result

from pipeline import executors, tiles, video
from pipeline.engines.fast.weights import load_net

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEADLINE = 120.0  # seconds: a run still going after this has hung


def assets_or_skip(relative: str) -> Path:
    path = ASSETS / relative
    if not path.exists():
        pytest.skip(f"{path} not found: the real assets in ../shared/assets are absent")
    return path


# ---------------------------------------------------------------- clips and the CLI


def make_clip(path: Path, size: str = "64x48", rate: str = "30000/1001", seconds: float = 0.4,
              audio: int = 1, extra: tuple[str, ...] = ()) -> Path:
    """A real H.264 clip from ffmpeg's test source (+ sine audio tracks)."""
    args = [video.tools().ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc=size={size}:rate={rate}"]
    for i in range(audio):
        args += ["-f", "lavfi", "-i", f"sine=frequency={440 * (i + 1)}:sample_rate=44100"]
    args += ["-t", str(seconds), "-map", "0:v"]
    for i in range(audio):
        args += ["-map", f"{i + 1}:a"]
    w, h = (int(v) for v in size.split("x"))
    pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
    args += ["-c:v", "libx264", "-pix_fmt", pix, "-c:a", "aac", *extra, str(path)]
    subprocess.run(args, check=True)
    return path


def vpipe_process(args: list[str], env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]


def one_line_error(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "Usage:" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("vpipe: error: ")]
    assert len(errors) == 1, lines
    message = errors[0].lower()
    for word in words:
        assert word.lower() in message, f"{word!r} not in {message!r}"


def frame_stats(manifest: Path) -> dict[int, dict[str, Any]]:
    """The per-frame engine figures the manifest records (frames.stats: the README documents the
    column for people who look; vpipe itself never reads it back)."""
    with sqlite3.connect(manifest) as conn:
        rows = conn.execute("SELECT idx, stats FROM frames WHERE stats IS NOT NULL ORDER BY idx").fetchall()
    return {i: json.loads(s) for i, s in rows}


# ---------------------------------------------------------------- fast-net weights


def layer_shapes(c1: int, c2: int, c3: int) -> list[list[int]]:
    """Kernel shapes of the 16 layers, transposed kernels stored [k, k, out, in]."""
    convs = [[9, 9, 3, c1], [3, 3, c1, c2], [3, 3, c2, c3]] + [[3, 3, c3, c3]] * 10
    return convs + [[3, 3, c2, c3], [3, 3, c1, c2], [9, 9, c1, 3]]


def write_model(folder: Path, channels: tuple[int, int, int] = (32, 64, 128), seed: int = 0) -> Path:
    """Write a weights folder in the exact on-disk layout of the real dumps."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    manifest = {}
    for layer, kshape in enumerate(layer_shapes(*channels)):
        out = kshape[2] if layer in (13, 14) else kshape[3]
        fan_in = kshape[0] * kshape[1] * (kshape[3] if layer in (13, 14) else kshape[2])
        arrays = [
            rng.normal(0, 1 / np.sqrt(fan_in), kshape),
            rng.normal(0, 0.1, [out]),
            1 + rng.normal(0, 0.1, [out]),
        ]
        for j, arr in enumerate(arrays):
            i = 3 * layer + j
            name = "Variable" if i == 0 else f"Variable_{i}"
            arr.astype("<f4").tofile(folder / name)
            manifest[name] = {"filename": name, "shape": list(arr.shape)}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def random_net(kernels: tuple[int, int] = (5, 5), decoder: str = "resize", seed: int = 0) -> list[np.ndarray]:
    """A small net's arrays (channels 8/16/32, 2 blocks) in the layout `vpipe train-style` exports, with
    random kernels, shifts and scales (imports TensorFlow)."""
    from pipeline import training

    plan = training.Plan(channels=(8, 16, 32), blocks=2, kernels=kernels, decoder=decoder)
    rng = np.random.default_rng(seed)
    arrays = [v.numpy() for v in training.init_weights(plan, seed=seed)]
    return [a if i % 3 == 0 else a + rng.normal(0, 0.2, a.shape).astype(np.float32) for i, a in enumerate(arrays)]


def load_weights(folder: Path) -> list[np.ndarray]:
    """The arrays of a weights folder in network order (48 for the Engstrom nets), validated."""
    return load_net(folder)[0]


# ---------------------------------------------------------------- synthetic images and measures


def frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture DIS can track (blurred noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


def shift(image: np.ndarray, dx: int) -> np.ndarray:
    """The scene moved right by dx pixels; the new strip on the left is fresh content."""
    out = np.roll(image, dx, axis=1)
    out[:, :dx] = texture(image.shape[0], dx, seed=99)
    return out


def cut_lines(length: int, tile: int, overlap: int) -> list[int]:
    """Where the nearest-centre cut between neighbouring windows of pipeline.tiles falls: the middle
    of each overlap, where a seam would show (frames at least one window long)."""
    origins = tiles.starts(length, tile, overlap)
    return [round((a + b + tile) / 2) for a, b in pairwise(origins)]


def split_job(tmp_path: Path, vpipe: Callable[..., Result], seconds: float) -> Path:
    """Job "t" from a real clip, plus the quick engine's model file."""
    clip = make_clip(tmp_path / "clip.mp4", seconds=seconds)
    assert vpipe("split", str(clip), "--job", "t").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    return tmp_path / "jobs" / "t"


# processes, read from /proc

def state_of(pid: int) -> str | None:
    """The process's state letter (R, S, T, Z...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    return state_of(pid) not in (None, "Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def wait_until(predicate: Callable[[], bool], seconds: float = 60) -> None:
    """Poll until the predicate holds; past `seconds` the test fails."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def quick_executor(folder: Path, job: Path, workers: int = 1) -> executors.LocalExecutor:
    """Local workers of the quick test engine (its model `folder`/model.bin) for the frames of `job`."""
    config = executors.WorkerConfig(engine="posterize", model=str(folder / "model.bin"),
                                    frames_dir=str(job / "frames"), styled_dir=str(job / "styled"),
                                    name_width=6, ext="png")
    executor = executors.create(executors.Placement(device="cpu", workers=workers), config, dict(os.environ),
                                folder / "workers", folder)
    assert isinstance(executor, executors.LocalExecutor)
    return executor


class Quiet:
    """A coordinator's reporter that reports nothing."""

    def frame_done(self, frame: int, seconds: float) -> None: ...
    def frame_failed(self, frame: int, kind: str, message: str, final: bool) -> None: ...
    def chunk_done(self, frames: list[int], done: int, failed: int, seconds: float) -> None: ...


def workers_of(jobs: Path) -> list[int]:
    """Live worker processes started for this test's jobs folder (found by their environment)."""
    marker = f"VPIPE_JOBS_DIR={jobs}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"pipeline.worker" in (entry / "cmdline").read_bytes() and \
                        marker in (entry / "environ").read_bytes().split(b"\0") and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def vpipe_run(args: list[str], env: dict[str, str], deadline: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own; a run still going at the deadline has hung (killed, and the test fails)."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        kill_all(workers_of(Path(env["VPIPE_JOBS_DIR"])))
        pytest.fail(f"`vpipe {' '.join(args[:1])}` hung: still running after {deadline:g} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
