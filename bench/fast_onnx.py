"""The Johnson/Engstrom transform net as ONNX, for the baselines of bench_fast.py (bench-only).

- `tf2onnx_model`: tf2onnx's export of vpipe's own TF function (network.transform) at a fixed input size,
  weights embedded: what a user of onnxruntime would get from the TF model.
- `direct_model`: the same network written straight from the weight arrays with the onnx helper API,
  NCHW, in ops OpenCV DNN imports: TF's asymmetric SAME padding of the stride-2 convs as an explicit Pad,
  the stride-2 transposed convs as an unpadded ConvTranspose plus a crop, instance norm as
  InstanceNormalization. Input (1, 3, H, W) float RGB 0..255, output (1, 3, H, W) float 0..255.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-3


def tf2onnx_model(arrays: list[np.ndarray], decoder: str, height: int, width: int) -> Any:
    import tensorflow as tf
    import tf2onnx

    from pipeline.engines.fast import network

    def net(x: tf.Tensor) -> tf.Tensor:  # constants created inside: embedded in the graph, not inputs
        return network.transform(x, [tf.constant(a) for a in arrays], decoder)

    spec = [tf.TensorSpec([1, height, width, 3], tf.float32, name="x")]
    model, _ = tf2onnx.convert.from_function(tf.function(net), input_signature=spec, opset=17)
    return model


def direct_model(arrays: list[np.ndarray], height: int, width: int) -> Any:
    """Only the "transpose" decoder (the Engstrom dumps)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    count = [0]

    def const(value: np.ndarray, dtype: Any = np.float32) -> str:
        count[0] += 1
        name = f"c{count[0]}"
        inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        count[0] += 1
        out = f"t{count[0]}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def layer(x: str, size: tuple[int, int], i: int, kind: str = "conv", relu: bool = True) -> tuple[str, tuple[int, int]]:
        kernel, shift, scale = arrays[3 * i : 3 * i + 3]
        k, (h, w) = kernel.shape[0], size
        if kind == "up":  # TF SAME transposed conv == unpadded ConvTranspose (2H + 1) cropped to 2H
            y = op("ConvTranspose", [x, const(np.transpose(kernel, (3, 2, 0, 1)))], strides=[2, 2], kernel_shape=[k, k])
            h, w = 2 * h, 2 * w
            y = op("Slice", [y, const([0, 0], np.int64), const([h, w], np.int64), const([2, 3], np.int64)])
        elif kind == "down":  # TF SAME, stride 2, even size: pad 0 before, k - 2 after
            x = op("Pad", [x, const([0, 0, 0, 0, 0, 0, k - 2, k - 2], np.int64)])
            y = op("Conv", [x, const(np.transpose(kernel, (3, 2, 0, 1)))], strides=[2, 2], kernel_shape=[k, k])
            h, w = h // 2, w // 2
        else:
            y = op("Conv", [x, const(np.transpose(kernel, (3, 2, 0, 1)))], kernel_shape=[k, k], pads=[k // 2] * 4)
        y = op("InstanceNormalization", [y, const(scale), const(shift)], epsilon=EPS)
        return (op("Relu", [y]) if relu else y), (h, w)

    blocks = (len(arrays) // 3 - 6) // 2
    x, size = layer("x", (height, width), 0)
    x, size = layer(x, size, 1, "down")
    x, size = layer(x, size, 2, "down")
    for r in range(blocks):
        y, _ = layer(x, size, 3 + 2 * r)
        y, _ = layer(y, size, 4 + 2 * r, relu=False)
        x = op("Add", [x, y])
    last = 3 + 2 * blocks
    x, size = layer(x, size, last, "up")
    x, size = layer(x, size, last + 1, "up")
    x, size = layer(x, size, last + 2, relu=False)
    x = op("Tanh", [x])
    x = op("Add", [op("Mul", [x, const(150.0)]), const(127.5)])
    nodes.append(helper.make_node("Clip", [x, const(0.0), const(255.0)], ["y"]))
    graph = helper.make_graph(nodes, "fast", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, height, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, height, width])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def flops(arrays: list[np.ndarray], height: int, width: int) -> float:
    """Multiply-adds x 2 of the convs at this input size (instance norm and the rest not counted)."""
    n = len(arrays) // 3
    total, h, w = 0.0, height, width
    for i in range(n):
        k, _, a, b = arrays[3 * i].shape
        if i in (1, 2):
            h, w = h // 2, w // 2
        if i in (n - 3, n - 2):  # transposed: every input pixel meets the whole kernel
            total += 2.0 * h * w * k * k * a * b
            h, w = h * 2, w * 2
        else:
            total += 2.0 * h * w * k * k * a * b
    return total
