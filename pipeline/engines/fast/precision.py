"""Which number format the fast engine's convolutions use: `--precision auto|fp32|bf16|fp16`.

auto: bf16 on CPUs with native bf16 dot products (AVX-512 BF16 or AMX), fp16 on GPUs, else fp32.
Both reduced formats keep the output within PSNR 45 dB of fp32 on real footage (tests/test_precision.py);
elsewhere bf16 would be emulated and slower than fp32. Pure: no TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
FORMATS = PRECISIONS[1:]  # what a worker runs once auto is resolved
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


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


def resolve(asked: str, gpu: bool, flags: frozenset[str]) -> str:
    """The format a worker runs: `asked` unless it is auto."""
    if asked not in PRECISIONS:
        raise UsageError(f"--precision {asked!r}: expected one of {', '.join(PRECISIONS)}")
    if asked != "auto":
        return asked
    if gpu:
        return "fp16"
    return "bf16" if flags & BF16_FLAGS else "fp32"
