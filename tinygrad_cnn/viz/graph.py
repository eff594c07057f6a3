"""Draw the compute graph behind a tensor with Graphviz: ops, leaves, module boxes, gradients.

    from tinygrad_cnn.viz import draw_graph
    loss = ops.cross_entropy(model(x), y)
    draw_graph(loss, depth=1).render("cnn", format="svg")     # or show it in Jupyter

Legend (each drawing carries the same legend, for the kinds it shows):

    grey rounded box      an op, with its key attributes (`conv2d stride 2 padding 'same'`)
    blue box              a parameter, named by its module path (`features.0.weight`)
    blue dashed box       a tensor requiring grad that has no name
    amber box             an input (no gradient)
    dashed ellipse        a constant (a Python number that took part in the expression)
    green box             the output (the tensor drawn)
    purple 3-D box        a module folded into one node (depth=...): shapes in -> out, params
    pink rounded box      an op's backward (backward=True), from the loss to the leaves
    shaded box            a module: the ops its forward ran, titled `path: summary`
    edge label            shape and dtype of the value passed (of its gradient, backward)
    red outline / text    a gradient holding NaN or inf (show_grads=True)

This file turns the nodes and edges of `build.py` into DOT: nested clusters for modules, one
style per kind of node (`labels.py`), counter ids so the same graph gives the same text.
Read `build.py` next.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import graphviz

from tinygrad_cnn.files import write_atomically
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.viz.build import (
    Drawing,
    Names,
    backward_view,
    box_key,
    collapse,
    forward_view,
)
from tinygrad_cnn.viz.labels import (
    BAD_COLOUR,
    CLUSTER_FILLS,
    LEGEND_TEXT,
    STYLES,
    dtype_text,
    esc,
    html_label,
    shape_text,
)
from tinygrad_cnn.walk import walk

DIRECTIONS = ("TB", "LR", "BT", "RL")
DEFAULT_MAX_NODES = 600
INSTALL_HINT = (
    "install Graphviz: `apt install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS) or `conda install graphviz`"
)
FORMATS = ("svg", "png", "pdf")


class GraphvizMissingError(RuntimeError):
    """The Graphviz `dot` program is not installed (the DOT text can still be had).

    Example:
        >>> issubclass(GraphvizMissingError, RuntimeError)
        True
    """


class Graph(graphviz.Digraph):
    """A `graphviz.Digraph` whose `render`/`pipe` say what to install when `dot` is missing.

    Example:
        >>> graph = Graph()
        >>> graph.edge("a", "b")
        >>> graph.source
        'digraph {\\n\\ta -> b\\n}\\n'
    """

    def render(self, *args: Any, **kwargs: Any) -> str:
        """`graphviz.Digraph.render`, raising GraphvizMissingError when `dot` is missing."""
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizMissingError(
                f"render: the Graphviz program `dot` was not found on PATH; {INSTALL_HINT}. "
                f"The DOT source was written to {self.filepath}"
            ) from error

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        """`graphviz.Digraph.pipe`, raising GraphvizMissingError when `dot` is missing."""
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as error:
            raise GraphvizMissingError(
                f"pipe: the Graphviz program `dot` was not found on PATH; {INSTALL_HINT}. "
                f"The DOT text is in `graph.source` (or `viz.to_dot(...)`)"
            ) from error


# ----------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------


def draw_graph(
    root: Tensor | Sequence[Tensor],
    *,
    direction: str = "TB",
    show_shapes: bool = True,
    show_grads: bool = False,
    backward: bool = False,
    depth: int | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    title: str | None = None,
    legend: bool = True,
) -> Graph:
    """Draw the graph that computed `root` (a tensor, usually a loss, or a list of them).

    Args:
        root: the output(s) to draw; everything they were computed from is drawn.
        direction: 'TB' (top to bottom), 'LR', 'BT' or 'RL'.
        show_shapes: label edges with shape and dtype, and leaves with their shape.
        show_grads: add each tensor's gradient (shape and norm, or values when tiny) after
            `backward()`; NaN/inf are drawn in red. Intermediate tensors have a gradient only
            when `retain_grad()` was called on them.
        backward: draw the backward pass instead: one node per op's backward, from the output
            to the leaves that require grad (the gradient flows along the arrows).
        depth: fold modules into single nodes below this nesting level: the model itself is
            level 0, so depth=0 draws it as one node, depth=1 draws its direct children as
            nodes inside its box, and so on. None draws every op.
        max_nodes: refuse to draw more nodes than this (Graphviz slows down past a few
            thousand); raise it, or fold modules with `depth`.
        title: a caption above the drawing.
        legend: show a legend of the kinds of node drawn.
    Returns:
        a `graphviz.Digraph`: `.render(path, format='svg')`, `.source` for the DOT text; it
        shows itself in Jupyter.
    Raises:
        TypeError: root is not a Tensor or a list of Tensors.
        ValueError: a bad direction, depth or max_nodes, or more than max_nodes nodes.
    Example:
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> graph = draw_graph((x * x).sum(), legend=False)
        >>> [line.split()[0] for line in graph.source.splitlines() if "label=<<B>" in line]
        ['leaf1', 'op2', 'op3', 'out4']
    """
    roots = [root] if isinstance(root, Tensor) else list(root) if _is_list(root) else None
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise TypeError(
            f"draw_graph: root must be a Tensor or a non-empty list of Tensors, "
            f"got {type(root).__name__}"
        )
    if direction not in DIRECTIONS:
        raise ValueError(f"draw_graph: direction must be one of {DIRECTIONS}, got {direction!r}")
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"draw_graph: depth must be None or an int >= 0, got {depth!r}")
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"draw_graph: max_nodes must be an int >= 1, got {max_nodes!r}")

    _, names, drawing = build_drawing(roots, backward, depth, show_shapes, show_grads, max_nodes)
    return _to_graphviz(drawing, names, direction, show_shapes, title, legend)


def build_drawing(
    roots: list[Tensor],
    backward: bool = False,
    depth: int | None = None,
    show_shapes: bool = True,
    show_grads: bool = False,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> tuple[list[Tensor], Names, Drawing]:
    """(every tensor drawn, module names, nodes and edges) of `draw_graph`, before DOT.

    Raises:
        ValueError: more than max_nodes nodes.
    Example:
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> order, names, drawing = build_drawing([(x * x).sum()])
        >>> len(order), [node.id for node in drawing.nodes]
        (3, ['leaf1', 'op2', 'op3', 'out4'])
    """
    order = walk(roots)
    names = Names(order)
    view = backward_view if backward else forward_view
    drawing = view(roots, order, names, show_shapes, show_grads)
    if depth is not None:
        drawing = collapse(drawing, depth, names, show_shapes, show_grads)
    if len(drawing.nodes) > max_nodes:
        if depth is None:
            hint = ", or depth=1 (or 2) to draw each module below that level as one node"
        else:
            hint = f", or a depth below {depth}" if depth > 0 else ""
        raise ValueError(
            f"draw_graph: the graph has {len(drawing.nodes)} nodes, more than "
            f"max_nodes={max_nodes}; pass a larger max_nodes={hint}"
        )
    return order, names, drawing


def to_dot(root: Tensor | Sequence[Tensor], **options: Any) -> str:
    """The DOT text of `draw_graph(root, **options)`; needs no Graphviz program.

    Example:
        >>> to_dot(Tensor([1.0], requires_grad=True) * 2).startswith("digraph")
        True
    """
    return draw_graph(root, **options).source


def save_graph(graph: graphviz.Digraph, path: str | Path) -> Path:
    """Write `graph` to `path`; the suffix picks the format: .svg, .png, .pdf, or .dot / .gv
    for the DOT text alone (which needs no Graphviz program).

    Raises:
        ValueError: an unknown suffix.
        GraphvizMissingError: `dot` is missing (the DOT text is then written to `path` with the
            suffix .gv, unless a file of that name exists). No other file is touched.
    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> graph = draw_graph(Tensor([1.0], requires_grad=True) * 2)
        >>> path = save_graph(graph, folder / "graph.dot")  # .svg/.png/.pdf need `dot`
        >>> path.read_text().startswith("digraph")
        True
    """
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS + ("dot", "gv"):
        raise ValueError(f"save_graph: {path.name!r} should end in .svg, .png, .pdf or .dot")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in ("dot", "gv"):
        write_atomically(path, graph.source.encode())
        return path
    if not isinstance(graph, Graph):  # a plain Digraph: borrow the helpful error
        graph = Graph(
            body=list(graph.body),
            graph_attr=dict(graph.graph_attr),
            node_attr=dict(graph.node_attr),
            edge_attr=dict(graph.edge_attr),
        )
    # pipe, not render: render writes (and with cleanup deletes) a `.gv` file beside `path`,
    # which may be a file of the user's; only the file named is ever written
    try:
        payload = graph.pipe(format=suffix)
    except GraphvizMissingError as error:
        sibling = path.with_suffix(".gv")
        if sibling.exists():  # someone's file: leave it alone
            note = f"{sibling} exists, so nothing was written; save to a .dot path instead"
        else:
            write_atomically(sibling, graph.source.encode())
            note = f"The DOT source was written to {sibling}"
        raise GraphvizMissingError(
            f"save_graph: the Graphviz program `dot` was not found on PATH; {INSTALL_HINT}. {note}"
        ) from error
    write_atomically(path, payload)
    return path


def _is_list(root: Any) -> bool:
    return isinstance(root, (list, tuple))


# ----------------------------------------------------------------------------------------
# Nodes and edges -> DOT
# ----------------------------------------------------------------------------------------


def _to_graphviz(
    drawing: Drawing,
    names: Names,
    direction: str,
    show_shapes: bool,
    title: str | None,
    legend: bool,
    boxes: dict[str, tuple] | None = None,
) -> Graph:
    """The DOT of `drawing`; fills `boxes` (when given) with {cluster name: box key}."""
    graph = Graph(name="compute_graph")
    graph.attr(
        rankdir=direction,
        newrank="true",
        nodesep="0.25",
        ranksep="0.35",
        fontname="Helvetica",
        fontsize="12",
    )
    graph.attr("node", fontname="Helvetica", fontsize="11", margin="0.12,0.04")
    graph.attr(
        "edge",
        fontname="Helvetica",
        fontsize="9",
        fontcolor="#374151",
        color="#6b7280",
        arrowsize="0.7",
    )
    if title is not None:
        graph.attr(label=html_label([f"<B>{esc(title)}</B>"]), labelloc="t", fontsize="14")

    # each node goes in the box of the innermost module of its chain; boxes nest
    members: dict[tuple, list] = {}
    children: dict[tuple, list[tuple]] = {(): []}
    module_of: dict[tuple, Any] = {}
    for node in drawing.nodes:
        for level in range(1, len(node.chain) + 1):
            key = box_key(node, level)
            if key not in children:
                children[key] = []
                children[key[:-1]].append(key)
                module_of[key] = node.chain[level - 1]
        members.setdefault(box_key(node, len(node.chain)), []).append(node)

    cluster_ids = itertools.count(1)

    def add_box(parent: graphviz.Digraph, key: tuple, level: int) -> None:
        for node in members.get(key, []):
            style = dict(STYLES[node.kind])
            if node.bad:
                style.update(color=BAD_COLOUR, penwidth="2")
            parent.node(node.id, label=html_label(node.lines), **style)
        for child in children[key]:
            cluster = f"cluster_{next(cluster_ids)}"
            if boxes is not None:
                boxes[cluster] = child
            with parent.subgraph(name=cluster) as box:
                box.attr(
                    label=html_label([names.title(module_of[child])]),
                    labeljust="l",
                    style="rounded,filled",
                    color="#94a3b8",
                    fontsize="11",
                    fillcolor=CLUSTER_FILLS[level % len(CLUSTER_FILLS)],
                )
                add_box(box, child, level + 1)

    add_box(graph, (), 0)
    # in an expression of scalars (micrograd's kind) every edge would read "() f64"
    label_edges = show_shapes and not all(edge.tensor.ndim == 0 for edge in drawing.edges)
    for edge in drawing.edges:
        label = None
        if label_edges:
            label = f" {shape_text(edge.tensor.shape)} {dtype_text(edge.tensor.dtype)}"
        graph.edge(edge.src, edge.dst, label=label)
    if legend:
        _add_legend(graph, drawing, bool(children[()]))
    return graph


def _add_legend(graph: Graph, drawing: Drawing, has_modules: bool) -> None:
    """One table-shaped node: a swatch in each kind's colours beside what it means."""
    present = {node.kind for node in drawing.nodes}
    rows = []
    for kind in (k for k in STYLES if k in present):
        style = STYLES[kind]
        dashed = ' STYLE="dashed"' if "dashed" in style["style"] else ""
        rows.append(
            f'<TR><TD BGCOLOR="{style["fillcolor"]}" COLOR="{style["color"]}" BORDER="1"'
            f'{dashed} WIDTH="24"> </TD><TD ALIGN="LEFT">{esc(LEGEND_TEXT[kind])}</TD></TR>'
        )
    if has_modules:
        rows.append(
            f'<TR><TD BGCOLOR="{CLUSTER_FILLS[0]}" COLOR="#94a3b8" BORDER="1"> </TD>'
            f'<TD ALIGN="LEFT">{esc("module box: the ops its forward ran")}</TD></TR>'
        )
    table = (
        '<TABLE BORDER="1" COLOR="#9ca3af" CELLBORDER="0" CELLSPACING="3" CELLPADDING="2">'
        '<TR><TD COLSPAN="2" ALIGN="LEFT"><B>legend</B></TD></TR>' + "".join(rows) + "</TABLE>"
    )
    graph.node("legend", label=f"<{table}>", shape="plaintext", fontsize="9")
