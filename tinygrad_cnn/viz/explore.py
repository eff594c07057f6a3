"""The graph explorer: one self-contained HTML page to hover a graph and step through backward.

    from tinygrad_cnn.viz import explore
    explore(loss, "graph.html")          # runs loss.backward(), recording every step
    explore(loss)                        # in Jupyter: shown inline

The page holds the Graphviz SVG of the forward graph (the drawing of `graph.py`, module boxes
and all), its CSS and plain JavaScript (`explorer.js`, `explorer.css`), and the data below;
it loads nothing from anywhere, so it opens offline in any browser.

The data contract: `<script type="application/json" id="graph-data">` holds

    title     the page's caption
    nodes     [{id, label, op, kind, shape, dtype, value, grad, module, source}]
              id: the node's id, also `data-node="<id>"` on its SVG element
              label: the text drawn in the box; op: the op's name (null for leaves/output)
              kind: op, parameter, grad_tensor, input, constant or output
              value, grad: null, a number (one element), or {min, mean, max, norm} plus
                  `heatmap` {h, w, channels, of, lo, hi, data: base64 uint8, row-major,
                  channel after channel} for image-shaped (N, C, H, W) tensors (sample 0)
              module: the dotted path of the innermost module that made it ("" outside)
              source: {file, class, forward: {line, code}, backward: {line, code}} or null
    edges     [[from_id, to_id]], in the forward direction (input -> op that uses it)
    steps     in the order the engine's backward visited the nodes:
              [{node, grad, text, sent: [{to, grad, text}]}], where grad is as above (the
              node's complete gradient; a contribution's gradient) and `to` an input's id
    modules   [{id, title, level, nodes, parent}]: the module boxes (one call of a module
              each; the model's box is level 1), every node inside, the enclosing box
    folded    the ids of the boxes folded when the page opens
    layouts   [{depth, index}]: the page holds one SVG per depth (`<div class="layout"
              data-depth=...>`), the one of depth d drawing each box of level d + 1 as a
              single node (`data-box="<id>"`); boxes drawn as frames carry
              `data-module="<id>"`, edges `data-from`/`data-to` (node ids, or `box:<id>`).
              The last layout draws every op; the page shows the shallowest layout whose
              boxes of level d + 1 are all folded (`.layout.active`).

Read `record.py` for how the steps are recorded.
"""

from __future__ import annotations

import html
import json
import re
from html import escape as esc
from pathlib import Path
from typing import Any

from tinygrad_cnn.files import write_atomically
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.viz.build import collapse
from tinygrad_cnn.viz.explore_data import graph_data, module_boxes
from tinygrad_cnn.viz.graph import DIRECTIONS, _to_graphviz, build_drawing
from tinygrad_cnn.viz.record import record_backward

HERE = Path(__file__).resolve().parent


class Page:
    """An explorer page: `str(page)` is its HTML; Jupyter shows it inline.

    Example:
        >>> page = Page("<html></html>", None)
        >>> page._repr_html_().startswith("<iframe")
        True
    """

    def __init__(self, text: str, path: Path | None):
        self.text = text
        self.path = path

    def __str__(self) -> str:
        return self.text

    def __fspath__(self) -> str:
        if self.path is None:
            raise TypeError("this explorer page was not written to a file")
        return str(self.path)

    def _repr_html_(self) -> str:
        # an iframe keeps the page's script and styles apart from the notebook's
        srcdoc = html.escape(self.text, quote=True)
        return f'<iframe srcdoc="{srcdoc}" style="width:100%;height:640px;border:0"></iframe>'


def explore(
    root: Tensor,
    path: str | Path | None = None,
    depth: int | None = None,
    title: str | None = None,
    max_nodes: int = 600,
    direction: str = "TB",
) -> Path | Page:
    """Write the explorer page of the graph behind `root` (usually a loss) to `path`.

    Runs `root.backward()` (so call it instead of backward, not after), recording each node
    as the engine visits it; the leaves get their `.grad` as usual.

    Args:
        root: a tensor that requires grad and has one element.
        path: the .html file to write; None returns the page, which Jupyter shows inline.
        depth: module boxes below this nesting level start folded (the model is level 0);
            None opens every box. Each box folds and unfolds by a click.
        title: a caption above the graph.
        max_nodes: refuse graphs with more nodes than this.
        direction: 'TB' (top to bottom), 'LR', 'BT' or 'RL', as in `draw_graph`.
    Returns:
        `path` as a Path, or a Page when path is None.
    Raises:
        TypeError: root is not a Tensor.
        ValueError: root has more than one element, a bad depth, or too many nodes.
        RuntimeError: root needs no gradient, or backward already ran on its graph.
    Example:
        >>> import tempfile, pathlib
        >>> a, b = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True)
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> explore((a * b + b**3).relu(), folder / "g.html").stat().st_size > 1000
        True
        >>> float(b.grad)
        0.0
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"explore: root must be a Tensor, got {type(root).__name__}")
    if root.size != 1:
        raise ValueError(f"explore: root must have one element (a loss), got shape {root.shape}")
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"explore: depth must be None or an int >= 0, got {depth!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"explore: direction must be one of {DIRECTIONS}, got {direction!r}")
    build_drawing([root], max_nodes=max_nodes)  # too big: refused before backward runs
    visits = record_backward(root)
    _, names, drawing = build_drawing([root], show_grads=True, max_nodes=max_nodes)
    data = graph_data(root, visits, names, drawing, title)
    box_ids, data["modules"] = module_boxes(drawing, names)
    levels = {m["id"]: m["level"] for m in data["modules"]}
    data["folded"] = [] if depth is None else [b for b, lv in levels.items() if lv == depth + 1]
    svgs, data["layouts"] = layouts(drawing, names, box_ids, direction, data["title"])
    text = page_html(svgs, data)
    if path is None:
        return Page(text, None)  # Jupyter shows it through _repr_html_
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode("utf-8"))
    return path


# ----------------------------------------------------------------------------------------
# The page: SVG marked with data attributes, CSS, JS and data inline
# ----------------------------------------------------------------------------------------

_NODE = re.compile(r'<g id="(node\d+)" class="node">\s*<title>([^<]*)</title>')
_CLUSTER = re.compile(r'<g id="(clust\d+)" class="cluster">\s*<title>([^<]*)</title>')
_EDGE = re.compile(r'<g id="(edge\d+)" class="edge">\s*<title>([^<]*)</title>')


def layouts(
    drawing: Any, names: Any, box_ids: dict[tuple, str], direction: str, title: str
) -> tuple[list[str], list[dict]]:
    """One Graphviz layout per folding level: SVGs, and for each {depth, index}.

    Layout `depth` draws every box of level depth + 1 as a single module node (`collapse`);
    the last draws every op. The page shows the most folded layout its folded boxes allow,
    and folds the remaining boxes in place.

    Example:
        >>> from tinygrad_cnn import nn
        >>> out = nn.Sequential(nn.Linear(2, 1), nn.ReLU())(Tensor(np.ones((1, 2)))).sum()
        >>> _, names, drawing = build_drawing([out])
        >>> box_ids, _ = module_boxes(drawing, names)
        >>> svgs, info = layouts(drawing, names, box_ids, "TB", "demo")
        >>> [entry["depth"] for entry in info], 'data-box="box1"' in svgs[0]
        ([0, 1, 2], True)
    """
    deepest = max((len(node.chain) for node in drawing.nodes), default=0)
    svgs, info = [], []
    for depth in range(deepest + 1):
        view = drawing if depth == deepest else collapse(drawing, depth, names, True, True)
        clusters: dict[str, tuple] = {}
        graph = _to_graphviz(view, names, direction, True, title, True, clusters)
        box_of = {node_id: box_ids[key] for node_id, key in view.box_of.items()}
        cluster_of = {name: box_ids[key] for name, key in clusters.items()}
        svg = graph.pipe(format="svg").decode("utf-8")
        svgs.append(mark_svg(svg, box_of, cluster_of))
        info.append({"depth": depth, "index": len(svgs) - 1})
    return svgs, info


def mark_svg(svg: str, box_of: dict | None = None, cluster_of: dict | None = None) -> str:
    """Graphviz's SVG with data attributes: data-node on nodes, data-box on module nodes
    (`box_of`: node id -> box id), data-module on module boxes (`cluster_of`: cluster name
    -> box id), data-from and data-to on edges (a box's end written `box:<id>`).

    Example:
        >>> mark_svg('<svg><g id="node1" class="node"><title>op2</title>')
        '<svg><g id="node1" class="node" data-node="op2"><title>op2</title>'
    """
    box_of, cluster_of = box_of or {}, cluster_of or {}
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype

    def end(name: str) -> str:
        return f"box:{box_of[name]}" if name in box_of else name

    def node(match: re.Match) -> str:
        name = html.unescape(match.group(2))
        if name == "legend":
            return match.group(0)
        mark = f'data-box="{box_of[name]}"' if name in box_of else f'data-node="{esc(name)}"'
        return match.group(0).replace('class="node"', f'class="node" {mark}', 1)

    def cluster(match: re.Match) -> str:
        name = html.unescape(match.group(2))
        mark = f' data-module="{cluster_of[name]}"' if name in cluster_of else ""
        return match.group(0).replace('class="cluster"', f'class="cluster"{mark}', 1)

    def edge(match: re.Match) -> str:
        src, _, dst = html.unescape(match.group(2)).partition("->")
        marks = f'class="edge" data-from="{esc(end(src))}" data-to="{esc(end(dst))}"'
        return match.group(0).replace('class="edge"', marks, 1)

    svg = _NODE.sub(node, svg)
    svg = _CLUSTER.sub(cluster, svg)
    return _EDGE.sub(edge, svg)


def page_html(svgs: list[str], data: dict) -> str:
    """The whole page: template, CSS, the marked SVG, the data as JSON, the script.

    Example:
        >>> text = page_html(["<svg></svg>"], {"title": "a < b", "nodes": [], "edges": []})
        >>> 'id="graph-data"' in text and "<title>a &lt; b</title>" in text
        True
    """
    # "</" inside a script element would end it early
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    template = (HERE / "explorer.html").read_text(encoding="utf-8")
    parts = {
        "TITLE": html.escape(data.get("title", "compute graph")),
        "CSS": (HERE / "explorer.css").read_text(encoding="utf-8"),
        "SVG": "".join(
            f'<div class="layout" data-depth="{i}">{svg}</div>' for i, svg in enumerate(svgs)
        ),
        "DATA": payload,
        "JS": (HERE / "explorer.js").read_text(encoding="utf-8"),
    }
    return re.sub(r"/\*@(\w+)@\*/", lambda m: parts[m.group(1)], template)
