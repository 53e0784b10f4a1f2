"""The fast engine's rearranged inference network: exact against the plain transform net, on every backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipeline.engines.fast import engine as fast
from pipeline.engines.fast import network
from pipeline.engines.fast.precision import cpu_flags, resolve
from pipeline.errors import UsageError
from tests.helpers import frame, random_net


@pytest.mark.parametrize("k", [3, 5, 9])
@pytest.mark.parametrize("form", ["s2d 2", "s2d 4", "split 2", "split 3"])
def test_rearranged_convs_equal_the_plain_conv(k: int, form: str) -> None:
    kind, r = form.split()
    rng = np.random.default_rng(k * int(r))
    kernel = rng.normal(0, 0.1, (k, k, 5, 3)).astype(np.float32)
    size = (24, 32) if kind == "s2d" else (13, 18)  # space-to-depth needs sides that divide by r
    x = tf.constant(rng.normal(0, 1, (2, *size, 5)).astype(np.float32))
    want = tf.nn.conv2d(x, kernel, 1, "SAME")
    build = network._s2d_conv if kind == "s2d" else network._split_conv
    np.testing.assert_allclose(build(kernel, int(r), tf.float32)(x).numpy(), want.numpy(), atol=1e-4)


def _up_case(k: int, decoder: str, seed: int) -> tuple[np.ndarray, tf.Tensor, tf.Tensor]:
    """A random up kernel (6 -> 4 channels, in `decoder`'s layout), an input and the reference output."""
    rng = np.random.default_rng(seed)
    shape = (k, k, 4, 6) if decoder == "transpose" else (k, k, 6, 4)
    kernel = rng.normal(0, 0.1, shape).astype(np.float32)
    x = tf.constant(rng.normal(0, 1, (2, 7, 9, 6)).astype(np.float32))
    return kernel, x, network.conv(x, tf.constant(kernel), decoder)


UPS = [(1, "transpose"), (3, "transpose"), (4, "transpose"), (5, "transpose"), (2, "resize"), (3, "resize"), (4, "resize"),
       (5, "resize")]


@pytest.mark.parametrize("k, decoder", UPS)
def test_sub_pixel_form_equals_the_decoder_conv(k: int, decoder: str) -> None:
    kernel, x, want = _up_case(k, decoder, seed=k)
    got = network._up_conv(kernel, decoder, tf.float32)(x)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)


@pytest.mark.parametrize("k, decoder", UPS)
def test_transposed_form_equals_the_decoder_conv(k: int, decoder: str) -> None:
    kernel, x, want = _up_case(k, decoder, seed=20 + k)
    got = network._transposed_conv(kernel, decoder, tf.float32)(x)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)


def test_the_up_forms_do_no_multiply_adds_for_zeros() -> None:
    """resize 3x3: each output phase reads a 2x2 window; the sub-pixel form aligns the phases on one 2x2
    window (not the 3x3 union), the transposed form is 4x4 (16 taps, as the 4 phases' 2x2); transpose
    3x3: the transposed form is the kernel itself."""
    kernel = np.random.default_rng(0).normal(0, 1, (3, 3, 6, 4)).astype(np.float32)
    k2, lo, hi, crop = network.up_kernel(kernel, "resize")
    assert k2.shape == (2, 2, 6, 16) and (lo, hi, crop) == (1, 1, 1)
    assert network.transposed_kernel(kernel, "resize").shape == (4, 4, 4, 6)
    assert np.array_equal(network.transposed_kernel(kernel, "transpose"), kernel)


@pytest.mark.parametrize("form", network.FORMS)
@pytest.mark.parametrize("kernels, decoder", [((9, 9), "transpose"), ((5, 5), "resize")])
def test_network_equals_the_transform_net(form: str, kernels: tuple[int, int], decoder: str) -> None:
    arrays = random_net(kernels, decoder, seed=3)
    x = tf.constant(np.stack([frame(36, 52, s) for s in range(2)]).astype(np.float32))
    want = tf.round(network.transform(x, [tf.constant(a) for a in arrays], decoder)).numpy()
    got = network.network(arrays, decoder, form=form)(x).numpy()
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("model", ["slim", "vpipe_slim"])
def test_xnnpack_matches_the_graph_at_any_size_and_batch(model: str, request: pytest.FixtureRequest) -> None:
    net = request.getfixturevalue(model)
    graph = fast.FastEngine(net, batch_size=2)
    lite = fast.FastEngine(net, batch_size=2, backend="xnnpack")
    for size in [(40, 56), (67, 45), (40, 56)]:
        frames = [frame(*size, seed=s) for s in range(3)]
        for a, b in zip(graph.stylize(frames), lite.stylize(frames), strict=True):
            assert a.shape == b.shape == (*size, 3)
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_reduced_precisions_run_and_stay_close(slim: Path) -> None:
    frames = [frame(40, 56, seed=s) for s in range(2)]
    ref = fast.FastEngine(slim).stylize(frames)
    for precision in ("bf16", "fp16"):
        out = fast.FastEngine(slim, precision=precision).stylize(frames)
        assert np.abs(np.stack(out).astype(int) - np.stack(ref).astype(int)).mean() < 2


def test_bad_precision_or_backend_is_one_line(slim: Path) -> None:
    with pytest.raises(UsageError, match="backend 'xnnpack' with bf16"):
        fast.FastEngine(slim, precision="bf16", backend="xnnpack")
    with pytest.raises(UsageError, match="--precision 'fp8'"):
        resolve("fp8", False, frozenset())


def test_auto_precision_follows_the_hardware_and_backend() -> None:
    assert resolve("auto", False, frozenset({"avx512_bf16"}), "openvino") == "fp32"
    assert resolve("auto", False, frozenset({"amx_bf16"}), "openvino") == "bf16"
    assert resolve("auto", False, frozenset({"amx_bf16"}), "xnnpack") == "fp32"
    assert resolve("auto", False, frozenset({"avx2", "fma"})) == "fp32"
    assert resolve("auto", False, frozenset({"avx512f", "avx512_bf16"})) == "bf16"
    assert resolve("auto", False, frozenset({"amx_bf16"})) == "bf16"
    assert resolve("auto", True, frozenset()) == "fp16"
    assert resolve("fp32", True, frozenset({"amx_bf16"})) == "fp32"


AVX2 = frozenset({"avx", "avx2", "fma"})
AVX512_BF16 = frozenset({"avx", "avx2", "fma", "avx512f", "avx512_bf16"})
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16"}


def test_choose_picks_the_backend_for_each_cpu_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags are stated, so both CPU kinds are tested on any machine."""
    monkeypatch.delenv(fast.BACKEND_ENV, raising=False)
    monkeypatch.setattr(fast.openvino_cpu, "available", lambda: True)
    assert fast.choose("auto", False, AVX2) == ("fp32", "xnnpack")
    assert fast.choose("auto", False, frozenset()) == ("fp32", "xnnpack")
    assert fast.choose("auto", False, frozenset({"asimd", "bf16"})) == ("fp32", "xnnpack")  # an ARM CPU
    assert fast.choose("auto", False, AVX512_BF16) == ("fp32", "openvino")  # its bf16 is slower without AMX
    assert fast.choose("auto", False, AMX) == ("bf16", "openvino")
    assert fast.choose("bf16", False, AVX512_BF16) == ("bf16", "openvino")
    assert fast.choose("bf16", False, AVX2) == ("bf16", "tf")  # only the TF graph runs it there
    assert fast.choose("fp16", False, AMX) == ("fp16", "tf")
    assert fast.choose("auto", True, AMX) == ("fp16", "tf")
    monkeypatch.setattr(fast.openvino_cpu, "available", lambda: False)  # the package missing: as before it
    assert fast.choose("auto", False, AVX512_BF16) == ("fp32", "xnnpack")


def test_the_backend_env_forces_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast.openvino_cpu, "available", lambda: True)
    for backend, flags, want in [("openvino", AVX2, ("fp32", "openvino")), ("xnnpack", AMX, ("fp32", "xnnpack")),
                                 ("tf", AVX512_BF16, ("bf16", "tf")), ("tf", AVX2, ("fp32", "tf"))]:
        monkeypatch.setenv(fast.BACKEND_ENV, backend)
        assert fast.choose("auto", False, flags) == want
    monkeypatch.setenv(fast.BACKEND_ENV, "xnnpack")
    assert fast.choose("bf16", False, AMX) == ("bf16", "xnnpack")  # forced: FastEngine refuses it in one line
    monkeypatch.setenv(fast.BACKEND_ENV, "cuda")
    with pytest.raises(UsageError, match="VPIPE_FAST_BACKEND='cuda': expected one of tf, xnnpack, openvino"):
        fast.choose("auto", False, AVX2)


def test_cpu_flags_reads_the_flags_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()
