"""The fast engine on OpenVINO: equal to the reference network, workers that start without TensorFlow, and
workers that leave nothing behind when they or their coordinator are killed."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

from pipeline.engines import openvino_cpu
from pipeline.engines.fast import engine as fast
from pipeline.engines.fast import weights, xnnpack
from pipeline.errors import ModelError
from tests.helpers import FIXTURES, ROOT, frame, kill_all, make_clip, vpipe_run, workers_of

pytestmark = pytest.mark.skipif(not openvino_cpu.available(), reason="the openvino package is not installed")


@pytest.mark.parametrize("model", ["slim", "vpipe_slim"])
def test_openvino_equals_the_reference_network_at_any_size_and_batch(model: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     request: pytest.FixtureRequest) -> None:
    """fp32 on OpenVINO (its own layer forms: transposed-conv decoder, MVN-fused norms) against the plain
    TF graph (network.transform's maths), for both decoders: within one level."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    net = request.getfixturevalue(model)
    graph = fast.FastEngine(net, batch_size=2)
    vino = fast.FastEngine(net, batch_size=2, backend="openvino", threads=1)
    for size in [(40, 56), (67, 45), (40, 56)]:  # a new size compiles again; the first one comes back
        frames = [frame(*size, seed=s) for s in range(3)]
        for a, b in zip(graph.stylize(frames), vino.stylize(frames), strict=True):
            assert a.shape == b.shape == (*size, 3)
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert list((tmp_path / "vpipe" / "openvino").iterdir())  # compiled models kept for the next worker


@pytest.mark.parametrize("model, layers", [("slim", 16), ("vpipe_slim", 10)])
def test_openvino_compiles_its_form_into_its_fused_kernels(model: str, layers: int, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           request: pytest.FixtureRequest) -> None:
    """The openvino form's decoder runs on OpenVINO's deconvolution kernel and every norm but the output's
    in its MVN kernel (where a converter or OpenVINO change loses them, speed goes, not correctness)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    engine = fast.FastEngine(request.getfixturevalue(model), backend="openvino", threads=1)
    engine.stylize([frame(40, 56)])
    runtime = engine._run._request.get_compiled_model().get_runtime_model()
    kinds = collections.Counter(op.get_rt_info()["layerType"].astype(str) for op in runtime.get_ops())
    assert kinds["Deconvolution"] == 2 and kinds["DepthToSpace"] == 0
    assert kinds["MVN"] == layers - 1


def test_openvino_runs_bf16_close_to_fp32_and_refuses_fp16(slim: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    frames = [frame(40, 56, seed=s) for s in range(2)]
    ref = fast.FastEngine(slim).stylize(frames)
    out = fast.FastEngine(slim, precision="bf16", backend="openvino").stylize(frames)
    assert np.abs(np.stack(out).astype(int) - np.stack(ref).astype(int)).mean() < 2
    with pytest.raises(Exception, match="backend 'openvino' with fp16"):
        fast.FastEngine(slim, precision="fp16", backend="openvino")


def test_a_file_openvino_cannot_read_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="bad.tflite is not a model OpenVINO reads") as info:
        openvino_cpu.Runner(bad)
    assert "\n" not in str(info.value)


def test_a_cached_file_openvino_cannot_read_is_converted_again(slim: Path, tmp_path: Path) -> None:
    arrays, decoder = weights.load_net(slim)
    path = tmp_path / f"fast-{xnnpack.fast_key(arrays, decoder, backend='openvino')}.tflite"
    path.write_bytes(b"not a flatbuffer")
    runner = xnnpack.fast_runner(arrays, decoder, cache=tmp_path, backend="openvino")
    assert runner(np.zeros((1, 56, 72, 3), np.float32)).shape == (1, 56, 72, 3)
    assert path.read_bytes()[4:8] == b"TFL3"


def test_real_workers_on_openvino_never_import_tensorflow(slim: Path, tmp_path: Path, vpipe: Callable[..., Result],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`vpipe stylize` on the openvino backend with the net in the cache: every worker process starts,
    stylizes and exits without importing tensorflow, or OpenVINO's model converter (half of OpenVINO's
    import time; a sitecustomize on the workers' PYTHONPATH notes each process that starts and each
    watched import)."""
    cache = tmp_path / "cache"
    arrays, decoder = weights.load_net(slim)
    xnnpack.fast_runner(arrays, decoder, cache=cache / "vpipe" / "tflite", backend="openvino")  # converted here, once
    log = tmp_path / "imports.log"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv(fast.BACKEND_ENV, "openvino")
    monkeypatch.setenv("VPIPE_TEST_IMPORT_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES / "import_watch"), os.environ["PYTHONPATH"]]))
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.3)  # 9 frames
    assert vpipe("split", str(clip)).exit_code == 0
    result = vpipe("stylize", "--style", str(slim))
    assert result.exit_code == 0, result.output
    assert "done           9" in vpipe("status").output
    lines = log.read_text().splitlines()
    assert any(line.endswith(" started") for line in lines)
    assert any(line.endswith(" imports openvino") for line in lines), lines
    assert not [line for line in lines if line.endswith((" imports tensorflow", " imports openvino.tools.ovc"))], lines


def fresh_user(tmp_path: Path, env: dict[str, str], slim: Path) -> dict[str, str]:
    """The environment of a user who never ran OpenVINO (an empty home, not in CI), with the net
    already converted into vpipe's cache, so workers load it straight onto OpenVINO."""
    arrays, decoder = weights.load_net(slim)
    xnnpack.fast_runner(arrays, decoder, cache=tmp_path / "cache" / "vpipe" / "tflite", backend="openvino")
    env = {**env, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           fast.BACKEND_ENV: "openvino", "CUDA_VISIBLE_DEVICES": "-1"}
    for ci in ("CI", "TF_BUILD", "JENKINS_URL"):  # OpenVINO's own telemetry stays off in CI
        env.pop(ci, None)
    (tmp_path / "home").mkdir()
    return env


def test_loading_openvino_starts_no_process_and_writes_nothing_in_the_home(slim: Path, tmp_path: Path,
                                                                            env: dict[str, str]) -> None:
    """`import openvino` sends telemetry from a forked process, unless vpipe keeps it from loading: a fork
    of a worker holds the worker's protocol pipe and has no parent-death signal, so it could outlive
    everything and keep the coordinator waiting for the pipe to close."""
    script = ("import os, sys, time, numpy as np\n"
              "from pathlib import Path\n"
              "forks = []\n"
              "os.register_at_fork(before=lambda: forks.append(1))\n"
              "from pipeline.engines.fast import engine as fast\n"
              "fast.FastEngine(Path(sys.argv[1]), backend='openvino', threads=1).stylize([np.zeros((40, 56, 3), np.uint8)])\n"
              "time.sleep(2)  # the telemetry thread's time to fork\n"
              "print(len(forks))\n")
    run = subprocess.run([sys.executable, "-c", script, str(slim)], env={**fresh_user(tmp_path, env, slim),
                         "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0"]
    assert list((tmp_path / "home").iterdir()) == []  # no ~/intel/openvino_ga_cid


def test_a_real_openvino_worker_killed_mid_chunk_never_hangs_the_run(slim: Path, tmp_path: Path,
                                                                     env: dict[str, str]) -> None:
    """SIGKILL of an OpenVINO worker right after it loaded: the run finishes (a fresh worker redoes the
    frame) instead of waiting forever on a pipe that a leftover process of the dead worker holds."""
    env = fresh_user(tmp_path, env, slim)
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.3)  # 9 frames
    assert vpipe_run(["split", str(clip)], env).returncode == 0
    (tmp_path / "state").mkdir()
    env["VPIPE_FAULTS"] = json.dumps({"frames": {"2": "sigkill"}, "times": 1, "state": str(tmp_path / "state")})
    run = vpipe_run(["stylize", "--style", str(slim)], env, deadline=180)
    assert run.returncode == 0, run.stderr
    assert "done           9" in vpipe_run(["status"], env).stdout


def test_a_killed_coordinator_leaves_no_openvino_worker(slim: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """kill -9 of `vpipe stylize` while its OpenVINO workers run: within seconds no process of theirs is left."""
    env = fresh_user(tmp_path, env, slim)
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.3)
    assert vpipe_run(["split", str(clip)], env).returncode == 0
    env["VPIPE_FAULTS"] = json.dumps({"frames": {"2": "kill_coordinator"}})  # the worker SIGKILLs its parent
    jobs = Path(env["VPIPE_JOBS_DIR"])
    run = vpipe_run(["stylize", "--style", str(slim)], env, deadline=180)
    assert run.returncode == -9
    deadline = time.monotonic() + 5
    while (left := workers_of(jobs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    kill_all(left)
    assert left == [], "processes of the killed run's workers are still alive"
