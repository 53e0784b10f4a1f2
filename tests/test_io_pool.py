"""The worker's I/O pool (frames decoded ahead, written behind the network) on real worker processes:
a death is charged to the frame the worker was on, frames merely queued spend nothing, and the styled
frames are the ones the sequential worker writes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from click.testing import Result

from pipeline.manifest import Manifest, Status
from tests.helpers import one_line_error, split_job

K = 8


@pytest.fixture()
def job(tmp_path: Path, vpipe: Callable[..., Result]) -> Path:
    return split_job(tmp_path, vpipe, seconds=0.4)  # 12 frames


def stylize(tmp_path: Path, vpipe: Callable[..., Result], *extra: str, job: str = "t") -> Result:
    return vpipe("stylize", "--job", job, "--engine", "posterize", "--style", str(tmp_path / "model.bin"),
                 "--workers", "1", *extra)


def released(job: Path, frame: int) -> list[str]:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        rows = conn.execute("SELECT message FROM events WHERE idx=? AND event='released'", (frame,)).fetchall()
    return [str(r[0]) for r in rows]


def assert_nothing_partial(job: Path, missing: int) -> None:
    """Every file under a final name decodes; the failed frame has none; no tmp file is left."""
    names = sorted(p.name for p in (job / "styled").iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, 13) if i != missing]
    assert all(cv2.imread(str(job / "styled" / n)) is not None for n in names)


def test_a_worker_killed_with_frames_queued_for_writing_charges_only_the_frame_in_its_network(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    # one I/O thread, held up writing 5 and 6 (each paused with its tmp file written): frames pile up
    # behind the network, which dies on K every time
    monkeypatch.setenv("VPIPE_IO_THREADS", "1")
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"5": "slow@written", "6": "slow@written",
                                                               str(K): "sigkill"}}))
    result = stylize(tmp_path, vpipe, "--chunk", "12", "--max-attempts", "2")
    assert result.exit_code == 1, result.output
    m = Manifest.open(job / "manifest.sqlite")
    assert m.frames(Status.FAILED) == [K]
    assert (m.record(K).error_kind, m.record(K).attempts) == ("killed", 2)
    assert all(m.record(i).attempts == 0 for i in range(1, 13) if i != K)
    assert m.frames(Status.DONE) == [i for i in range(1, 13) if i != K]
    m.close()
    # the worker had frames that were out of its network, not yet written, when it died: they went
    # back to pending without an attempt spent
    waited = [i for i in range(5, K) if any("queued" in r for r in released(job, i))]
    assert waited, [released(job, i) for i in range(5, K)]
    assert_nothing_partial(job, missing=K)


def test_a_frame_whose_write_kills_the_worker_fails_after_its_attempts(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPIPE_IO_THREADS", "1")
    monkeypatch.setenv("POSTERIZE_DELAY", "0.1")  # the next frame is in the network while 6 is written
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {"6": "sigkill"}, "point": "written"}))
    result = stylize(tmp_path, vpipe, "--chunk", "12", "--max-attempts", "3")
    assert result.exit_code == 1, result.output
    m = Manifest.open(job / "manifest.sqlite")
    assert m.frames(Status.FAILED) == [6]
    assert (m.record(6).error_kind, m.record(6).attempts) == ("killed", 3)
    assert all(m.record(i).attempts == 0 for i in range(1, 13) if i != 6)
    m.close()
    assert_nothing_partial(job, missing=6)


@pytest.mark.parametrize(("io_threads", "batch"), [("2", "1"), ("1", "3"), ("3", "5")])
def test_the_pool_and_batches_write_what_the_sequential_worker_writes(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
        io_threads: str, batch: str) -> None:
    clip = tmp_path / "clip.mp4"
    assert vpipe("split", str(clip), "--job", "pooled").exit_code == 0
    monkeypatch.setenv("VPIPE_IO_THREADS", "0")
    assert stylize(tmp_path, vpipe, "--chunk", "5").exit_code == 0
    monkeypatch.setenv("VPIPE_IO_THREADS", io_threads)
    monkeypatch.setenv("VPIPE_BATCH", batch)
    assert stylize(tmp_path, vpipe, "--chunk", "5", job="pooled").exit_code == 0
    pooled = job.parent / "pooled"
    sequential, ours = Manifest.open(job / "manifest.sqlite"), Manifest.open(pooled / "manifest.sqlite")
    assert ours.done_hashes() == sequential.done_hashes() and len(ours.done_hashes()) == 12
    # one record per frame, each with its own timing
    assert all(ours.record(i).seconds is not None for i in range(1, 13))
    assert [e for e in ours.events() if e[0] == "done"] == [("done", None)] * 12
    sequential.close()
    ours.close()
    for i in range(1, 13):
        name = f"{i:06d}.png"
        assert (pooled / "styled" / name).read_bytes() == (job / "styled" / name).read_bytes()


@pytest.mark.parametrize(("name", "value"), [("VPIPE_IO_THREADS", "two"), ("VPIPE_BATCH", "0")])
def test_a_malformed_io_setting_is_one_line(tmp_path: Path, job: Path, vpipe: Callable[..., Result],
                                            monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    one_line_error(stylize(tmp_path, vpipe), 2, name, repr(value))
    assert Manifest.open(job / "manifest.sqlite").counts()[Status.DONE] == 0


def test_a_batch_that_raises_is_rerun_frame_by_frame_so_only_the_frame_at_fault_fails(
        tmp_path: Path, env: dict[str, str]) -> None:
    import io

    import numpy as np

    from pipeline import storage
    from pipeline.executors.protocol import WorkerConfig, decode_event
    from pipeline.worker import Worker

    frames, styled = tmp_path / "frames", tmp_path / "styled"
    frames.mkdir()
    styled.mkdir()
    for i in range(1, 7):
        image = np.full((8, 8, 3), 0 if i == 3 else 40 * i, np.uint8)  # frame 3 is black
        (frames / f"{i:06d}.png").write_bytes(storage.encode(image, "png"))
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    config = WorkerConfig(engine="posterize", model=str(tmp_path / "model.bin"), frames_dir=str(frames),
                          styled_dir=str(styled), name_width=6, ext="png", io_threads=2, batch=4)
    out = io.StringIO()
    worker = Worker(config, out)
    calls: list[int] = []
    real = worker.engine.stylize

    def stylize(batch: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(batch))
        if any(not f.any() for f in batch):
            raise ValueError("a black frame")
        return real(batch)

    worker.engine.stylize = stylize  # type: ignore[method-assign]
    worker.run_chunk([1, 2, 3, 4, 5, 6])
    events = [e for e in (decode_event(line, 0) for line in out.getvalue().splitlines()) if e is not None]
    outcome = {int(e.data["frame"]): e.kind.value for e in events if e.kind.value in ("done", "failed")}
    assert outcome == {1: "done", 2: "done", 3: "failed", 4: "done", 5: "done", 6: "done"}
    assert calls == [4, 1, 1, 1, 1, 2]  # the batch with frame 3, then each of its frames alone; then 5-6
    assert events[-1].kind.value == "chunk_end"
    assert sorted(p.name for p in styled.iterdir()) == [f"{i:06d}.png" for i in (1, 2, 4, 5, 6)]
