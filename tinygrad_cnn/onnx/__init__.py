"""ONNX export: run the model once, and write down the graph the engine recorded.

ONNX is a file format for a computation graph (nodes such as Conv, Relu, MaxPool, with named
weights), which other runtimes (onnxruntime, TensorRT, a browser) execute and Netron draws.
A model here has no graph until it runs, so `export` runs it once on an example input that
requires a gradient. Every op then leaves a `Function` node behind (`tensor.py`), and the
walk from the output back to the input visits each one:

    input --Conv2dFn(W, b)--> . --ReluFn--> ...                      (the engine's graph)
    input --Conv(W, B)--> . --Relu--> ...                           (the ONNX graph)

Each Function class has a translation in `onnx/rules.py` (`RULES`) into one or more ONNX
nodes. A value that does not depend on the input (a weight, the transpose of it that `Linear`
makes, a reshaped bias) is known already, so it becomes a constant initializer, named after
the parameter it came from.
Two small rewrites then make the file read like the model: a Conv followed by the add of a
bias (conv2d adds its bias itself unless the dtypes differ) becomes one Conv with a bias, and
MatMul + Add (a Linear) becomes one Gemm.

Because the trace records the ops that really ran, any model built from the ops in `RULES`
exports, whatever its forward does (the U-Net's skips, concatenations and center crops
included). An op with no translation is refused, naming the op and the layer that ran it.

The `onnx` package is needed only here: `pip install 'tinygrad_cnn[onnx]'`.

Read next: `onnx/rules.py` (the translations).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn.onnx.rules import RULES, Graph
from tinygrad_cnn.tensor import Tensor, enable_grad
from tinygrad_cnn.walk import walk

OPSET = 17
INSTALL_HINT = "pip install 'tinygrad_cnn[onnx]'"


def _onnx() -> Any:
    """The onnx package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError(
            f"tinygrad_cnn.onnx needs the onnx package; install it with: {INSTALL_HINT}"
        ) from None
    return onnx


# ----------------------------------------------------------------------------------------
# Tracing: run the model once, walk the recorded graph from the input to the output
# ----------------------------------------------------------------------------------------


def _layer_text(tensor: Tensor, paths: dict[int, str]) -> str:
    """The innermost module that made the tensor: "layer 'encoder.0.1' (BatchNorm2d)"."""
    for module in reversed(tensor._scope):
        if id(module) in paths:
            return f"layer {paths[id(module)] or '(the model itself)'!r} ({type(module).__name__})"
    return "the model's own forward"


def _build_graph(onnx: Any, model: Any, x: Tensor, out: Tensor) -> Graph:
    paths = {id(module): name for name, module in model.named_modules()}
    names = {id(p): name for name, p in model.named_parameters()}
    scopes = {}
    order = walk([out])
    for tensor in order:  # which module made each tensor (BatchNorm's statistics live there)
        if tensor._scope:
            scopes[id(tensor)] = (tensor._scope[-1], paths.get(id(tensor._scope[-1]), ""))
    graph = Graph(onnx, x, names, scopes)
    for tensor in order:
        fn = tensor._ctx
        if fn is None or not any(id(t) in graph.live for t in fn.inputs):
            continue  # the input itself, a weight, or a value computed from weights only
        rule = RULES.get(type(fn).__name__)
        if rule is None:
            raise ValueError(
                f"onnx.export: {_layer_text(tensor, paths)} uses the op {fn.name!r} "
                f"({type(fn).__name__}), which has no ONNX translation; exportable ops: "
                + ", ".join(sorted(RULES))
            )
        inputs = [graph.name_of(t) for t in fn.inputs]
        graph.layer = graph.scopes.get(id(tensor), (None, ""))[1]
        name = rule(graph, fn, inputs, tensor)
        graph.value_names[id(tensor)], graph.ndims[name] = name, tensor.ndim
        graph.live.add(id(tensor))
    if id(out) not in graph.live:
        raise ValueError("onnx.export: the model's output does not depend on its input")
    return graph


def _fuse(graph: Graph) -> list[Any]:
    """Conv + Add(bias) -> Conv with bias; MatMul(x, W^T) + Add(b) -> Gemm (a Linear)."""
    users: dict[str, int] = {}
    for node in graph.nodes:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    producer = {node.output[0]: node for node in graph.nodes}
    dropped: set[int] = set()
    for node in graph.nodes:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        first, bias = node.input
        previous = producer.get(first)
        if previous is None or users.get(first) != 1 or bias not in graph.constants:
            continue
        b = graph.constants[bias]
        if previous.op_type in ("Conv", "ConvTranspose") and len(previous.input) == 2:
            if b.shape != (1, _out_channels(graph, previous), 1, 1):
                continue
            previous.input.append(_parameter_or(graph, bias, "reshape", b.reshape(-1)))
        elif previous.op_type == "MatMul" and previous.input[1] in graph.constants:
            w = graph.constants[previous.input[1]]
            if w.ndim != 2 or b.shape != (w.shape[1],) or not _is_2d(graph, previous.input[0]):
                continue
            previous.op_type = "Gemm"
            weight = _parameter_or(graph, previous.input[1], "transpose", None)
            if weight != previous.input[1]:  # Linear's (out, in) weight as it is, with transB
                previous.input[1] = weight
                previous.attribute.append(graph.onnx.helper.make_attribute("transB", 1))
            previous.input.append(bias)
        else:
            continue
        previous.output[0] = node.output[0]
        dropped.add(id(node))
    return [node for node in graph.nodes if id(node) not in dropped]


def _parameter_or(graph: Graph, name: str, op: str, value: np.ndarray | None) -> str:
    """The parameter `name` was computed from by `op` (as an initializer), if it was;
    else `name` itself, holding `value` when given."""
    if name in graph.sources and graph.sources[name][2] == op:
        parameter, array, _ = graph.sources[name]
        if graph.constants.get(parameter) is None:
            graph.constants[parameter] = array
        if graph.constants[parameter] is array:
            return parameter
    if value is not None:
        graph.constants[name] = value
    return name


def _out_channels(graph: Graph, node: Any) -> int:
    w = graph.constants.get(node.input[1])
    if w is None:
        return -1
    if node.op_type == "Conv":
        return w.shape[0]  # (O, C/G, KH, KW)
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    return w.shape[1] * group  # (C, O/G, KH, KW)


def _is_2d(graph: Graph, name: str) -> bool:
    return graph.ndims.get(name) == 2


# ----------------------------------------------------------------------------------------
# The public function
# ----------------------------------------------------------------------------------------


def to_onnx(model: Any, example_input: Any, dynamic_batch: bool = True) -> Any:
    """The ONNX ModelProto of `model` (see `export`, which writes it to a file).

    Example:
        >>> from tinygrad_cnn import nn
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> [node.op_type for node in to_onnx(model, np.zeros((1, 4), np.float32)).graph.node]
        ['Gemm', 'Relu', 'Gemm']
    """
    onnx = _onnx()
    data = example_input.data if isinstance(example_input, Tensor) else example_input
    data = np.asarray(data)
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float32)
    if data.ndim < 1:
        raise ValueError(f"onnx.export: example_input needs a batch axis, got shape {data.shape}")
    modes = [(module, module.training) for module in model.modules()]
    model.eval()  # Dropout drops nothing, BatchNorm uses its running statistics
    out = None
    try:
        x = Tensor(data.copy(), requires_grad=True)  # so every op that uses it is recorded
        with enable_grad():  # even when called inside no_grad()
            out = model(x)
        if not isinstance(out, Tensor):
            raise TypeError(f"onnx.export: the model must return one Tensor, got {type(out)}")
        graph = _build_graph(onnx, model, x, out)
    finally:
        for module, training in modes:
            module.training = training
        for tensor in walk([out]) if isinstance(out, Tensor) else ():
            if tensor._ctx is not None:  # no backward will run: unfreeze the weights now
                tensor._ctx.release()
    nodes = _fuse(graph)
    return _model_proto(onnx, graph, nodes, x, out, dynamic_batch)


def _model_proto(onnx: Any, graph: Graph, nodes: list, x: Tensor, out: Tensor, dynamic: bool):
    elem = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)

    def value_info(name: str, shape: tuple[int, ...]) -> Any:
        dims = list(shape)
        if dynamic and dims and dims[0] == x.shape[0]:
            dims[0] = "batch"
        return onnx.helper.make_tensor_value_info(name, elem, dims)

    output_name = graph.value_names[id(out)]
    for node in nodes:  # rename the final value "output", wherever it is produced
        node.input[:] = ["output" if name == output_name else name for name in node.input]
        node.output[:] = ["output" if name == output_name else name for name in node.output]
    used = {name for node in nodes for name in node.input}
    initializers = [
        onnx.numpy_helper.from_array(np.ascontiguousarray(value), name)
        for name, value in graph.constants.items()
        if name in used
    ]
    onnx_graph = onnx.helper.make_graph(
        nodes, "tinygrad_cnn", [value_info("input", x.shape)],
        [value_info("output", out.shape)], initializers,
    )  # fmt: skip
    proto = onnx.helper.make_model(
        onnx_graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="tinygrad_cnn",
    )  # fmt: skip
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime releases of 2023 on
    onnx.checker.check_model(proto)
    return proto


def export(
    model: Any, example_input: Any, path: str | os.PathLike, dynamic_batch: bool = True
) -> Path:
    """Write `model` as an ONNX file that onnxruntime runs and Netron draws.

    The model runs once on `example_input` in eval mode (Dropout off, BatchNorm on its running
    statistics; the modes are restored after), and the ops it recorded become ONNX nodes.

    Args:
        model: a Module (or any callable of Modules) taking one (N, ...) tensor.
        example_input: an array or Tensor of the input's shape; its values do not matter.
        path: the .onnx file to write (atomically; its folder is created).
        dynamic_batch: the batch axis is named 'batch' instead of fixed at N, so the file
            takes any batch size. The other axes stay as in the example.
    Returns:
        The path written.
    Raises:
        ImportError: the onnx package is missing (the message says how to install it).
        ValueError: an op with no ONNX translation, naming it and the layer that used it.
    Example:
        >>> import tempfile, pathlib, onnx
        >>> from tinygrad_cnn.models import mnist_cnn
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "cnn.onnx"
        >>> path = export(mnist_cnn(seed=0), np.zeros((1, 1, 28, 28), np.float32), path)
        >>> [node.op_type for node in onnx.load(path).graph.node]
        ['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Reshape', 'Gemm', 'Relu', 'Gemm']
    """
    from tinygrad_cnn.files import write_atomically

    proto = to_onnx(model, example_input, dynamic_batch)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, proto.SerializeToString())
    return path
