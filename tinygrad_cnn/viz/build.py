"""What a drawing holds: the nodes and edges of a compute graph, before Graphviz sees them.

Every tensor made by an op remembers that op (`t._ctx`, a Function with `.name`, `.inputs` and
`.params`) and the modules whose forward was running (`t._scope`, outermost first). That is all
a drawing needs. `forward_view` walks the graph from the outputs back to the leaves and makes a
node per op and per leaf; `backward_view` makes a node per op's backward, as the backward pass
visits them; `collapse` folds deep modules into single nodes. Each node records the modules it
is drawn inside; `graph.py` turns those into nested boxes.

Read `labels.py` next, for how each node's text is written.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.viz.labels import (
    TINY,
    bold,
    count_text,
    dtype_text,
    esc,
    grad_lines,
    module_summary,
    op_attributes,
    parameter_count,
    shape_text,
    small,
    values_text,
    wrapped,
)
from tinygrad_cnn.walk import walk  # noqa: F401 (the examples below use it)

# ----------------------------------------------------------------------------------------
# Reading the graph: every tensor reachable from the roots, and the names of modules
# ----------------------------------------------------------------------------------------


class Names:
    """Dotted paths of modules and names of parameters, found by identity in each model.

    The model is the outermost module of a tensor's scope; its `named_modules()` and
    `named_parameters()` give `features.0` and `features.0.weight`.

    Example:
        >>> from tinygrad_cnn import nn
        >>> out = nn.Sequential(nn.Linear(2, 1), nn.ReLU())(Tensor(np.ones((1, 2))))
        >>> sorted(Names(walk([out])).parameter.values())
        ['0.bias', '0.weight']
    """

    def __init__(self, tensors: list[Tensor]):
        self.path: dict[int, str] = {}  # id(module) -> dotted path
        self.parameter: dict[int, str] = {}  # id(parameter) -> dotted name
        self.parameter_chain: dict[int, tuple] = {}  # id(parameter) -> modules, outermost first
        models: dict[int, Any] = {}
        # id(module) -> serial number of its first call; its keys are the modules whose
        # forward ran (a container such as ModuleList may never run)
        self.first_call: dict[int, int] = {}
        for tensor in tensors:
            for module, serial in zip(tensor._scope, tensor._calls):
                self.first_call[id(module)] = min(serial, self.first_call.get(id(module), serial))
            if tensor._scope and id(tensor._scope[0]) not in models:
                models[id(tensor._scope[0])] = tensor._scope[0]
        for model in models.values():
            self._add_model(model)

    def _add_model(self, model: Any) -> None:
        named_modules = getattr(model, "named_modules", None)
        modules = dict(named_modules()) if callable(named_modules) else {"": model}
        for path, module in modules.items():
            self.path.setdefault(id(module), path)
        named_parameters = getattr(model, "named_parameters", None)
        if not callable(named_parameters):
            return
        for name, parameter in named_parameters():
            if id(parameter) in self.parameter:
                continue  # shared between two models: the first one names it
            self.parameter[id(parameter)] = name
            owners = name.split(".")[:-1]  # "features.0.weight" -> features, features.0
            prefixes = (".".join(owners[: i + 1]) for i in range(len(owners)))
            owners = [modules[p] for p in prefixes if p in modules]
            # drawn in the box of the innermost module that ran: a ModuleList never runs
            chain = [model] + [m for m in owners if id(m) in self.first_call]
            self.parameter_chain[id(parameter)] = tuple(chain)

    def calls_of(self, chain: tuple) -> tuple[int, ...]:
        """The first call of each module of `chain`: where its parameters are drawn."""
        return tuple(self.first_call.get(id(module), 0) for module in chain)

    def title(self, module: Any) -> str:
        """Escaped cluster/node title: **path**: summary (the model itself: its summary)."""
        path = self.path.get(id(module), "")
        summary = "<BR/>".join(esc(line) for line in wrapped(module_summary(module)))
        return f"<B>{esc(path)}</B>: {summary}" if path else f"<B>{summary}</B>"


# ----------------------------------------------------------------------------------------
# The drawing as plain data: nodes (with the modules they belong to) and edges
# ----------------------------------------------------------------------------------------


@dataclass
class Node:
    """One box of a drawing: its id, style kind, label lines and enclosing modules.

    Example:
        >>> Node("op1", "op", ["<B>relu</B>"]).chain
        ()
    """

    id: str
    kind: str  # a key of labels.STYLES
    lines: list[str]  # escaped label lines
    chain: tuple = ()  # modules the node is drawn inside, outermost first
    bad: bool = False  # a NaN/inf gradient: outlined in red
    calls: tuple = ()  # which call of each module of chain (serial numbers, see tensor.py)
    tensor: Any = field(default=None, repr=False, compare=False)  # what it shows (forward)


@dataclass
class Edge:
    """An arrow from node `src` to node `dst`, labelled from `tensor` (shape, dtype).

    Example:
        >>> Edge("leaf1", "op1", Tensor(np.zeros((2, 3)))).tensor.shape
        (2, 3)
    """

    src: str
    dst: str
    tensor: Tensor  # the value passed (forward) or whose gradient is passed (backward)


@dataclass
class Drawing:
    """The nodes and edges of one drawing; `add` makes a node with a fresh id.

    Example:
        >>> drawing = Drawing()
        >>> drawing.add("op", "op", ["<B>add</B>"]), drawing.add("op", "op", ["<B>mul</B>"])
        ('op1', 'op2')
        >>> drawing.nodes[1]
        Node(id='op2', kind='op', lines=['<B>mul</B>'], chain=(), bad=False, calls=())
    """

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    counter: Any = field(default_factory=lambda: itertools.count(1))
    box_of: dict = field(default_factory=dict)  # module node id -> box_key of what it folds

    def add(
        self,
        prefix: str,
        kind: str,
        lines: list[str],
        chain: tuple = (),
        bad: bool = False,
        calls: tuple = (),
        tensor: Any = None,
    ) -> str:
        """Append a node whose id is `prefix` and a running number; return that id."""
        node = Node(f"{prefix}{next(self.counter)}", kind, lines, chain, bad, calls, tensor)
        self.nodes.append(node)
        return node.id


def box_key(node: Node, levels: int) -> tuple:
    """Keys of the boxes around `node`, outermost first, for its first `levels` modules.

    A box is one call of a module: a block called twice, or a pool reused at every level of
    a U-Net, is drawn where each call happens rather than as one knot. (A parameter is drawn
    in the box of its module's first call.)

    Example:
        >>> box_key(Node("op1", "op", ["<B>add</B>"]), levels=0)  # drawn outside any module
        ()
    """
    return tuple((id(m), c) for m, c in zip(node.chain[:levels], node.calls[:levels]))


def _leaf_calls(tensor: Tensor, chain: tuple, names: Names) -> tuple[int, ...]:
    """A constant made in a call belongs to that call; a parameter to its module's first."""
    return tensor._calls if chain is tensor._scope else names.calls_of(chain)


def _shape_line(tensor: Tensor) -> str:
    return small(f"{shape_text(tensor.shape)} {dtype_text(tensor.dtype)}")


def _leaf(tensor: Tensor, names: Names, show_shapes: bool, show_grads: bool):
    """(kind, label lines, chain, bad) of a leaf tensor."""
    name = names.parameter.get(id(tensor), tensor.name)
    chain = names.parameter_chain.get(id(tensor), tensor._scope)
    if tensor.requires_grad:
        kind = "parameter" if name else "grad_tensor"
    else:
        # a number in the expression, or an array a layer made (a dropout mask): a constant
        made_inside = tensor.size == 1 or bool(tensor._scope)
        kind = "constant" if made_inside and (name is None or tensor._scope) else "input"
    if kind == "constant" and tensor.size == 1 and name is None:
        lines = [bold(values_text(tensor.data))]
    elif kind == "constant":
        lines = [bold(name or "constant")] + ([_shape_line(tensor)] if show_shapes else [])
    else:
        lines = [bold(name or ("tensor" if kind == "grad_tensor" else "input"))]
        if show_shapes:
            lines.append(_shape_line(tensor))
        if tensor.size <= TINY:
            lines.append(small(f"data {values_text(tensor.data)}"))
    bad = False
    if show_grads and tensor.requires_grad:
        more, bad = grad_lines(tensor.grad)
        lines += more
    return kind, lines, chain, bad


# ops whose output only rearranges their input: their values are not worth repeating
_MOVEMENT = {"reshape", "transpose", "getitem", "flatten", "pad", "concat"}


def _op_lines(tensor: Tensor, suffix: str, show_grads: bool, with_data: bool, roots: Sequence = ()):
    fn = tensor._ctx
    params = getattr(fn, "params", {})
    # a named intermediate ("e = a*b") shows its name; a root's name is on its output node
    named = tensor.name and all(tensor is not root for root in roots)
    lines = [bold(f"{tensor.name} = {fn.name}{suffix}" if named else fn.name + suffix)]
    kernel = None
    if fn.name.startswith("conv") and len(fn.inputs) > 1 and fn.inputs[1].ndim == 4:
        kernel = fn.inputs[1].shape[2:]  # the weight is (O, C, KH, KW)
    # the layer's 'same'/'valid' reads better than the padding it resolved to
    layer_padding = getattr(tensor._scope[-1], "padding", None) if tensor._scope else None
    padding_name = layer_padding if isinstance(layer_padding, str) and "padding" in params else None
    attributes = op_attributes(params, kernel, padding_name)
    if attributes:
        lines.append(small(attributes))
    if with_data and tensor.size <= TINY and fn.name not in _MOVEMENT:
        lines.append(small(f"data {values_text(tensor.data)}"))
    bad = False
    if show_grads and tensor.grad is not None:  # kept by retain_grad()
        more, bad = grad_lines(tensor.grad)
        lines += more
    return lines, bad


def _output_lines(tensor: Tensor, show_shapes: bool, backward: bool) -> list[str]:
    lines = [bold(tensor.name or ("output"))]
    if show_shapes:
        lines.append(_shape_line(tensor))
    if tensor.size <= TINY:
        lines.append(small(f"data {values_text(tensor.data)}"))
    return lines


def forward_view(
    roots: list[Tensor], order: list[Tensor], names: Names, show_shapes: bool, show_grads: bool
) -> Drawing:
    """One node per op and per leaf; edges carry values from inputs to the ops using them.

    Example:
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> order = walk([y])
        >>> drawing = forward_view([y], order, Names(order), show_shapes=True, show_grads=False)
        >>> [node.kind for node in drawing.nodes]
        ['grad_tensor', 'op', 'op', 'output']
        >>> [(edge.src, edge.dst) for edge in drawing.edges]
        [('leaf1', 'op2'), ('leaf1', 'op2'), ('op2', 'op3'), ('op3', 'out4')]
    """
    drawing = Drawing()
    node_of: dict[int, str] = {}
    for tensor in order:
        if tensor._ctx is None:
            kind, lines, chain, bad = _leaf(tensor, names, show_shapes, show_grads)
            calls = _leaf_calls(tensor, chain, names)
            node_of[id(tensor)] = drawing.add("leaf", kind, lines, chain, bad, calls, tensor)
            continue
        lines, bad = _op_lines(tensor, "", show_grads, with_data=True, roots=roots)
        scope, calls = tensor._scope, tensor._calls
        node_of[id(tensor)] = drawing.add("op", "op", lines, scope, bad, calls, tensor)
        for inp in tensor._ctx.inputs:
            drawing.edges.append(Edge(node_of[id(inp)], node_of[id(tensor)], inp))
    for root in roots:
        if root._ctx is not None:
            lines = _output_lines(root, show_shapes, False)
            out = drawing.add("out", "output", lines, tensor=root)
            drawing.edges.append(Edge(node_of[id(root)], out, root))
    return drawing


def backward_view(
    roots: list[Tensor], order: list[Tensor], names: Names, show_shapes: bool, show_grads: bool
) -> Drawing:
    """One node per op's backward, from the loss to the leaves that require grad.

    Example:
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> order = walk([y])
        >>> drawing = backward_view([y], order, Names(order), show_shapes=True, show_grads=False)
        >>> [node.kind for node in drawing.nodes]
        ['output', 'grad_fn', 'grad_fn', 'grad_tensor']
    """
    drawing = Drawing()
    starts = [
        (root, drawing.add("out", "output", _output_lines(root, show_shapes, True)))
        for root in roots
        if root._ctx is not None
    ]
    node_of: dict[int, str] = {}
    for tensor in reversed(order):  # the loss first
        if tensor._ctx is not None:
            lines, bad = _op_lines(tensor, " backward", show_grads, with_data=False, roots=roots)
            scope = tensor._scope
            node_of[id(tensor)] = drawing.add("grad", "grad_fn", lines, scope, bad, tensor._calls)
        elif tensor.requires_grad:
            kind, lines, chain, bad = _leaf(tensor, names, show_shapes, show_grads)
            calls = _leaf_calls(tensor, chain, names)
            node_of[id(tensor)] = drawing.add("leaf", kind, lines, chain, bad, calls)
    for root, start in starts:
        drawing.edges.append(Edge(start, node_of[id(root)], root))
    for tensor in reversed(order):
        fn = tensor._ctx
        if fn is None:
            continue
        for inp, needs_grad in zip(fn.inputs, fn.needs_input_grad):
            if needs_grad:
                drawing.edges.append(Edge(node_of[id(tensor)], node_of[id(inp)], inp))
    return drawing


def collapse(
    drawing: Drawing, depth: int, names: Names, show_shapes: bool, show_grads: bool
) -> Drawing:
    """Fold every module at nesting level `depth` (the model is level 0) into one node.

    Edges inside a folded module disappear; edges crossing its border attach to its node,
    whose label gives the module, the shapes going in -> out and its parameter count.

    Example:
        >>> from tinygrad_cnn import nn
        >>> out = nn.Sequential(nn.Linear(2, 1), nn.ReLU())(Tensor(np.ones((1, 2))))
        >>> order = walk([out])
        >>> names = Names(order)
        >>> drawing = forward_view([out], order, names, show_shapes=True, show_grads=False)
        >>> [node.kind for node in collapse(drawing, 1, names, True, False).nodes]
        ['input', 'module', 'module', 'output']
    """
    folded = Drawing(counter=drawing.counter)
    group_of: dict[str, str] = {}  # node id -> id of the module node that swallowed it
    groups: dict[tuple, Node] = {}
    for node in drawing.nodes:
        if len(node.chain) <= depth:
            folded.nodes.append(node)
            continue
        key = box_key(node, depth + 1)
        if key not in groups:
            module = node.chain[depth]
            lines = [names.title(module)]
            folded.add("mod", "module", lines, node.chain[:depth], calls=node.calls[:depth])
            groups[key] = folded.nodes[-1]
            folded.box_of[groups[key].id] = key
        group_of[node.id] = groups[key].id
        groups[key].bad |= node.bad
    seen: set[tuple] = set()
    for edge in drawing.edges:
        src, dst = group_of.get(edge.src, edge.src), group_of.get(edge.dst, edge.dst)
        if src == dst:
            continue
        key = (src, dst, id(edge.tensor))
        if (src != edge.src or dst != edge.dst) and key in seen:
            continue  # one value entering a module twice is drawn once
        seen.add(key)
        folded.edges.append(Edge(src, dst, edge.tensor))
    for group in groups.values():
        module = next(n.chain[depth] for n in drawing.nodes if group_of.get(n.id) == group.id)
        if show_shapes:
            ins = _unique_shapes(e.tensor for e in folded.edges if e.dst == group.id)
            outs = _unique_shapes(e.tensor for e in folded.edges if e.src == group.id)
            group.lines.append(small(" -> ".join(s for s in (ins, outs) if s) or "()"))
        count = parameter_count(module)
        if count:
            group.lines.append(small(count_text(count)))
        grads = [p.grad for p in getattr(module, "parameters", list)() if p.grad is not None]
        if show_grads and grads:  # the norm over all of the module's parameter gradients
            flat = np.concatenate([g.astype(np.float64).reshape(-1) for g in grads])
            more, bad = grad_lines(flat)
            group.lines += [line.replace(f"grad ({flat.size},)", "grad") for line in more]
            group.bad |= bad
    return folded


def _unique_shapes(tensors: Any) -> str:
    shapes, seen = [], set()
    for tensor in tensors:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            shapes.append(shape_text(tensor.shape))
    return ", ".join(shapes)
