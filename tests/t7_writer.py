"""A Torch7 binary serialization WRITER (torch.save's default binary format, 64-bit little-endian),
and jcjohnson/fast-neural-style transform nets built the way its models.lua and train.lua build them,
with known random weights: the test stand-ins for `eccv16/*.t7` and `instance_norm/*.t7`.

Format (torch7 File.lua writeObject): an int32 type tag (0 nil, 1 number, 2 string, 3 table,
4 torch object, 5 boolean); numbers as float64; strings as int32 length + bytes; tables and torch
objects carry an int32 reference index (a repeated object is written as its index only); a table is
int32 size then key, value pairs; a torch object is the version string "V 1", its class name, then
its contents: a Tensor its int32 ndim, int64 sizes, int64 strides, int64 1-based storage offset and
its Storage object (int64 size + raw numbers); any other class the table of its fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(eq=False)
class Module:
    """A torch class instance: its class name and fields (nn modules, `torch.FloatTensor` arrays are
    numpy arrays instead)."""

    typename: str
    fields: dict[str, Any] = field(default_factory=dict)


class Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.index: dict[int, int] = {}

    def i32(self, v: int) -> None:
        self.out += struct.pack("<i", v)

    def i64(self, v: int) -> None:
        self.out += struct.pack("<q", v)

    def string(self, s: str | bytes) -> None:
        b = s.encode() if isinstance(s, str) else s
        self.i32(len(b))
        self.out += b

    def _ref(self, obj: object) -> bool:
        """Write the reference index; True when the object was already written."""
        seen = id(obj) in self.index
        if not seen:
            self.index[id(obj)] = len(self.index) + 1
        self.i32(self.index[id(obj)])
        return seen

    def obj(self, v: Any) -> None:
        if v is None:
            self.i32(0)
        elif isinstance(v, bool):
            self.i32(5)
            self.i32(int(v))
        elif isinstance(v, int | float):
            self.i32(1)
            self.out += struct.pack("<d", float(v))
        elif isinstance(v, str | bytes):
            self.i32(2)
            self.string(v)
        elif isinstance(v, dict | list):
            self.i32(3)
            if self._ref(v):
                return
            items = list(v.items()) if isinstance(v, dict) else [(i + 1, x) for i, x in enumerate(v)]
            self.i32(len(items))
            for k, x in items:
                self.obj(k)
                self.obj(x)
        elif isinstance(v, np.ndarray):
            self.tensor(v)
        elif isinstance(v, Module):
            self.i32(4)
            if self._ref(v):
                return
            self.string("V 1")
            self.string(v.typename)
            self.obj(v.fields)
        else:
            raise TypeError(type(v))

    def tensor(self, a: np.ndarray) -> None:
        kind = {np.dtype(np.float32): "Float", np.dtype(np.float64): "Double"}[a.dtype]
        self.i32(4)
        if self._ref(a):
            return
        self.string("V 1")
        self.string(f"torch.{kind}Tensor")
        a = np.ascontiguousarray(a)
        self.i32(a.ndim)
        for n in a.shape:
            self.i64(n)
        for s in a.strides:
            self.i64(s // a.itemsize)
        self.i64(1)
        self.i32(4)  # the storage, an object of its own
        self.i32(len(self.index) + 1 + 100000)
        self.string("V 1")
        self.string(f"torch.{kind}Storage")
        self.i64(a.size)
        self.out += a.astype(a.dtype.newbyteorder("<")).tobytes()


def save(path: Path, obj: Any) -> Path:
    w = Writer()
    w.obj(obj)
    path.write_bytes(bytes(w.out))
    return path


# ------------------------------------------------------------------- fast-neural-style nets


def conv(rng: np.random.Generator, n_in: int, n_out: int, k: int, s: int, p: int) -> Module:
    return Module("nn.SpatialConvolution", {
        "nInputPlane": n_in, "nOutputPlane": n_out, "kW": k, "kH": k, "dW": s, "dH": s, "padW": p, "padH": p,
        "weight": rng.normal(0, 1 / np.sqrt(n_in * k * k), (n_out, n_in, k, k)).astype(np.float32),
        "bias": rng.normal(0, 0.1, n_out).astype(np.float32), "train": False})


def full_conv(rng: np.random.Generator, n_in: int, n_out: int) -> Module:
    return Module("nn.SpatialFullConvolution", {
        "nInputPlane": n_in, "nOutputPlane": n_out, "kW": 3, "kH": 3, "dW": 2, "dH": 2, "padW": 1, "padH": 1,
        "adjW": 1, "adjH": 1,
        "weight": rng.normal(0, 1 / np.sqrt(n_in * 9 / 4), (n_in, n_out, 3, 3)).astype(np.float32),
        "bias": rng.normal(0, 0.1, n_out).astype(np.float32)})


def norm(rng: np.random.Generator, n: int, instance: bool) -> Module:
    weight = (1 + rng.normal(0, 0.2, n)).astype(np.float32)
    bias = rng.normal(0, 0.2, n).astype(np.float32)
    if instance:
        return Module("nn.InstanceNormalization", {"nOutput": n, "eps": 1e-5, "prev_N": -1,
                                                   "weight": weight, "bias": bias})
    # eval-mode statistics of roughly the scale these random convs produce
    return Module("nn.SpatialBatchNormalization", {
        "eps": 1e-5, "momentum": 0.1, "affine": True, "train": False, "weight": weight, "bias": bias,
        "running_mean": rng.normal(0, 5, n).astype(np.float32),
        "running_var": rng.uniform(20, 400, n).astype(np.float32)})


def relu() -> Module:
    return Module("nn.ReLU", {"inplace": True, "threshold": 0, "val": 0})


def seq(*mods: Module) -> Module:
    return Module("nn.Sequential", {"modules": list(mods), "train": False})


def transform_net(family: str, channels: tuple[int, int, int] = (4, 8, 16), blocks: int = 5,
                  seed: int = 0, padding_type: str = "reflect-start", tanh_constant: float = 150.0) -> Module:
    """models.lua's build_model for arch c9s1-C1,dC2,dC3,RC3 x blocks,uC2,uC1,c9s1-3 and the option
    `use_instance_norm` of the family, with train.lua's lazily inserted leading reflection padding."""
    rng = np.random.default_rng(seed)
    instance = family == "instance_norm"
    c1, c2, c3 = channels
    mods: list[Module] = []
    mods += [conv(rng, 3, c1, 9, 1, 4), norm(rng, c1, instance), relu()]
    mods += [conv(rng, c1, c2, 3, 2, 1), norm(rng, c2, instance), relu()]
    mods += [conv(rng, c2, c3, 3, 2, 1), norm(rng, c3, instance), relu()]
    p = 0 if padding_type == "reflect-start" else 1
    for _ in range(blocks):
        body = seq(conv(rng, c3, c3, 3, 1, p), norm(rng, c3, instance), relu(),
                   conv(rng, c3, c3, 3, 1, p), norm(rng, c3, instance))
        shortcut = Module("nn.ShaveImage", {"size": 2}) if p == 0 else Module("nn.Identity", {})
        mods.append(seq(Module("nn.ConcatTable", {"modules": [body, shortcut]}), Module("nn.CAddTable", {})))
    mods += [full_conv(rng, c3, c2), norm(rng, c2, instance), relu()]
    mods += [full_conv(rng, c2, c1), norm(rng, c1, instance), relu()]
    mods += [conv(rng, c1, 3, 9, 1, 4), Module("nn.Tanh", {}),
             Module("nn.MulConstant", {"constant_scalar": tanh_constant, "inplace": False}),
             Module("nn.TotalVariation", {"strength": 1e-6})]
    if padding_type == "reflect-start":
        pad = 4 * 2 * blocks
        mods.insert(0, Module("nn.SpatialReflectionPadding", {"pad_l": pad, "pad_r": pad, "pad_t": pad, "pad_b": pad}))
    return seq(*mods)


def checkpoint(model: Module, preprocessing: str = "vgg") -> dict[str, Any]:
    """train.lua's torch.save'd table."""
    opt = {"arch": "c9s1-32,d64,d128,R128,R128,R128,R128,R128,u64,u32,c9s1-3", "padding_type": "reflect-start",
           "tanh_constant": 150, "preprocessing": preprocessing, "use_instance_norm": 1}
    return {"opt": opt, "model": model, "train_loss_history": [1.5, 1.25]}
