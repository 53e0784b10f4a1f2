"""Johnson's Torch7 models (jcjohnson/fast-neural-style, `eccv16/*.t7` and `instance_norm/*.t7`) as
fast-engine model folders, read with `torchfile` (no Torch needed).

What those checkpoints hold (fast_neural_style/models.lua and train.lua, default options): a table
{model = nn.Sequential, opt = {...}} (or the bare Sequential, as scripts/convert_network.lua writes):

    SpatialReflectionPadding(40)                  train.lua adds it for padding_type 'reflect-start'
    c9s1-32, d64, d128: SpatialConvolution (zero padding (k-1)/2), norm, ReLU
    R128 x 5: ConcatTable{Sequential{conv 3x3 unpadded, norm, ReLU, conv 3x3 unpadded, norm},
                          ShaveImage(2)} -> CAddTable                      ('reflect' / 'zero':
                          padded convs and Identity)
    u64, u32: SpatialFullConvolution(3x3, stride 2, pad 1, adj 1), norm, ReLU
    c9s1-3: SpatialConvolution (no norm), Tanh, MulConstant(tanh_constant), TotalVariation (identity)

norm: SpatialBatchNormalization (eccv16; eval mode: running statistics) or InstanceNormalization
(eps 1e-5). Input: `opt.preprocessing` "vgg" (BGR, 0..255, minus the VGG mean) or "resnet".

How each difference becomes the fast engine's layout (pipeline/engines/fast/variant.py):
- RGB -> BGR and the resnet 1/(255 std) scale fold into the first kernel's input channels (exact: the
  net zero-pads); the mean becomes "input_shift"; BGR -> RGB out permutes the last conv's outputs.
- batch norm (and a conv bias under it, and the last conv's bias) fold into "affine" scale/shift;
  a bias under instance norm cancels and is dropped; "eps" is the instance norm's.
- the stride-2 convs and full convs pad 1 before, TF's SAME 3x3 pads 0: they are stored as 4x4
  kernels with a zero last row and column, which TF's SAME (and the engine's sub-pixel form) aligns
  exactly like Torch.
- 'reflect-start': "input_pad" 40 and "residual" "valid"; 'zero' padding: neither.
- out = tanh(x) * tanh_constant, deprocessed: "output_scale" and "output_shift" per RGB channel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.engines.fast import variant, weights
from pipeline.engines.fast.variant import Spec
from pipeline.errors import ModelError
from pipeline.models import catalogue
from pipeline.models.store import Result, discard, install, own_target, staging_for

VGG_MEAN_BGR = (103.939, 116.779, 123.68)
RESNET_MEAN, RESNET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ALIASES = {"cudnn.": "nn.", "nn.SpatialConvolutionMM": "nn.SpatialConvolution"}
IGNORED = {"nn.TotalVariation", "nn.Identity", "nn.Dropout"}  # identities at inference


class T7Error(ModelError):
    """A .t7 file that is not a model this importer understands (one line)."""


# ------------------------------------------------------------------------------------------ reading


def _install_safe_readers() -> None:
    """torchfile maps a tensor onto its storage without checking that the storage holds it (a
    truncated file would read past the array): its Float/Double readers, with that check."""
    import torchfile

    def storage_reader(dtype: Any) -> Callable[[Any, Any], np.ndarray]:
        def read(reader: Any, version: Any) -> np.ndarray:
            size = reader.read_long()
            if not 0 <= size <= 1 << 34:
                raise T7Error(f"a storage of {size} numbers")
            data = np.fromfile(reader.f, dtype=dtype, count=size)
            if data.size != size:
                raise T7Error("the file ends inside a tensor (truncated)")
            return data
        return read

    def tensor_reader(dtype: Any) -> Callable[[Any, Any], np.ndarray]:
        def read(reader: Any, version: Any) -> np.ndarray:
            ndim = reader.read_int()
            if not 0 <= ndim <= 8:
                raise T7Error(f"a tensor of {ndim} dimensions")
            size, stride = reader.read_long_array(ndim), reader.read_long_array(ndim)
            offset = reader.read_long() - 1
            storage = reader.read_obj()
            if storage is None or ndim == 0:
                return np.empty(0, dtype)
            if not isinstance(storage, np.ndarray) or storage.dtype != np.dtype(dtype):
                raise T7Error("a tensor whose storage is of another type")
            if min(size) < 0 or min(stride) < 0 or offset < 0:
                raise T7Error("a tensor with negative sizes or strides")
            extent = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
            if 0 in size:
                return np.empty(size, dtype)
            if extent > storage.size:
                raise T7Error("a tensor larger than its storage")
            return np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                                   strides=[storage.itemsize * s for s in stride]).copy()
        return read

    for kind, dtype in (("Float", np.float32), ("Double", np.float64), ("Cuda", np.float32)):
        torchfile.type_handlers[f"torch.{kind}Storage".encode()] = storage_reader(dtype)
        torchfile.type_handlers[f"torch.{kind}Tensor".encode()] = tensor_reader(dtype)


def read(path: Path) -> Any:
    """The deserialized checkpoint; any failure is one line."""
    try:
        import torchfile
    except ImportError:
        raise ModelError("reading .t7 models needs the torchfile package: pip install torchfile") from None
    _install_safe_readers()
    try:
        return torchfile.load(str(path))
    except T7Error as exc:
        raise T7Error(f"{path}: not a readable Torch7 file ({exc})") from None
    except (OSError, MemoryError) as exc:
        raise T7Error(f"{path}: cannot read it ({exc})") from None
    except Exception as exc:  # torchfile raises struct.error, ValueError, ... on bad bytes
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "unpack requires" in detail or isinstance(exc, EOFError):
            detail = "the file ends early (truncated)"
        raise T7Error(f"{path}: not a readable Torch7 file ({detail[:120]})") from None


def _get(obj: Any, key: str) -> Any:
    data = obj if isinstance(obj, dict) else getattr(obj, "_obj", None)  # a table, or a torch object's
    if isinstance(data, dict):
        return data.get(key.encode(), data.get(key))
    return None


def _typename(obj: Any) -> str:
    name = None if isinstance(obj, dict) else getattr(obj, "_typename", None)
    if not isinstance(name, bytes | str):
        return type(obj).__name__
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    for old, new in ALIASES.items():
        text = text.replace(old, new) if text.startswith(old) or text == old else text
    return text


def _text(value: Any) -> str | None:
    return value.decode("latin-1") if isinstance(value, bytes) else value if isinstance(value, str) else None


def _num(obj: Any, key: str, default: float | None = None) -> float:
    value = _get(obj, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        if default is not None and value is None:
            return default
        raise T7Error(f"{_typename(obj)} has no number {key!r}")
    return float(value)


def _tensor(obj: Any, key: str, shape: tuple[int, ...] | None = None, optional: bool = False) -> np.ndarray | None:
    value = _get(obj, key)
    if value is None and optional:
        return None
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        raise T7Error(f"{_typename(obj)} has no float tensor {key!r}")
    arr = np.asarray(value, np.float64)
    if shape is not None:
        if arr.size != math.prod(shape):
            raise T7Error(f"{_typename(obj)}.{key} has {arr.size} numbers, expected {list(shape)}")
        arr = arr.reshape(shape)
    if not np.isfinite(arr).all():
        raise T7Error(f"{_typename(obj)}.{key} holds NaN or infinite values")
    return arr


# ------------------------------------------------------------------------------------------ parsing


@dataclass
class Conv:
    weight: np.ndarray  # Torch layout: conv [out, in, k, k]; full conv [in, out, k, k]
    bias: np.ndarray | None
    stride: int
    full: bool = False
    pad: int = 0  # zero padding


@dataclass
class Norm:
    kind: str  # "instance" or "batch"
    scale: np.ndarray
    shift: np.ndarray
    eps: float


@dataclass
class Layer:
    conv: Conv
    norm: Norm | None = None
    relu: bool = False


@dataclass
class Net:
    pad: int = 0  # leading reflection padding
    encoder: list[Layer] = field(default_factory=list)
    blocks: list[tuple[Layer, Layer, int]] = field(default_factory=list)  # two layers, shortcut crop
    decoder: list[Layer] = field(default_factory=list)
    last: Layer | None = None
    tanh_constant: float = 1.0


def _conv(m: Any, full: bool) -> tuple[Conv, int]:
    """A (full) convolution and its zero padding; square kernels and strides only."""
    n_in, n_out = int(_num(m, "nInputPlane")), int(_num(m, "nOutputPlane"))
    kh, kw, dh, dw = (int(_num(m, k)) for k in ("kH", "kW", "dH", "dW"))
    ph, pw = int(_num(m, "padH", 0)), int(_num(m, "padW", 0))
    if kh != kw or dh != dw or ph != pw or min(n_in, n_out, kh, dh) < 1 or ph < 0:
        raise T7Error(f"{_typename(m)} {kh}x{kw} stride {dh}x{dw} pad {ph}x{pw}: only square kernels, "
                      "strides and paddings are supported")
    if full and (int(_num(m, "adjH", 0)), int(_num(m, "adjW", 0))) != (dh - 1, dh - 1):
        raise T7Error(f"{_typename(m)}: only adj = stride - 1 (output exactly stride x input) is supported")
    shape = (n_in, n_out, kh, kw) if full else (n_out, n_in, kh, kw)
    weight = _tensor(m, "weight", shape)
    bias = _tensor(m, "bias", (n_out,), optional=True)
    assert weight is not None
    return Conv(weight, bias, dh, full, ph), ph


def _norm(m: Any, kind: str, channels: int) -> Norm:
    scale = _tensor(m, "weight", (channels,), optional=True)
    shift = _tensor(m, "bias", (channels,), optional=True)
    scale = np.ones(channels) if scale is None else scale
    shift = np.zeros(channels) if shift is None else shift
    eps = _num(m, "eps", 1e-5)
    if kind == "instance":
        return Norm("instance", scale, shift, eps)
    mean = _tensor(m, "running_mean", (channels,))
    var = _tensor(m, "running_var", (channels,), optional=True)
    inv: np.ndarray | None
    if var is not None:
        inv = 1 / np.sqrt(var + eps)
    else:  # nn before mid-2016 kept running_std = 1 / sqrt(var + eps)
        inv = _tensor(m, "running_std", (channels,))
    assert mean is not None and inv is not None
    return Norm("batch", scale * inv, shift - mean * scale * inv, eps)


def _modules(m: Any) -> list[Any]:
    mods = _get(m, "modules")
    if isinstance(mods, dict):  # a table torchfile did not turn into a list
        mods = [mods[k] for k in sorted(mods)]
    if not isinstance(mods, list):
        raise T7Error(f"{_typename(m)} has no list of modules")
    return mods


def _layers(mods: list[Any], where: str) -> list[Layer | tuple[str, Any]]:
    """Modules -> layers (a conv with its norm and ReLU); the other modules as (class name, module)."""
    out: list[Layer | tuple[str, Any]] = []
    for m in mods:
        name = _typename(m)
        if name in ("nn.SpatialConvolution", "nn.SpatialFullConvolution"):
            conv, pad = _conv(m, name.endswith("FullConvolution"))
            k = conv.weight.shape[2]
            if conv.full and (k % 2 == 0 or pad != (k - 1) // 2):
                raise T7Error(f"{where}: full convolution {k}x{k} with padding {pad}: expected {(k - 1) // 2}")
            if k % 2 == 0 or (not conv.full and pad not in (0, (k - 1) // 2)):
                raise T7Error(f"{where}: convolution {k}x{k} with padding {pad}: expected 0 or {(k - 1) // 2}")
            out.append(Layer(conv))
        elif name in ("nn.SpatialBatchNormalization", "nn.InstanceNormalization"):
            last = out[-1] if out else None
            if not isinstance(last, Layer) or last.norm is not None or last.relu:
                raise T7Error(f"{where}: {name} not right after a convolution")
            channels = last.conv.weight.shape[1 if last.conv.full else 0]
            last.norm = _norm(m, "instance" if "Instance" in name else "batch", channels)
        elif name == "nn.ReLU":
            last = out[-1] if out else None
            if not isinstance(last, Layer) or last.relu:
                raise T7Error(f"{where}: ReLU not after a convolution")
            last.relu = True
        elif name in IGNORED:
            continue
        elif name in ("nn.SpatialReflectionPadding", "nn.Sequential", "nn.ConcatTable", "nn.CAddTable",
                      "nn.ShaveImage", "nn.Tanh", "nn.MulConstant"):
            out.append((name, m))
        else:
            raise T7Error(f"{where}: unsupported module {name} (a fast-neural-style transform net has "
                          "convolutions, batch/instance norm, ReLU, residual blocks, Tanh, MulConstant)")
    return out


def _reflect(m: Any) -> int:
    pads = {int(_num(m, k)) for k in ("pad_l", "pad_r", "pad_t", "pad_b")}
    if len(pads) != 1:
        raise T7Error("nn.SpatialReflectionPadding with unequal sides is not supported")
    return pads.pop()


def _block(m: Any, index: int) -> tuple[Layer, Layer, int]:
    """A residual block: Sequential{ConcatTable{Sequential{...}, ShaveImage|Identity}, CAddTable}."""
    where = f"residual block {index + 1}"
    parts = _modules(m)
    names = [_typename(p) for p in parts]
    if names != ["nn.ConcatTable", "nn.CAddTable"]:
        raise T7Error(f"{where}: expected ConcatTable then CAddTable, found {', '.join(names)}")
    branches = _modules(parts[0])
    if len(branches) != 2 or _typename(branches[0]) != "nn.Sequential":
        raise T7Error(f"{where}: expected a conv branch and a shortcut")
    shortcut = _typename(branches[1])
    crop = int(_num(branches[1], "size")) if shortcut == "nn.ShaveImage" else 0
    if shortcut not in ("nn.ShaveImage", "nn.Identity"):
        raise T7Error(f"{where}: unsupported shortcut {shortcut}")
    inner = _layers(_modules(branches[0]), where)
    convs = [x for x in inner if isinstance(x, Layer)]
    if len(inner) != 2 or len(convs) != 2:
        kinds = [x[0] if isinstance(x, tuple) else "conv" for x in inner]
        raise T7Error(f"{where}: expected two convolutions (padding modules are not supported), found {kinds}")
    a, b = convs
    pads = {a.conv.pad, b.conv.pad}
    valid = pads == {0}
    if a.norm is None or b.norm is None or not a.relu or b.relu or (crop != 0) != valid or len(pads) != 1 \
            or any(c.conv.stride != 1 or c.conv.full for c in convs):
        raise T7Error(f"{where}: expected conv, norm, ReLU, conv, norm with both convs unpadded and a "
                      "ShaveImage shortcut, or both padded and an Identity shortcut")
    if valid and crop != sum(c.conv.weight.shape[2] // 2 for c in convs):
        raise T7Error(f"{where}: ShaveImage({crop}) does not match its unpadded convs")
    return a, b, crop


def parse(model: Any) -> Net:
    """The transform net of a fast-neural-style checkpoint's model (nn.Sequential)."""
    if _typename(model) != "nn.Sequential":
        raise T7Error(f"the model is a {_typename(model)}, expected an nn.Sequential transform net")
    items = _layers(_modules(model), "model")
    net = Net()
    i = 0
    if i < len(items) and isinstance(items[i], tuple) and items[i][0] == "nn.SpatialReflectionPadding":  # type: ignore[index]
        net.pad = _reflect(items[i][1])  # type: ignore[index]
        i += 1
    while i < len(items) and isinstance(items[i], Layer) and not items[i].conv.full:  # type: ignore[union-attr]
        net.encoder.append(items[i])  # type: ignore[arg-type]
        i += 1
    while i < len(items) and isinstance(items[i], tuple) and items[i][0] == "nn.Sequential":  # type: ignore[index]
        net.blocks.append(_block(items[i][1], len(net.blocks)))  # type: ignore[index]
        i += 1
    while i < len(items):
        layer = items[i]
        if not isinstance(layer, Layer):
            break
        i += 1
        if not layer.conv.full:
            net.last = layer
            break
        net.decoder.append(layer)
    rest = items[i:]
    names = [x[0] if isinstance(x, tuple) else "convolution" for x in rest]
    if names and names[0] == "nn.Tanh":
        names.pop(0)
        if names and names[0] == "nn.MulConstant":
            net.tanh_constant = _num(rest[1][1], "constant_scalar")  # type: ignore[index]
            names.pop(0)
    else:
        raise T7Error("the model does not end with Tanh after its last convolution "
                      "(not a fast-neural-style transform net)")
    if names:
        raise T7Error(f"unexpected {names[0]} after the output Tanh")
    _check(net)
    return net


def _check(net: Net) -> None:
    shape = "3 convolutions (9x9, stride 2, stride 2), residual blocks, 2 full convolutions, a last convolution"
    if len(net.encoder) != 3 or len(net.decoder) != 2 or net.last is None or not net.blocks:
        raise T7Error(f"unsupported layout: expected {shape}; found {len(net.encoder)} encoder convs, "
                      f"{len(net.blocks)} residual blocks, {len(net.decoder)} full convs")
    hidden = [*net.encoder, *(x for a, b, _ in net.blocks for x in (a, b)), *net.decoder]
    strides = [c.conv.stride for c in net.encoder] + [c.conv.stride for c in net.decoder]
    if strides != [1, 2, 2, 2, 2]:
        raise T7Error(f"unsupported strides {strides}: expected 1, 2, 2 in the encoder, 2, 2 in the decoder")
    if any(x.norm is None for x in hidden) or net.last.norm is not None or net.last.relu:
        raise T7Error("unsupported layout: every conv but the last needs a norm, the last none")
    if any(not x.relu for x in [*net.encoder, *net.decoder]):
        raise T7Error("unsupported layout: encoder and decoder convs need a ReLU")
    if any(x.conv.pad != x.conv.weight.shape[2] // 2 for x in [*net.encoder, net.last]):
        raise T7Error("unsupported layout: encoder convs and the last conv must be zero-padded by (k - 1) / 2")
    kinds = {x.norm.kind for x in hidden if x.norm}
    if len(kinds) != 1:
        raise T7Error("mixed batch and instance normalization is not supported")
    if len({x.norm.eps for x in hidden if x.norm and x.norm.kind == "instance"}) > 1:
        raise T7Error("instance norms with different eps are not supported")
    crops = {c for _, _, c in net.blocks}
    if len(crops) != 1 or 4 * sum(c for _, _, c in net.blocks) != net.pad:
        raise T7Error(f"leading reflection padding {net.pad} does not match what the residual blocks crop "
                      f"(4 x {sum(c for _, _, c in net.blocks)})")


# ------------------------------------------------------------------------------------------ converting


def _even(kernel: np.ndarray) -> np.ndarray:
    """A [k, k, a, b] kernel (k odd) as [k + 1, k + 1, a, b], zero last row and column: TF's SAME
    stride-2 conv and transposed conv then pad (k - 1) / 2 before, as Torch does."""
    k = kernel.shape[0]
    out = np.zeros((k + 1, k + 1, *kernel.shape[2:]), kernel.dtype)
    out[:k, :k] = kernel
    return out


def convert(checkpoint: Any) -> tuple[list[np.ndarray], Spec, dict[str, Any]]:
    """The fast engine's arrays (network order: kernel, shift, scale per layer) and spec; and facts
    for the manifest."""
    model = _get(checkpoint, "model") if isinstance(checkpoint, dict) else None
    opt = _get(checkpoint, "opt") if model is not None else None
    model = checkpoint if model is None else model
    if isinstance(model, dict) or not hasattr(model, "_typename"):
        what = ("a table without a model" if isinstance(model, dict) else "a tensor" if isinstance(model, np.ndarray)
                else "a list" if isinstance(model, list) else f"a {type(model).__name__}")
        raise T7Error(f"it holds {what}, expected a fast-neural-style checkpoint (a table with a model, "
                      "or an nn.Sequential)")
    net = parse(model)
    preprocessing = _text(_get(opt, "preprocessing")) if opt is not None else None
    preprocessing = preprocessing or "vgg"
    if preprocessing == "vgg":
        in_scale, in_perm = np.ones(3), [2, 1, 0]  # RGB input -> the BGR the net was trained on
        input_shift = tuple(-m for m in VGG_MEAN_BGR[::-1])
        out_scale = [net.tanh_constant] * 3
        out_shift = list(VGG_MEAN_BGR[::-1])
    elif preprocessing == "resnet":
        in_scale, in_perm = 1 / (255 * np.array(RESNET_STD)), [0, 1, 2]
        input_shift = tuple(-255 * m for m in RESNET_MEAN)
        out_scale = [net.tanh_constant * 255 * s for s in RESNET_STD]
        out_shift = [255 * m for m in RESNET_MEAN]
    else:
        raise T7Error(f"unknown preprocessing {preprocessing!r} (expected vgg or resnet)")
    assert net.last is not None
    layers = [*net.encoder, *(x for a, b, _ in net.blocks for x in (a, b)), *net.decoder, net.last]
    arrays: list[np.ndarray] = []
    norms: list[str] = []
    eps = 1e-5
    for index, layer in enumerate(layers):
        w = layer.conv.weight
        kernel = np.transpose(w, (2, 3, 1, 0))  # conv [out, in, k, k] -> [k, k, in, out]; full conv
        # [in, out, k, k] -> [k, k, out, in], the fast engine's "transpose" layout
        if index == 0:
            kernel = kernel[:, :, in_perm, :] * in_scale[None, None, :, None]
        bias = layer.conv.bias if layer.conv.bias is not None else np.zeros(kernel.shape[3 if not layer.conv.full else 2])
        if layer.norm is None:  # the last conv: its bias, outputs BGR -> RGB where the net speaks BGR
            perm = in_perm
            kernel, bias = kernel[..., perm], bias[perm]
            scale, shift, kind = np.ones_like(bias), bias, "affine"
        elif layer.norm.kind == "instance":  # a bias under instance norm cancels
            scale, shift, kind, eps = layer.norm.scale, layer.norm.shift, "instance", layer.norm.eps
        else:
            scale, shift, kind = layer.norm.scale, layer.norm.shift + bias * layer.norm.scale, "affine"
        if layer.conv.stride == 2:
            kernel = _even(kernel)
        arrays += [np.ascontiguousarray(a, np.float32) for a in (kernel, shift, scale)]
        norms.append(kind)
    crop = net.blocks[0][2]
    spec = Spec(norms=tuple(norms), eps=eps if "instance" in norms else 1e-3,
                input_shift=input_shift, input_pad=net.pad,  # type: ignore[arg-type]
                residual="valid" if crop else "same",
                output_scale=tuple(out_scale), output_shift=tuple(out_shift))  # type: ignore[arg-type]
    facts = {"source": "jcjohnson/fast-neural-style .t7", "preprocessing": preprocessing,
             "normalization": "instance" if "instance" in norms else "batch (eval, folded)",
             "tanh_constant": net.tanh_constant, "residual_blocks": len(net.blocks)}
    return arrays, spec, facts


def write_folder(folder: Path, arrays: list[np.ndarray], spec: Spec, facts: dict[str, Any]) -> None:
    """The fast engine's on-disk layout: Variable..Variable_N raw float32 and manifest.json."""
    folder.mkdir(parents=True)
    manifest: dict[str, Any] = {}
    for i, arr in enumerate(arrays):
        name = weights.var_name(i)
        arr.astype("<f4").tofile(folder / name)
        manifest[name] = {"filename": name, "shape": list(arr.shape)}
    manifest["vpipe"] = {"decoder": "transpose", **spec.manifest(), "imported_from": facts}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def import_t7(source: Path, name: str, force: bool = False) -> Result:
    """`vpipe models import x.t7 [--name NAME]`: convert into the cache as a fast-engine model folder,
    checked by loading it as the engine would; nothing is left behind on failure."""
    location = catalogue.safe_location(name)
    checkpoint = read(source)
    try:
        arrays, spec, facts = convert(checkpoint)
    except T7Error as exc:
        raise T7Error(f"{source}: not a fast-neural-style model this importer knows: {exc}") from None
    target = own_target(location, force)
    staging = staging_for(target)
    try:
        write_folder(staging, arrays, spec, facts)
        variant_check(staging)
        install(staging, target)
    finally:
        discard(staging)
    notes = [f"converted from a Torch7 fast-neural-style model ({facts['normalization']} norm, "
             f"{facts['residual_blocks']} residual blocks, {facts['preprocessing']} preprocessing): "
             "run it with the fast engine"]
    return Result(location, target, copied=len(arrays) + 1, notes=notes)


def variant_check(folder: Path) -> None:
    """Load the written folder as the engine does (structure and "vpipe" fields)."""
    arrays, _ = weights.load_net(folder)
    variant.load(folder, arrays)
