"""The fast net's weights on disk: raw float32 arrays named Variable, Variable_1, ... and a manifest.json
(the lengstrom fast-style-transfer dump layout; vpipe's own nets add a "vpipe" key with the decoder kind).

Pure numpy, no TensorFlow: the engine, the XNNPACK conversion, the tiled path and `vpipe train-style`
all read and write this one layout. A bad download fails at load time with one readable line, not deep
inside a conv.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import ModelError

BLOCKS = 5  # residual blocks of the Johnson/Engstrom net; slim trained variants may have fewer
# How the decoder doubles the size: "transpose" (stride-2 transposed convs, Johnson/Engstrom; kernels
# stored [k, k, out, in]) or "resize" (nearest 2x upsample then a conv, kernels [k, k, in, out]; no
# checkerboard, Odena et al. 2016). The Engstrom dumps are "transpose"; vpipe's trained nets say
# "resize" under the manifest's "vpipe" key.
DECODERS = ("transpose", "resize")


def blocks_of(count: int) -> int:
    """Residual blocks of a net with `count` layers (or `count` arrays / 3): 6 + 2 x blocks layers."""
    return (count - 6) // 2


def layers(blocks: int = BLOCKS) -> list[str]:
    """The kind per conv layer; each owns 3 variables: kernel, IN shift, IN scale."""
    return ["conv"] * (3 + 2 * blocks) + ["up", "up", "conv"]


N_VARS = 3 * len(layers())


def var_name(i: int) -> str:
    return "Variable" if i == 0 else f"Variable_{i}"


def check_structure(where: str, arrays: list[np.ndarray], decoder: str) -> None:
    """Check ranks, square odd kernels and that channel counts chain; slimmer variants pass."""
    channels = 3
    blocks = blocks_of(len(arrays) // 3)
    net = layers(blocks)
    for layer, kind in enumerate(net):
        kernel, shift, scale = arrays[3 * layer : 3 * layer + 3]
        name = var_name(3 * layer)
        shape = list(kernel.shape)
        # even kernels only where the stride is 2 (Torch's padded 3x3 convs stored as 4x4, see variant.py)
        even_ok = layer in (1, 2) or kind == "up"
        if kernel.ndim != 4 or shape[0] != shape[1] or (shape[0] % 2 == 0 and not even_ok):
            raise ModelError(f"model {where}: {name} has shape {shape}, expected a square odd kernel "
                             f"[k, k, in, out] (layer {layer + 1})")
        c_in, c_out = (shape[3], shape[2]) if kind == "up" and decoder == "transpose" else (shape[2], shape[3])
        if c_in != channels:
            raise ModelError(f"model {where}: {name} has shape {shape}, expected {channels} input channels (layer {layer + 1})")
        if 3 <= layer <= 2 + 2 * blocks and c_out != c_in:
            raise ModelError(f"model {where}: {name} has shape {shape}, residual convs need in == out channels")
        if layer == len(net) - 1 and c_out != 3:
            raise ModelError(f"model {where}: {name} has shape {shape}, the last conv must output 3 channels")
        for j, arr in ((1, shift), (2, scale)):
            if list(arr.shape) != [c_out]:
                raise ModelError(f"model {where}: {var_name(3 * layer + j)} has shape {list(arr.shape)}, expected [{c_out}]")
        channels = c_out


def load_net(folder: Path) -> tuple[list[np.ndarray], str]:
    """Read and validate the arrays and the decoder kind; one-line ModelErrors."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(
            f"model folder {folder} not found: place manifest.json and Variable..Variable_47 "
            f"(a lengstrom fast-style-transfer dump) there"
        )
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise ModelError(f"model {folder}: manifest.json missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model {folder}: manifest.json unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"model {folder}: manifest.json must be an object of variable name -> entry")
    extra = manifest.get("vpipe") or {}
    decoder = extra.get("decoder", "transpose") if isinstance(extra, dict) else None
    if decoder not in DECODERS:
        raise ModelError(f"model {folder}: manifest.json \"vpipe\".decoder must be one of {', '.join(DECODERS)}")
    count = sum(1 for i in range(3 * len(layers(64))) if var_name(i) in manifest)
    if count < 3 * len(layers(1)) or (count // 3 - 6) % 2 or count % 3:
        raise ModelError(f"model {folder}: manifest.json lists {count} variables; a Johnson-style net has "
                         f"3 x (6 + 2 x residual blocks), e.g. {N_VARS}")
    arrays = []
    for i in range(count):
        name = var_name(i)
        entry = manifest.get(name)
        try:
            fname, shape = str(entry["filename"]), [int(d) for d in entry["shape"]]  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            raise ModelError(f"model {folder}: manifest.json has no valid entry for {name}") from None
        path = folder / fname
        # The filename comes from a file we did not write: keep it inside the model folder.
        if Path(fname).name != fname or not path.is_file():
            raise ModelError(f"model {folder}: {name} file {fname!r} missing")
        expected = math.prod(shape) * 4
        size = path.stat().st_size
        if size != expected:
            raise ModelError(f"model {folder}: {name} has {size} bytes, expected {expected} (shape {shape})")
        arrays.append(np.fromfile(path, dtype="<f4").astype(np.float32).reshape(shape))
    check_structure(str(folder), arrays, decoder)
    return arrays, decoder


def write(folder: Path, arrays: Sequence[np.ndarray], decoder: str) -> None:
    """Write the layout (manifest.json + raw float32 Variable files) atomically: a folder beside it,
    renamed into place once complete."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    manifest: dict[str, object] = {"vpipe": {"decoder": decoder}}
    for i, array in enumerate(arrays):
        name = var_name(i)
        data = np.asarray(array, dtype="<f4")
        data.tofile(partial / name)
        manifest[name] = {"filename": name, "shape": list(data.shape)}
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.replace(folder)
