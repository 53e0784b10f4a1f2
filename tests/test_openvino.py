"""The fast engine on OpenVINO: equal to the reference network, and workers that start without TensorFlow."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

from pipeline.engines import openvino_cpu
from pipeline.engines.fast import engine as fast
from pipeline.engines.fast import weights, xnnpack
from pipeline.errors import ModelError
from tests.helpers import FIXTURES, frame, make_clip, write_model

pytestmark = pytest.mark.skipif(not openvino_cpu.available(), reason="the openvino package is not installed")


@pytest.fixture(scope="module")
def slim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("m") / "slim", channels=(8, 16, 32))


def test_openvino_equals_the_reference_network_at_any_size_and_batch(slim: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """fp32 on OpenVINO against the plain TF graph (network.transform's maths): within one level."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    graph = fast.FastEngine(slim, batch_size=2)
    vino = fast.FastEngine(slim, batch_size=2, backend="openvino", threads=1)
    for size in [(40, 56), (67, 45), (40, 56)]:  # a new size compiles again; the first one comes back
        frames = [frame(*size, seed=s) for s in range(3)]
        for a, b in zip(graph.stylize(frames), vino.stylize(frames), strict=True):
            assert a.shape == b.shape == (*size, 3)
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert list((tmp_path / "vpipe" / "openvino").iterdir())  # compiled models kept for the next worker


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
    path = tmp_path / f"fast-{xnnpack.fast_key(arrays, decoder)}.tflite"
    path.write_bytes(b"not a flatbuffer")
    runner = xnnpack.fast_runner(arrays, decoder, cache=tmp_path, backend="openvino")
    assert runner(np.zeros((1, 56, 72, 3), np.float32)).shape == (1, 56, 72, 3)
    assert path.read_bytes()[4:8] == b"TFL3"


def test_real_workers_on_openvino_never_import_tensorflow(slim: Path, tmp_path: Path, vpipe: Callable[..., Result],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`vpipe stylize` on the openvino backend with the net in the cache: every worker process starts,
    stylizes and exits without importing tensorflow (a sitecustomize on the workers' PYTHONPATH notes
    each process that starts and each that imports it)."""
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
    assert not [line for line in lines if "tensorflow" in line], lines
