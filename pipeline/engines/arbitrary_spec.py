"""The arbitrary engine as the coordinator sees it (no TensorFlow): any painting, Magenta's TF Lite
models, a blend in video mode, tiles for any frame size (no budget check)."""

from __future__ import annotations

from pipeline.engines.spec import EngineSpec, Option, VideoMode

SPEC = EngineSpec(
    name="arbitrary",
    factory="pipeline.engines.arbitrary:load",
    options=(
        Option("strength", float, "how much of the painting's style, 0..1", 1.0,
               "1; less keeps more of the frame's own", min=0, max=1),
        Option("mode", str, "frames in overlapping windows, or one fitted window and a guided upsample", "tiles",
               choices=("tiles", "upsample"), cli=False),
        Option("transfer", str, "the transfer net's number format", "f16", choices=("f16", "int8"), cli=False),
    ),
    style="painting",
    painting_model="magenta_tflite",
    # bench/bench_video_mode.py: the blend at 0.5 cuts E_warp to 0.46x, style 1.02x, structure 1.04x
    # (moving pixels 1.05x): on by default
    video=VideoMode(on=True, weight=0.5),
    preview=True,
)
