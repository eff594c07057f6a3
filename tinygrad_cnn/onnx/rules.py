"""Translations from the engine's Functions to ONNX nodes, one per Function class.

`RULES` maps a Function class name to `rule(graph, fn, input_names, out) -> output_name`,
which reads the op's recorded parameters (`fn.params`: stride, padding, axes...) and adds
the equivalent ONNX node(s) to `graph`. Padding arrives already resolved by the op to
((top, bottom), (left, right)), so Keras' 'same' at stride 2 is simply asymmetric pads.

Read next: `cli/export.py` (`tinygrad-cnn export`, the command line around it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_cnn.tensor import Tensor

# ----------------------------------------------------------------------------------------
# The graph being written: nodes, initializers and names
# ----------------------------------------------------------------------------------------


class Graph:
    """ONNX nodes and constants collected while walking the traced graph.

    Example:
        >>> import onnx
        >>> x = Tensor(np.zeros((2, 3), np.float32))
        >>> graph = Graph(onnx, x, names={}, scopes={})
        >>> graph.node("Relu", [graph.name_of(x)])
        'relu_1'
    """

    def __init__(self, onnx: Any, x: Tensor, names: dict[int, str], scopes: dict[int, str]):
        self.onnx, self.x = onnx, x
        self.param_names, self.scopes = names, scopes
        self.nodes: list[Any] = []
        self.constants: dict[str, np.ndarray] = {}
        # a constant computed from one parameter: name -> (parameter name, its array, op name)
        self.sources: dict[str, tuple[str, np.ndarray, str]] = {}
        self.value_names: dict[int, str] = {id(x): "input"}
        self.live: set[int] = {id(x)}  # tensors that depend on the input
        self.ndims: dict[str, int] = {"input": x.ndim}  # of each node output, for Gemm
        self.counter = 0
        self.node_names: dict[str, int] = {}  # node names must be unique
        self.layer = ""  # dotted path of the layer whose op is being translated

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def constant(self, value: np.ndarray, base: str) -> str:
        """Add `value` as an initializer and return its name (`base` if still free)."""
        name = base if base not in self.constants else self.fresh(base)
        self.constants[name] = np.asarray(value)
        return name

    def name_of(self, tensor: Tensor) -> str:
        """The ONNX name of a tensor: a node's output, or a constant made on first use."""
        key = id(tensor)
        if key not in self.value_names:
            if key in self.param_names:
                self.value_names[key] = self.constant(tensor.data, self.param_names[key])
                return self.value_names[key]
            fn, base = tensor._ctx, "const"
            source = fn.inputs[0] if fn is not None and len(fn.inputs) == 1 else None
            if source is not None and id(source) in self.param_names:
                base = f"{self.param_names[id(source)]}_{fn.name}"  # e.g. 9.weight_transpose
            self.value_names[key] = name = self.constant(tensor.data, base)
            if base != "const":  # the fusions may use the parameter itself instead
                self.sources[name] = (self.param_names[id(source)], source.data, fn.name)
        return self.value_names[key]

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        output = output or self.fresh(op_type.lower())
        name = f"{self.layer}/{op_type}" if self.layer else op_type  # what Netron shows
        self.node_names[name] = count = self.node_names.get(name, 0) + 1
        name = name if count == 1 else f"{name}_{count}"  # a layer called twice: pool/MaxPool_2
        node = self.onnx.helper.make_node(op_type, inputs, [output], name=name, **attrs)
        self.nodes.append(node)
        return output

    def ints(self, values: Any, base: str) -> str:
        return self.constant(np.asarray(values, dtype=np.int64), base)


# ----------------------------------------------------------------------------------------
# Translations: one per Function class, from the engine's op to ONNX nodes
# ----------------------------------------------------------------------------------------


def _pads(padding: tuple) -> list[int]:
    """((top, bottom), (left, right)) -> ONNX's [top, left, bottom, right]."""
    (top, bottom), (left, right) = padding
    return [top, left, bottom, right]


def _elementwise(op_type: str) -> Callable:
    def rule(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
        return graph.node(op_type, inputs)

    return rule


def _conv(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    p, w = fn.params, fn.inputs[1]
    return graph.node(
        "Conv", inputs, kernel_shape=list(w.shape[2:]), strides=list(p["stride"]),
        pads=_pads(p["padding"]), dilations=list(p["dilation"]), group=p["groups"],
    )  # fmt: skip


def _conv_transpose(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    p, (y, w) = fn.params, fn.inputs[:2]  # a third input is the bias
    pads = _pads(p["padding"])
    # ONNX: OH = s*(H-1) + output_padding + d*(KH-1) + 1 - top - bottom; solve for the extra
    extra = [
        o - (s * (n - 1) + d * (k - 1) + 1 - lo - hi)
        for o, n, k, s, d, lo, hi in zip(
            out.shape[2:], y.shape[2:], w.shape[2:], p["stride"], p["dilation"],
            pads[:2], pads[2:],
        )
    ]  # fmt: skip
    return graph.node(
        "ConvTranspose", inputs, kernel_shape=list(w.shape[2:]), strides=list(p["stride"]),
        pads=pads, dilations=list(p["dilation"]), group=p["groups"], output_padding=extra,
    )  # fmt: skip


def _maxpool(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    p = fn.params
    return graph.node(
        "MaxPool", inputs, kernel_shape=list(p["kernel"]), strides=list(p["stride"]),
        pads=_pads(p["padding"]),
    )  # fmt: skip


def _avgpool(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    p = fn.params
    return graph.node(
        "AveragePool", inputs, kernel_shape=list(p["kernel"]), strides=list(p["stride"]),
        pads=_pads(p["padding"]), count_include_pad=int(p["count_padding"]),
    )  # fmt: skip


def _upsample(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    f = float(fn.params["factor"])
    scales = graph.constant(np.array([1.0, 1.0, f, f], np.float32), "upsample_scales")
    # out[i] = x[floor(i / f)]: 'asymmetric' coordinates with 'floor' rounding say exactly that
    return graph.node(
        "Resize", [inputs[0], "", scales], mode="nearest",
        coordinate_transformation_mode="asymmetric", nearest_mode="floor",
    )  # fmt: skip


def _batch_norm(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    if fn.params.get("training", False):
        raise ValueError(
            "onnx.export: batch_norm2d ran in training mode; export uses eval mode (the "
            "running statistics), call it on a Module so export can switch it to eval"
        )
    module, path = graph.scopes.get(id(out), (None, ""))
    if module is None or not hasattr(module, "running_mean"):
        raise ValueError(
            "onnx.export: batch_norm2d called outside a BatchNorm2d layer; its running "
            "statistics cannot be found"
        )
    mean = graph.constant(module.running_mean.astype(out.dtype), f"{path}.running_mean")
    var = graph.constant(module.running_var.astype(out.dtype), f"{path}.running_var")
    return graph.node("BatchNormalization", [*inputs, mean, var], epsilon=float(fn.params["eps"]))


def _reshape(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    shape = list(out.shape)
    x = fn.inputs[0]
    if x.ndim and out.ndim and x.shape[0] == out.shape[0]:
        shape[0] = 0  # ONNX: 0 copies the input's size, so the batch size stays free
    return graph.node("Reshape", [inputs[0], graph.ints(shape, "shape")])


def _transpose(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    return graph.node("Transpose", inputs, perm=list(fn.params["axes"]))


def _getitem(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    """Basic indexing: Slice for slices and ints, then Squeeze (ints) and Unsqueeze (None)."""
    x, index = fn.inputs[0], fn.params["index"]
    parts = list(index) if isinstance(index, tuple) else [index]
    if Ellipsis in parts:
        at = parts.index(Ellipsis)
        used = sum(part is not None for part in parts) - 1
        parts[at : at + 1] = [slice(None)] * (x.ndim - used)
    parts += [slice(None)] * (x.ndim - sum(part is not None for part in parts))
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = out_axis = 0
    for part in parts:
        if part is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if isinstance(part, slice) and part == slice(None):
            axis, out_axis = axis + 1, out_axis + 1
            continue
        if isinstance(part, slice):
            start, stop, step = part.indices(x.shape[axis])
            if step < 0 and stop < 0:
                stop = -(2**62)  # through index 0: ONNX clamps, -1 would mean the last
            out_axis += 1
        else:
            start, stop, step = int(part) % x.shape[axis], int(part) % x.shape[axis] + 1, 1
            squeeze.append(axis)
        starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
        axis += 1
    name = inputs[0]
    if axes:
        name = graph.node("Slice", [name] + [graph.ints(v, k) for v, k in (
            (starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))])  # fmt: skip
    if squeeze:
        name = graph.node("Squeeze", [name, graph.ints(squeeze, "axes")])
    if unsqueeze:
        name = graph.node("Unsqueeze", [name, graph.ints(unsqueeze, "axes")])
    if name == inputs[0]:
        name = graph.node("Identity", [name])
    return name


def _concat(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    return graph.node("Concat", inputs, axis=fn.params["axis"])


def _pad(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    widths = fn.params["pad_width"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    value = graph.constant(np.asarray(fn.params["value"], out.dtype), "pad_value")
    return graph.node("Pad", [inputs[0], graph.ints(pads, "pads"), value])


def _reduce(op_type: str) -> Callable:
    def rule(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
        axes, keepdims = list(fn.params["axes"]), int(fn.params["keepdims"])
        if op_type == "ReduceSum":  # opset 13 moved ReduceSum's axes into an input
            return graph.node(op_type, [inputs[0], graph.ints(axes, "axes")], keepdims=keepdims)
        return graph.node(op_type, inputs, axes=axes, keepdims=keepdims)

    return rule


def _pow_scalar(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
    exponent = graph.constant(np.asarray(fn.params["exponent"], out.dtype), "exponent")
    return graph.node("Pow", [inputs[0], exponent])


def _softmax(op_type: str) -> Callable:
    def rule(graph: Graph, fn: Any, inputs: list[str], out: Tensor) -> str:
        return graph.node(op_type, inputs, axis=fn.params["axis"])

    return rule


# Function class name -> translation(graph, fn, input names, output tensor) -> output name
RULES: dict[str, Callable] = {
    "AddFn": _elementwise("Add"), "SubFn": _elementwise("Sub"), "MulFn": _elementwise("Mul"),
    "DivFn": _elementwise("Div"), "PowFn": _elementwise("Pow"), "NegFn": _elementwise("Neg"),
    "ExpFn": _elementwise("Exp"), "LogFn": _elementwise("Log"), "ReluFn": _elementwise("Relu"),
    "SigmoidFn": _elementwise("Sigmoid"), "TanhFn": _elementwise("Tanh"),
    "MatmulFn": _elementwise("MatMul"), "PowScalarFn": _pow_scalar,
    "Conv2dFn": _conv, "ConvTranspose2dFn": _conv_transpose,
    "MaxPool2dFn": _maxpool, "AvgPool2dFn": _avgpool, "Upsample2dFn": _upsample,
    "BatchNorm2dFn": _batch_norm,
    "ReshapeFn": _reshape, "TransposeFn": _transpose, "GetitemFn": _getitem,
    "ConcatFn": _concat, "PadFn": _pad,
    "SumFn": _reduce("ReduceSum"), "MaxFn": _reduce("ReduceMax"),
    "SoftmaxFn": _softmax("Softmax"), "LogSoftmaxFn": _softmax("LogSoftmax"),
}  # fmt: skip
