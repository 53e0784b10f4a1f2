"""`vpipe models import x.t7`: Johnson's Torch7 fast-neural-style models as fast-engine models.

The .t7 files are written here (tests/t7_writer.py) with the real structure and known random weights;
the engine's output is compared with a numpy forward pass of the Torch net (direct convolutions, the
modules as torch nn and fast_neural_style define them, VGG pre/deprocessing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import Result

from pipeline.engines.fast import variant as fast_spec
from pipeline.engines.fast.engine import FastEngine
from pipeline.engines.fast.padding import MARGIN, pad_to_multiple
from pipeline.errors import ModelError
from pipeline.models import torch7 as t7
from tests import t7_writer as w

# ------------------------------------------------------------------- the Torch definition, in numpy


def _conv(x: np.ndarray, m: w.Module) -> np.ndarray:
    f = m.fields
    s, p, k = f["dH"], f["padH"], f["kH"]
    wt, b = f["weight"].astype(np.float64), f["bias"].astype(np.float64)
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    ho, wo = (xp.shape[1] - k) // s + 1, (xp.shape[2] - k) // s + 1
    out = np.zeros((wt.shape[0], ho, wo)) + b[:, None, None]
    for i in range(k):
        for j in range(k):
            out += np.einsum("oc,chw->ohw", wt[:, :, i, j], xp[:, i:i + s * ho:s, j:j + s * wo:s])
    return out


def _full_conv(x: np.ndarray, m: w.Module) -> np.ndarray:
    f = m.fields
    s, p, k, a = f["dH"], f["padH"], f["kH"], f["adjH"]
    wt, b = f["weight"].astype(np.float64), f["bias"].astype(np.float64)
    _, h, wd = x.shape
    big = np.zeros((wt.shape[1], (h - 1) * s + k + a, (wd - 1) * s + k + a))
    for i in range(k):
        for j in range(k):
            big[:, i:i + s * h:s, j:j + s * wd:s] += np.einsum("co,chw->ohw", wt[:, :, i, j], x)
    ho, wo = (h - 1) * s - 2 * p + k + a, (wd - 1) * s - 2 * p + k + a
    return big[:, p:p + ho, p:p + wo] + b[:, None, None]


def forward(m: w.Module, x: Any) -> Any:
    """nn module semantics (evaluate mode) on one C x H x W float64 image."""
    f, name = m.fields, m.typename
    if name == "nn.Sequential":
        for sub in f["modules"]:
            x = forward(sub, x)
        return x
    if name == "nn.ConcatTable":
        return [forward(sub, x) for sub in f["modules"]]
    if name == "nn.CAddTable":
        return sum(x[1:], x[0])
    if name == "nn.SpatialReflectionPadding":
        return np.pad(x, ((0, 0), (f["pad_t"], f["pad_b"]), (f["pad_l"], f["pad_r"])), mode="reflect")
    if name == "nn.SpatialConvolution":
        return _conv(x, m)
    if name == "nn.SpatialFullConvolution":
        return _full_conv(x, m)
    if name == "nn.InstanceNormalization":
        mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
        return (x - mean) / np.sqrt(var + f["eps"]) * f["weight"][:, None, None] + f["bias"][:, None, None]
    if name == "nn.SpatialBatchNormalization":
        c = (slice(None), None, None)
        return (x - f["running_mean"][c]) / np.sqrt(f["running_var"][c] + f["eps"]) * f["weight"][c] + f["bias"][c]
    if name == "nn.ReLU":
        return np.maximum(x, 0)
    if name == "nn.ShaveImage":
        s = f["size"]
        return x[:, s:-s, s:-s]
    if name in ("nn.Identity", "nn.TotalVariation"):
        return x
    if name == "nn.Tanh":
        return np.tanh(x)
    if name == "nn.MulConstant":
        return x * f["constant_scalar"]
    raise AssertionError(name)


VGG_MEAN = np.array([103.939, 116.779, 123.68])


def torch_stylize(model: w.Module, frame: np.ndarray) -> np.ndarray:
    """fast_neural_style.lua on an RGB uint8 image: vgg preprocess, the model, deprocess -> float 0..255."""
    x = frame.astype(np.float64).transpose(2, 0, 1)[::-1] - VGG_MEAN[:, None, None]  # RGB 0..255 -> BGR - mean
    y = forward(model, x)
    return ((y + VGG_MEAN[:, None, None])[::-1]).transpose(1, 2, 0)  # BGR -> RGB, 0..255


def reference(model: w.Module, frame: np.ndarray) -> np.ndarray:
    """What the engine should give: the Torch net on the frame with the engine's reflect margin."""
    h, wd = frame.shape[:2]
    padded, _ = pad_to_multiple(frame, 4, MARGIN)
    out = torch_stylize(model, padded)[MARGIN:MARGIN + h, MARGIN:MARGIN + wd]
    return np.clip(out, 0, 255)


def frame(h: int, wd: int, seed: int = 1) -> np.ndarray:
    """Smooth content with some texture, like a photo (random pixels would saturate every norm)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:wd]
    base = np.stack([128 + 90 * np.sin(xx / 7 + c) * np.cos(yy / 9 - c) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def close(got: np.ndarray, want: np.ndarray) -> None:
    diff = np.abs(got.astype(np.float64) - want)
    assert got.shape == want.shape and got.dtype == np.uint8
    assert diff.max() <= 2.0 and diff.mean() < 0.3, (diff.max(), diff.mean())
    assert want.std() > 5  # the comparison is not between two flat images


# ------------------------------------------------------------------- fixtures

FAMILIES = ("eccv16", "instance_norm")


@pytest.fixture(scope="module")
def nets() -> dict[str, w.Module]:
    return {fam: w.transform_net(fam, seed=i) for i, fam in enumerate(FAMILIES)}


@pytest.fixture(scope="module")
def folders(nets: dict[str, w.Module], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for fam, net in nets.items():
        root = tmp_path_factory.mktemp(fam)
        source = w.save(root / f"{fam}.t7", w.checkpoint(net))
        arrays, spec, facts = t7.convert(t7.read(source))
        t7.write_folder(root / "model", arrays, spec, facts)
        out[fam] = root / "model"
    return out


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    from click.testing import CliRunner

    from pipeline.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("VPIPE_MODELS_DIR", str(tmp_path / "extra"))
    return lambda *args: CliRunner().invoke(main, list(args), catch_exceptions=False)


# ------------------------------------------------------------------- tests


@pytest.mark.parametrize("family", FAMILIES)
def test_tf_graph_matches_torch(family: str, nets: dict[str, w.Module], folders: dict[str, Path]) -> None:
    img = frame(36, 52)
    engine = FastEngine(folders[family], backend="tf")
    close(engine.stylize([img])[0], reference(nets[family], img))


@pytest.mark.parametrize("family", FAMILIES)
def test_xnnpack_matches_torch(family: str, nets: dict[str, w.Module], folders: dict[str, Path],
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    img = frame(30, 41, seed=2)  # not a multiple of 4: the engine pads and crops back
    engine = FastEngine(folders[family], backend="xnnpack")
    close(engine.stylize([img])[0], reference(nets[family], img))


@pytest.mark.parametrize("family", FAMILIES)
def test_tiles_match_torch(family: str, nets: dict[str, w.Module], folders: dict[str, Path]) -> None:
    from pipeline.engines.fast import tiles as fast_tiles

    img = frame(120, 200, seed=3)
    engine = FastEngine(folders[family], backend="tf")
    tiled = fast_tiles.stylize(img, engine._tiles, fast_tiles.MIN_CORE)
    close(tiled, reference(nets[family], img))


def test_manifest_fields(folders: dict[str, Path]) -> None:
    ecc = json.loads((folders["eccv16"] / "manifest.json").read_text())["vpipe"]
    inn = json.loads((folders["instance_norm"] / "manifest.json").read_text())["vpipe"]
    assert set(ecc["norms"]) == {"affine"} and inn["norms"][:-1] == ["instance"] * 15 and inn["norms"][-1] == "affine"
    assert ecc["input_pad"] == 40 and ecc["residual"] == "valid" and inn["eps"] == 1e-5
    assert ecc["input_shift"] == pytest.approx([-123.68, -116.779, -103.939])
    assert ecc["output_scale"] == [150.0] * 3 and ecc["decoder"] == "transpose"


def test_zero_padded_blocks_and_resnet(tmp_path: Path) -> None:
    """padding_type 'zero' (padded residual convs, Identity shortcut, no leading pad), resnet preprocessing."""
    net = w.transform_net("instance_norm", blocks=2, padding_type="zero", tanh_constant=1.5)
    source = w.save(tmp_path / "z.t7", w.checkpoint(net, preprocessing="resnet"))
    arrays, spec, facts = t7.convert(t7.read(source))
    assert spec.input_pad == 0 and spec.residual == "same"
    t7.write_folder(tmp_path / "m", arrays, spec, facts)
    img = frame(32, 40)
    mean, std = np.array((0.485, 0.456, 0.406)), np.array((0.229, 0.224, 0.225))
    padded, _ = pad_to_multiple(img, 4, MARGIN)
    x = (padded.astype(np.float64) / 255 - mean) / std
    y = forward(net, x.transpose(2, 0, 1)).transpose(1, 2, 0)
    want = np.clip((y * std + mean) * 255, 0, 255)[MARGIN:MARGIN + 32, MARGIN:MARGIN + 40]
    close(FastEngine(tmp_path / "m", backend="tf").stylize([img])[0], want)


def test_cli_import(cli: Callable[..., Result], tmp_path: Path, nets: dict[str, w.Module]) -> None:
    source = w.save(tmp_path / "candy.t7", w.checkpoint(nets["instance_norm"]))
    result = cli("models", "import", str(source))
    assert result.exit_code == 0, result.output
    target = tmp_path / "xdg" / "vpipe" / "models" / "candy"
    assert "candy: 49 files imported" in result.output and (target / "manifest.json").is_file()
    again = cli("models", "import", str(source))
    assert again.exit_code != 0 and "--force" in again.output
    named = cli("models", "import", str(source), "--name", "mine/candy2")
    assert named.exit_code == 0 and (tmp_path / "xdg" / "vpipe" / "models" / "mine" / "candy2").is_dir()
    engine = FastEngine(target, backend="tf")
    img = frame(25, 28)
    close(engine.stylize([img])[0], reference(nets["instance_norm"], img))
    with pytest.raises(ValueError, match="too small for this model"):
        engine.stylize([frame(24, 28)])  # Torch's reflection padding needs more than the padded side


def _bad_files(tmp_path: Path, good: bytes) -> dict[str, Path]:
    bad = {}
    bad["truncated"] = tmp_path / "truncated.t7"
    bad["truncated"].write_bytes(good[: len(good) // 2])
    bad["cut in a header"] = tmp_path / "header.t7"
    bad["cut in a header"].write_bytes(good[:6])
    bad["a number"] = w.save(tmp_path / "number.t7", 3.5)
    bad["a table without a model"] = w.save(tmp_path / "table.t7", {"opt": {"x": 1}})
    bad["a tensor"] = w.save(tmp_path / "tensor.t7", np.zeros((2, 2), np.float32))
    net = w.transform_net("eccv16", blocks=1)
    net.fields["modules"][5] = w.Module("nn.SpatialMaxPooling", {"kW": 2, "kH": 2})
    bad["unknown module"] = w.save(tmp_path / "pool.t7", w.checkpoint(net))
    short = w.transform_net("eccv16", blocks=1)
    short.fields["modules"] = short.fields["modules"][:-3]  # no Tanh
    bad["no tanh"] = w.save(tmp_path / "notanh.t7", w.checkpoint(short))
    lying = w.transform_net("eccv16", blocks=1)
    lying.fields["modules"][1].fields["nOutputPlane"] = 99  # weight shape disagrees
    bad["wrong shape"] = w.save(tmp_path / "shape.t7", w.checkpoint(lying))
    (tmp_path / "garbage.t7").write_bytes(b"\x07\x00\x00\x00" + bytes(range(200)))
    bad["garbage"] = tmp_path / "garbage.t7"
    return bad


def test_malformed_files_are_one_line(cli: Callable[..., Result], tmp_path: Path) -> None:
    good = w.save(tmp_path / "good.t7", w.checkpoint(w.transform_net("eccv16", blocks=1))).read_bytes()
    for what, path in _bad_files(tmp_path, good).items():
        result = cli("models", "import", str(path), "--name", "x")
        lines = [line for line in result.output.strip().splitlines() if line.strip()]
        assert result.exit_code != 0, (what, result.output)
        assert len(lines) == 1 and "Traceback" not in result.output, (what, result.output)
        assert str(path.name) in lines[0], (what, lines[0])
    assert not (tmp_path / "xdg" / "vpipe" / "models" / "x").exists()


def test_spec_fields_are_validated(folders: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    for field, value, words in [("norms", ["instance"] * 3, "norms"), ("eps", 0, "eps"),
                                ("input_shift", [1, 2], "input_shift"), ("residual", "odd", "residual"),
                                ("input_pad", 36, "input_pad"), ("output_scale", "x", "output_scale")]:
        folder = tmp_path / field
        shutil.copytree(folders["eccv16"], folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["vpipe"][field] = value
        (folder / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ModelError, match=words):
            FastEngine(folder, backend="tf")


def test_default_spec_is_engstrom() -> None:
    assert fast_spec.Spec().default and fast_spec.parse("m", None, []) == fast_spec.Spec()


@pytest.mark.parametrize("family", FAMILIES)
def test_reduced_precision_runs_the_same_net(family: str, nets: dict[str, w.Module], folders: dict[str, Path]) -> None:
    """bf16 convs (the GPU/AVX-512 path) on the converted net stay near the Torch output."""
    from pipeline.metrics import psnr

    img = frame(48, 64, seed=4)
    out = FastEngine(folders[family], precision="bf16", backend="tf").stylize([img])[0]
    want = np.round(reference(nets[family], img)).astype(np.uint8)
    assert psnr(out, want) >= 30.0, psnr(out, want)
