"""--executor ray on a real local Ray instance: the same worker code, the same per-frame outcomes as locally."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from pipeline.errors import UsageError, VpipeError
from pipeline.manifest import Manifest
from pipeline.storage import file_digest
from tests.helpers import split_job

ray = pytest.importorskip("ray")
from pipeline.executors import ray as ray_executor  # noqa: E402 - only once ray is known to be there

pytestmark = pytest.mark.ray
K = 6


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture()
def job(tmp_path: Path, vpipe: Callable[..., Result]) -> Path:
    return split_job(tmp_path, vpipe, seconds=0.4)  # 12 frames


def records(job: Path) -> dict[int, tuple[str, str | None, int]]:
    m = Manifest.open(job / "manifest.sqlite")
    try:
        return {r.idx: (r.status.value, r.error_kind, r.attempts) for r in (m.record(i) for i in range(1, 13))}
    finally:
        m.close()


def hashes(job: Path) -> dict[str, str]:
    return {p.name: file_digest(p) for p in sorted((job / "styled").glob("*.png"))}


def posterize(tmp_path: Path, *extra: str) -> list[str]:
    return ["stylize", "--engine", "posterize", "--style", str(tmp_path / "model.bin"), "--chunk", "4",
            "--executor", "ray", *extra]


def test_the_fast_engine_on_ray_makes_the_same_frames_as_locally(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result]) -> None:
    # frames styled independently: in video mode a chunk starts from its previous frame when that is already
    # done, else from a warm-up, so its bytes depend on which chunk finished first, on any executor
    styled = ("stylize", "--style", "starry_night", "--chunk", "4", "--workers", "2", "--no-temporal")
    result = vpipe(*styled, "--job", "t", "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert "12 frames styled, 0 failed" in result.output
    on_ray = hashes(job)
    assert len(on_ray) == 12
    assert not (job / ".ray-token").exists()
    started = [json.loads(line) for line in (job / "log.jsonl").read_text().splitlines() if "run_started" in line]
    assert started[-1]["executor"] == "ray" and started[-1]["workers"] == 2

    assert vpipe("split", str(tmp_path / "clip.mp4"), "--job", "u").exit_code == 0
    result = vpipe(*styled, "--job", "u")  # the local executor
    assert result.exit_code == 0, result.output
    assert hashes(tmp_path / "jobs" / "u") == on_ray  # the same worker code: the same bytes


@pytest.mark.parametrize(("mode", "kind", "extra"), [("segfault", "segfault", ()),
                                                     ("hang", "timeout", ("--frame-timeout", "2"))])
def test_a_worker_that_dies_on_frame_k_fails_only_frame_k(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
        mode: str, kind: str, extra: tuple[str, ...]) -> None:
    state = tmp_path / "faults"
    state.mkdir()
    monkeypatch.setenv("VPIPE_FAULTS", json.dumps({"frames": {str(K): mode}, "times": 1, "state": str(state)}))
    result = vpipe(*posterize(tmp_path, "--max-attempts", "1", *extra))
    assert result.exit_code == 1, result.output
    found = records(job)
    assert found[K] == ("failed", kind, 1)
    assert all(found[i] == ("done", None, 0) for i in found if i != K)

    result = vpipe("retry-failed", "--executor", "ray")
    assert result.exit_code == 0, result.output
    assert records(job)[K] == ("done", None, 1)


def test_a_node_that_cannot_see_the_job_folder_is_refused(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    # The coordinator writes its token where the workers do not look: what a node without the shared
    # job folder sees.
    monkeypatch.setattr(ray_executor, "TOKEN_FILE", ".token-elsewhere")
    result = vpipe(*posterize(tmp_path))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if not line.startswith("{")]  # JSON lines: the log
    assert len(errors) == 1 and "cannot see the job folder" in errors[0] and "shared storage" in errors[0], errors
    assert set(records(job).values()) == {("pending", None, 0)}  # nothing claimed, nothing spent


def test_a_worker_ray_cannot_place_hands_its_chunk_back(
        tmp_path: Path, job: Path, vpipe: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_executor.RayExecutor, "placement_timeout", 8.0)
    result = vpipe(*posterize(tmp_path, "--workers", "3"))  # 3 workers of 1 CPU each, 2 CPUs
    assert result.exit_code == 0, result.output
    # Two actors fit; the third waits, gives its chunk back after 8 s, and the other two finish the job
    # (without that it would hold its chunk until the load timeout).
    assert set(records(job).values()) == {("done", None, 0)}


def test_placement_defaults() -> None:
    cpu_only = ray_executor.Cluster(started=False, nodes=3, gpus=0)
    assert ray_executor.placement(cpu_only, "auto", None, None) == (3, 0)
    gpus = ray_executor.Cluster(started=False, nodes=2, gpus=8)
    assert ray_executor.placement(gpus, "auto", None, None) == (8, 1)
    assert ray_executor.placement(gpus, "auto", None, 2) == (4, 2)
    assert ray_executor.placement(gpus, "cpu", 5, None) == (5, 0)
    with pytest.raises(Exception, match="no GPU"):
        ray_executor.placement(cpu_only, "gpu", None, None)
    with pytest.raises(Exception, match="has 8 GPUs"):
        ray_executor.placement(gpus, "auto", None, 16)


def test_an_unreachable_ray_address_is_one_line_not_minutes_of_retries() -> None:
    with pytest.raises(VpipeError, match=r"cannot connect to the Ray cluster at 127.0.0.1:1: Connection refused"):
        ray_executor._check_reachable("127.0.0.1:1")
    with pytest.raises(UsageError, match="expected auto or HOST:PORT"):
        ray_executor._check_reachable("somewhere")
