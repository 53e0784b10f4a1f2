"""A multi-node Ray cluster on this machine (ray.cluster_utils.Cluster): a node removed mid-run, a
coordinator killed mid-run. Frames end done or failed as they do locally, and a resume finishes.
The node removal comes last: it leaves the module's cluster with one node."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from click.testing import Result

from pipeline import stages
from pipeline.manifest import Manifest, Status
from tests.helpers import make_clip, vpipe_process, wait_until

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from pipeline.executors import ray as ray_executor  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, list[Any]]]:
    """A head with no CPU (it only hosts the coordinator) and two worker nodes of one CPU each."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POSTERIZE_DELAY", "0.1")  # the nodes' processes inherit it
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()


def split(tmp_path: Path, vpipe: Callable[..., Result], size: str, seconds: float) -> Path:
    assert vpipe("split", str(make_clip(tmp_path / "clip.mp4", size=size, seconds=seconds)), "--job", "t").exit_code == 0
    (tmp_path / "model.bin").write_bytes(b"quick engine")
    return tmp_path / "jobs" / "t"


def counts(job: Path) -> dict[str, int]:
    with sqlite3.connect(job / "manifest.sqlite") as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM frames GROUP BY status").fetchall())


def mtimes(job: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (job / "styled").glob("*.png")}


def test_a_killed_coordinator_loses_nothing_and_a_resume_finishes(
        tmp_path: Path, vpipe: Callable[..., Result], env: dict[str, str], cluster: tuple[Cluster, list[Any]]) -> None:
    job = split(tmp_path, vpipe, "64x48", 1.0)  # 30 frames, 0.1 s each (POSTERIZE_DELAY)
    args = ["stylize", "--job", "t", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--chunk", "4",
            "--executor", "ray", "--ray-address", cluster[0].address]
    proc = vpipe_process(args, {**env, "POSTERIZE_DELAY": "0.1"})
    wait_until(lambda: counts(job).get("done", 0) >= 6, seconds=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert counts(job).get("running", 0) > 0  # the dead run left frames claimed
    time.sleep(3)  # Ray kills the dead driver's actors, and each worker dies with its actor
    quiet = mtimes(job)
    time.sleep(2)
    assert mtimes(job) == quiet, "a worker kept writing after its coordinator died"
    m = Manifest.open(job / "manifest.sqlite")
    done_before = {f"{i:06d}.png" for i in m.frames(Status.DONE)}
    m.close()

    resumed = vpipe(*args)
    assert resumed.exit_code == 0, resumed.output
    assert "reclaimed" in resumed.output
    assert counts(job) == {"done": 30}
    m = Manifest.open(job / "manifest.sqlite")
    assert all(m.record(i).attempts == 0 for i in range(1, 31))  # a dead coordinator spends no attempt
    m.close()
    after = mtimes(job)
    assert all(after[name] == quiet[name] for name in done_before), "done frames were recomputed"


def test_a_node_removed_mid_run_costs_at_most_its_frame_in_flight(
        tmp_path: Path, vpipe: Callable[..., Result], cluster: tuple[Cluster, list[Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    job = split(tmp_path, vpipe, "320x240", 2.0)  # 60 frames
    monkeypatch.setattr(ray_executor.RayExecutor, "placement_timeout", 6.0)
    options = stages.RunOptions(style="starry_night", chunk=5, workers=2, max_attempts=1, executor="ray")
    outcome: list[Any] = []
    run = threading.Thread(target=lambda: outcome.append(stages.stylize(tmp_path / "jobs", "t", options)))
    run.start()
    wait_until(lambda: counts(job).get("done", 0) >= 10, seconds=120)
    cluster[0].remove_node(cluster[1][0])  # its replacement has no room: that slot retires, the other finishes
    run.join(timeout=300)
    assert not run.is_alive() and outcome, "the run did not finish"

    m = Manifest.open(job / "manifest.sqlite")
    failed, done = m.frames(Status.FAILED), m.frames(Status.DONE)
    assert len(failed) <= 1 and len(done) + len(failed) == 60  # nothing left running or pending
    for frame in failed:
        record = m.record(frame)
        assert (record.error_kind, record.attempts) == ("crashed", 1) and "Ray worker lost" in (record.last_error or "")
    m.close()
    styled = job / "styled"
    assert all(cv2.imread(str(styled / f"{i:06d}.png")) is not None for i in done)
    before = mtimes(job)

    resumed = vpipe("retry-failed", "--job", "t", "--executor", "ray", "--workers", "1")
    assert resumed.exit_code == 0, resumed.output
    assert counts(job) == {"done": 60}
    after = mtimes(job)
    assert all(after[name] == mtime for name, mtime in before.items() if int(name[:6]) in done)
