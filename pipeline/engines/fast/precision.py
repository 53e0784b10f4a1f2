"""Which number format the fast engine's convolutions use: `--precision auto|fp32|bf16|fp16`.

auto, by backend (engine.choose): fp16 on GPUs; on the TF graph bf16 on CPUs with native bf16 dot
products (AVX-512 BF16 or AMX), elsewhere bf16 would be emulated and slower; on OpenVINO bf16 only with
AMX (with AVX-512 BF16 alone its bf16 convs measured 1.7x slower than its fp32 ones: see README
"Speed"); XNNPACK runs fp32 only. The reduced formats keep the output within PSNR 45 dB of fp32 on real
footage (tests/test_precision.py). Pure: no TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FORMATS = PRECISIONS[1:]  # what a worker runs once auto is resolved
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
AMX_FLAGS = frozenset({"amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature flags (empty where /proc/cpuinfo is not readable)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def resolve(asked: str, gpu: bool, flags: frozenset[str], backend: str = "tf") -> str:
    """The format a worker runs on `backend`: `asked` unless it is auto."""
    if asked not in PRECISIONS:
        raise UsageError(f"--precision {asked!r}: expected one of {', '.join(PRECISIONS)}")
    if asked != "auto":
        return asked
    if gpu:
        return "fp16"
    native = {"tf": BF16_FLAGS, "openvino": AMX_FLAGS}.get(backend, frozenset())
    return "bf16" if flags & native else "fp32"
