"""The fast engine as the coordinator sees it (no TensorFlow): options, model family, memory model.

BYTES_PER_PIXEL: resident memory per frame pixel above a loaded worker, measured by
bench/bench_memory.py (fp32, 2 threads, peak RSS minus RSS after loading, 360p..1080p, fitted per
pixel); the engine picks its path per frame from them, the budget check refuses a frame that does
not fit even in tiles.
"""

from __future__ import annotations

from pipeline.engines.fast.precision import PRECISIONS
from pipeline.engines.spec import EngineSpec, MemoryModel, Option, VideoMode

BYTES_PER_PIXEL = {
    "fast": 600,  # the Johnson net, untiled, TF graph (32-channel full-resolution activations, TF's scratch)
    "fast_xnnpack": 1130,  # the same through TF Lite/XNNPACK (its arena keeps more full-resolution tensors)
    "fast_openvino": 500,  # the same on OpenVINO (peak over loaded: 300 B/px + 80 MiB in fp32, 503 B/px bf16 at 720p)
    "fast_tiled": 90,  # the same in tiles: three whole-frame quarter-resolution maps, the output sums
}
TILED_OVERHEAD = 48 << 20  # fast in tiles: compiled chains, per-tile copies
SMALLEST_WINDOW = 160 ** 2  # the smallest tile with its margins, on the TF graph

PRECISION = Option("precision", str, "number format of the convolutions", "auto", choices=PRECISIONS,
                   about_default="auto: bf16 on CPUs with AVX-512 BF16/AMX, fp16 on GPUs, else fp32")

SPEC = EngineSpec(
    name="fast",
    factory="pipeline.engines.fast.engine:load",
    # bf16/fp16 convolutions; gatys (an optimization) and arbitrary (TF Lite) stay fp32
    options=(PRECISION,),
    style="model",
    model_family="lengstrom_fst",
    memory=MemoryModel(per_pixel=BYTES_PER_PIXEL["fast_tiled"],
                       fixed=TILED_OVERHEAD + BYTES_PER_PIXEL["fast"] * SMALLEST_WINDOW,
                       refusal="the fast engine needs at least {need} for a {size} frame, in tiles:"),
    # bench/bench_video_mode.py: the flow-guided blend at 0.5 cuts E_warp to 0.43x and keeps the style
    # (1.06x) and the structure (1.02x, moving pixels 1.03x): on by default
    video=VideoMode(on=True, weight=0.5),
    preview=True,
)
