"""The converted fast net's cache: converted once, reused without TensorFlow, rebuilt when unusable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.engines import litert, openvino_cpu
from pipeline.engines.fast import engine as fast
from pipeline.engines.fast import padding, weights, xnnpack
from tests.helpers import ROOT, frame


def run(runner: litert.Runner, image: np.ndarray) -> np.ndarray:
    padded = padding.pad_to_multiple(image, 4, padding.MARGIN)[0][None].astype(np.float32)
    return runner(padded)


def test_the_net_is_converted_once_then_read_from_the_cache(slim: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    arrays, decoder = weights.load_net(slim)
    first = xnnpack.fast_runner(arrays, decoder, cache=tmp_path)
    cached = list(tmp_path.glob("fast-*.tflite"))
    assert len(cached) == 1 and not list(tmp_path.glob(".*"))  # no tmp file left behind

    def no_conversion(*_: object) -> bytes:
        raise AssertionError("converted again although the cache holds the net")

    monkeypatch.setattr(xnnpack, "convert_fast", no_conversion)
    again = xnnpack.fast_runner(arrays, decoder, cache=tmp_path)
    image = frame(40, 56)
    np.testing.assert_array_equal(run(first, image), run(again, image))


def test_the_key_follows_weights_decoder_backend_and_code(slim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays, decoder = weights.load_net(slim)
    key = xnnpack.fast_key(arrays, decoder)
    assert xnnpack.fast_key(arrays, decoder) == key
    changed = [a.copy() for a in arrays]
    changed[5][0] += 1e-3
    assert xnnpack.fast_key(changed, decoder) != key
    assert xnnpack.fast_key(arrays, "resize") != key
    assert xnnpack.fast_key(arrays, decoder, backend="openvino") != key  # each backend's own layer forms
    source = tmp_path / "network.py"
    source.write_bytes(xnnpack.NETWORK_SOURCE.read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(xnnpack, "NETWORK_SOURCE", source)
    assert xnnpack.fast_key(arrays, decoder) != key


def test_an_unusable_cached_file_is_converted_again(slim: Path, tmp_path: Path) -> None:
    arrays, decoder = weights.load_net(slim)
    path = tmp_path / f"fast-{xnnpack.fast_key(arrays, decoder)}.tflite"
    path.write_bytes(b"not a flatbuffer")
    runner = xnnpack.fast_runner(arrays, decoder, cache=tmp_path)
    want = fast.FastEngine(slim).stylize([frame(40, 56)])[0]
    got = run(runner, frame(40, 56))[0, padding.MARGIN:padding.MARGIN + 40, padding.MARGIN:padding.MARGIN + 56]
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert path.read_bytes()[4:8] == b"TFL3"  # the good net replaced the bad file


def test_an_unwritable_cache_costs_only_time(slim: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays, decoder = weights.load_net(slim)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    runner = xnnpack.fast_runner(arrays, decoder, cache=blocker / "tflite")
    assert run(runner, frame(40, 56)).shape == (1, 56, 72, 3)
    assert "not caching the converted net" in capsys.readouterr().err


AVX2 = frozenset({"avx", "avx2", "fma"})  # auto picks fp32 on XNNPACK here
AVX512_BF16 = frozenset({"avx", "avx2", "fma", "avx512f", "avx512_bf16"})  # auto picks fp32 on OpenVINO here


def worker_runs(slim: Path, tmp_path: Path, flags: frozenset[str], backend: str = "") -> list[dict[str, object]]:
    """Two fresh worker processes loading the fast engine as workers do (auto precision), on a CPU with
    these flags whatever this machine has; what each ran and whether it imported TensorFlow."""
    script = (
        "import sys, json, numpy as np\n"
        "from pathlib import Path\n"
        "from pipeline.engines.fast import engine as fast\n"
        "fast.precisions.cpu_flags = lambda: frozenset(json.loads(sys.argv[2]))  # the CPU this test states\n"
        "engine = fast.load(Path(sys.argv[1]), {'threads': 1, 'max_memory': 2 ** 31})  # as workers get it\n"
        "out = engine.stylize([np.zeros((40, 56, 3), np.uint8)])[0]\n"
        "print(json.dumps({'backend': engine.backend, 'precision': engine.precision, 'shape': out.shape,\n"
        "                  'tf': 'tensorflow' in sys.modules}))\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}
    env.pop(fast.BACKEND_ENV, None)
    if backend:
        env[fast.BACKEND_ENV] = backend
    return [json.loads(subprocess.run([sys.executable, "-c", script, str(slim), json.dumps(sorted(flags))], env=env,
                                      check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            for _ in range(2)]


def test_a_cpu_worker_with_the_net_cached_never_imports_tensorflow(slim: Path, tmp_path: Path) -> None:
    """What makes CPU workers start fast: engine load and frames without `import tensorflow` (on an
    AVX2 CPU without bf16, where auto runs fp32 on XNNPACK)."""
    runs = worker_runs(slim, tmp_path, AVX2)
    for run_ in runs:
        assert run_.pop("precision") == "fp32"
    assert runs[0] == {"backend": "xnnpack", "shape": [40, 56, 3], "tf": True}  # converted: needs TensorFlow
    assert runs[1] == {"backend": "xnnpack", "shape": [40, 56, 3], "tf": False}  # from the cache
    assert len(list((tmp_path / "vpipe" / "tflite").glob("fast-*.tflite"))) == 1


@pytest.mark.skipif(not openvino_cpu.available(), reason="the openvino package is not installed")
def test_on_an_avx512_bf16_cpu_openvino_workers_never_import_tensorflow(slim: Path, tmp_path: Path) -> None:
    """The other CPU the machines may have, where auto picks OpenVINO, which reads the same cached net."""
    runs = worker_runs(slim, tmp_path, AVX512_BF16)
    assert runs[0] == {"backend": "openvino", "precision": "fp32", "shape": [40, 56, 3], "tf": True}  # converted
    assert runs[1] == {"backend": "openvino", "precision": "fp32", "shape": [40, 56, 3], "tf": False}  # cached
    assert len(list((tmp_path / "vpipe" / "tflite").glob("fast-*.tflite"))) == 1
    assert list((tmp_path / "vpipe" / "openvino").iterdir())
