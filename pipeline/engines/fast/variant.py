"""What a fast-engine model says about itself beyond its arrays: the manifest's "vpipe" key.

The Engstrom dumps (no such fields) run as they always have: instance norm with eps 1e-3 on every
layer, RGB 0..255 in, SAME convs, `tanh(x) * 150 + 127.5` out. Nets of another lineage (Johnson's
Torch models, imported by `pipeline.t7`) differ in ways the arrays cannot carry, so these fields say
it, each validated here at load time (one-line ModelError):

- "norms": per conv layer, "instance" (statistics of the image, then shift/scale) or "affine"
  (y = conv * scale + shift: a batch norm in eval mode, or a plain conv bias, folded);
- "eps": the instance norm's epsilon;
- "input_shift": three numbers added to the RGB 0..255 input (a mean subtraction);
- "input_pad": reflection padding (full-resolution pixels, a multiple of 4) the net adds first;
- "residual": "same" (padded 3x3 convs) or "valid" (unpadded convs, the shortcut cropped to
  match: each block shrinks the map; "input_pad" must give the size back exactly);
- "output_scale", "output_shift": per RGB channel, out = tanh(x) * scale + shift (0..255).

Every path that runs the net applies these: `network.network` (TF graph and the XNNPACK conversion)
and `tiles`. This module imports no TensorFlow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ModelError

NORMS = ("instance", "affine")
RESIDUALS = ("same", "valid")
ENGSTROM_EPS = 1e-3
FIELDS = ("norms", "eps", "input_shift", "input_pad", "residual", "output_scale", "output_shift")


@dataclass(frozen=True)
class Spec:
    norms: tuple[str, ...] = ()  # empty: "instance" on every layer
    eps: float = ENGSTROM_EPS
    input_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    input_pad: int = 0
    residual: str = "same"
    output_scale: tuple[float, float, float] = (150.0, 150.0, 150.0)
    output_shift: tuple[float, float, float] = (127.5, 127.5, 127.5)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def norm(self, layer: int) -> str:
        return self.norms[layer] if self.norms else "instance"

    def trim(self, layer: int, kernel_size: int, blocks: int) -> int:
        """Pixels a layer's output loses on each side: k // 2 for a valid residual conv, else 0."""
        return kernel_size // 2 if self.residual == "valid" and 3 <= layer < 3 + 2 * blocks else 0

    @property
    def default(self) -> bool:
        return self == Spec()

    def key(self) -> str:
        """A stable text of the fields (part of the converted-net cache key)."""
        fields = asdict(self)
        fields.pop("extra")
        return json.dumps(fields, sort_keys=True)

    def manifest(self) -> dict[str, Any]:
        """The fields for the manifest's "vpipe" key."""
        fields = asdict(self)
        fields.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


def _triple(where: str, name: str, value: Any) -> tuple[float, float, float]:
    try:
        nums = [float(v) for v in value]
    except (TypeError, ValueError):
        nums = []
    if len(nums) != 3 or not all(math.isfinite(v) for v in nums):
        raise ModelError(f"model {where}: manifest.json \"vpipe\".{name} must be 3 finite numbers")
    return nums[0], nums[1], nums[2]


def parse(where: str, extra: Any, arrays: Sequence[np.ndarray]) -> Spec:
    """The spec from the manifest's "vpipe" object, checked against the arrays (network order)."""
    if not isinstance(extra, dict):
        return Spec()
    n = len(arrays) // 3
    blocks = (n - 6) // 2
    kw: dict[str, Any] = {}
    if "norms" in extra:
        norms = extra["norms"]
        if not isinstance(norms, list) or len(norms) != n or any(v not in NORMS for v in norms):
            raise ModelError(f"model {where}: manifest.json \"vpipe\".norms must list one of "
                             f"{', '.join(NORMS)} for each of the {n} layers")
        kw["norms"] = tuple(norms)
    if "eps" in extra:
        eps = extra["eps"]
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
            raise ModelError(f"model {where}: manifest.json \"vpipe\".eps must be a number in (0, 1)")
        kw["eps"] = float(eps)
    for name in ("input_shift", "output_scale", "output_shift"):
        if name in extra:
            kw[name] = _triple(where, name, extra[name])
    if "residual" in extra:
        if extra["residual"] not in RESIDUALS:
            raise ModelError(f"model {where}: manifest.json \"vpipe\".residual must be one of {', '.join(RESIDUALS)}")
        kw["residual"] = extra["residual"]
    if "input_pad" in extra:
        pad = extra["input_pad"]
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0 or pad % 4:
            raise ModelError(f"model {where}: manifest.json \"vpipe\".input_pad must be a multiple of 4 >= 0")
        kw["input_pad"] = pad
    spec = Spec(**kw, extra={k: v for k, v in extra.items() if k not in FIELDS})
    lost = 4 * sum(spec.trim(i, int(arrays[3 * i].shape[0]), blocks) for i in range(n))
    if lost != spec.input_pad:
        raise ModelError(f"model {where}: manifest.json \"vpipe\".input_pad is {spec.input_pad}, but the "
                         f"{spec.residual} residual convs take {lost} full-resolution pixels per side")
    return spec


def load(folder: Path, arrays: Sequence[np.ndarray]) -> Spec:
    """The spec of a model folder whose arrays `fast.load_net` has read (and so whose manifest parses)."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    return parse(str(folder), manifest.get("vpipe"), arrays)
