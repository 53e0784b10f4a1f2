"""The gatys engine as the coordinator sees it (no TensorFlow): its options, a painting per style,
the feature network picked by --net as its model, video mode on, and its memory model."""

from __future__ import annotations

from pipeline.engines.spec import EngineSpec, MemoryModel, Option, VideoMode, layer_list, weighted_layers
from pipeline.models.lookup import FEATURE_NETS

# SqueezeNet forward + backward, L-BFGS history (10 pairs of float64 images): 1680 at 720p (bench/bench_memory.py)
BYTES_PER_PIXEL = 1800

SPEC = EngineSpec(
    name="gatys",
    factory="pipeline.engines.gatys:load",
    options=(
        Option("net", str, "feature network", "squeezenet", choices=tuple(FEATURE_NETS)),
        Option("iterations", int, "iterations per frame", 300, "300; 2x for a cold start", min=1),
        Option("optimizer", str, "optimizer", "lbfgs", choices=("lbfgs", "adam")),
        Option("style_weight", float, "style loss weight", 10.0, min=0),
        Option("content_weight", float, "content loss weight", 1.0, min=0),
        Option("tv_weight", float, "total-variation weight", 10.0, min=0),
        Option("init", str, "start of a cold frame", "content", choices=("content", "noise")),
        Option("pyramid", int, "levels of the coarse-to-fine pyramid of a cold frame (each half the next)", 1, min=1),
        Option("palette", str, "colours: the painting's (the frame's matched to it first) or the source's",
               "painting", choices=("painting", "source")),
        Option("style_scale", float, "size of the painting for the style targets, times the frame's long side",
               1.0, min=0.1, max=4.0),
        Option("seed", int, "seed of the noise start (--init noise)", 0, about_default=""),
        Option("content_layers", list, "content layers, e.g. fire3,fire5", None, "per --net", parse=layer_list),
        Option("style_layers", dict, "style layers with weights, e.g. conv1:0.5,fire2,fire3", None, "per --net",
               parse=weighted_layers),
    ),
    style="painting",
    model_option="net",
    models=FEATURE_NETS,
    video=VideoMode(on=True, weight=200.0, meaning="loss weight"),
    memory=MemoryModel(per_pixel=BYTES_PER_PIXEL,
                       refusal="the gatys engine optimizes the whole frame at once: a {size} frame needs about {need},"),
    preview=False,  # an optimization per frame: too slow for a preview
    preview_budget={"iterations": 40},  # `vpipe preview`: painterly already, about 3 s a frame at 384 px
)
