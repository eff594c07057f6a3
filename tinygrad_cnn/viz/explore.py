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

import base64
import functools
import html
import inspect
import json
import re
import textwrap
from html import escape as esc
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn.files import write_atomically
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.viz.build import box_key, collapse
from tinygrad_cnn.viz.graph import DIRECTIONS, _to_graphviz, build_drawing
from tinygrad_cnn.viz.record import Visit, record_backward, step_texts

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parents[1]  # the folder holding tinygrad_cnn/, for file names
HEATMAP_SIDE = 32  # heatmaps are subsampled to at most this many pixels a side
HEATMAP_CHANNELS = 4  # and show at most this many channels


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
    box_ids, data["modules"] = _modules(drawing, names)
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
# The data: nodes, edges, steps
# ----------------------------------------------------------------------------------------


def summary(array: Any) -> Any:
    """A value or gradient for the page: None, a number, or min/mean/max/norm (+ heatmap).

    Non-finite numbers become the strings "nan", "inf", "-inf" (the page's JSON is strict).

    Example:
        >>> summary(np.array(2.5)), summary(None)
        (2.5, None)
        >>> s = summary(np.arange(6.0).reshape(1, 1, 2, 3))
        >>> s["min"], s["mean"], s["max"], s["heatmap"]["h"], s["heatmap"]["w"]
        (0.0, 2.5, 5.0, 2, 3)
    """
    if array is None:
        return None
    a = np.asarray(array, dtype=np.float64)
    if a.size == 1:
        return _number(a.reshape(-1)[0])
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        finite = np.zeros(1)
    out = {
        "min": _number(finite.min()),
        "mean": _number(finite.mean()),
        "max": _number(finite.max()),
        "norm": _number(np.sqrt((finite * finite).sum())),
    }
    if finite.size < a.size:
        out["nonfinite"] = int(a.size - finite.size)
    if a.ndim == 4 and a.shape[2] > 1 and a.shape[3] > 1:
        out["heatmap"] = heatmap(a[0])
    return out


def _number(value: float) -> float | str:
    value = float(value)
    if not np.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    return float(f"{value:.8g}")  # micrograd prints 4 decimals of 138.8338


def heatmap(image: np.ndarray) -> dict:
    """(C, H, W) -> the first few channels, subsampled, as base64 bytes 0..255 over [lo, hi].

    Example:
        >>> h = heatmap(np.arange(8.0).reshape(2, 2, 2))
        >>> h["channels"], h["of"], h["lo"], h["hi"], len(base64.b64decode(h["data"]))
        (2, 2, 0.0, 7.0, 8)
    """
    C, H, W = image.shape
    step = max(1, -(-max(H, W) // HEATMAP_SIDE))  # ceil: at most HEATMAP_SIDE a side
    shown = np.nan_to_num(image[:HEATMAP_CHANNELS, ::step, ::step], posinf=0.0, neginf=0.0)
    lo, hi = float(shown.min()), float(shown.max())
    scaled = (shown - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(shown)
    pixels = np.round(scaled).astype(np.uint8)
    return {
        "h": int(shown.shape[1]),
        "w": int(shown.shape[2]),
        "channels": int(shown.shape[0]),
        "of": int(C),
        "lo": _number(lo),
        "hi": _number(hi),
        "data": base64.b64encode(pixels.tobytes()).decode("ascii"),
    }


@functools.cache
def op_source(cls: type) -> dict | None:
    """The file and the forward/backward source lines of a Function class, via `inspect`.

    Example:
        >>> from tinygrad_cnn.ops.elementwise import MulFn
        >>> source = op_source(MulFn)
        >>> source["file"], source["class"], "def backward" in source["backward"]["code"]
        ('tinygrad_cnn/ops/elementwise.py', 'MulFn', True)
    """
    try:
        file = Path(inspect.getsourcefile(cls)).resolve()
    except (TypeError, OSError):
        return None
    try:
        file_name = str(file.relative_to(PACKAGE_ROOT))
    except ValueError:
        file_name = str(file)
    out: dict[str, Any] = {"file": file_name, "class": cls.__name__}
    for method in ("forward", "backward"):
        try:
            lines, start = inspect.getsourcelines(getattr(cls, method))
        except (TypeError, OSError):
            return None
        out[method] = {"line": start, "code": textwrap.dedent("".join(lines)).rstrip()}
    return out


def _plain(line: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", line))


def graph_data(
    root: Tensor, visits: list[Visit], names: Any, drawing: Any, title: str | None
) -> dict:
    """The page's data (nodes, edges, steps; see the module docstring) for a forward drawing.

    Example:
        >>> x = Tensor(3.0, requires_grad=True)
        >>> y = x * x
        >>> _, names, drawing = build_drawing([y])
        >>> data = graph_data(y, record_backward(y), names, drawing, None)
        >>> [n["id"] for n in data["nodes"]], data["edges"]
        (['leaf1', 'op2', 'out3'], [['leaf1', 'op2'], ['leaf1', 'op2'], ['op2', 'out3']])
        >>> [s["node"] for s in data["steps"]], data["steps"][1]["grad"]
        (['op2', 'leaf1'], 6.0)
    """
    node_of: dict[int, str] = {}
    label_of: dict[int, str] = {}
    for node in drawing.nodes:
        if node.tensor is not None and node.kind != "output":
            node_of[id(node.tensor)] = node.id
            label_of[id(node.tensor)] = _plain(node.lines[0])
    grads = {id(v.node): v.grad for v in visits}
    nodes = []
    for node in drawing.nodes:
        tensor = node.tensor
        fn = tensor._ctx if tensor is not None else None
        module = names.path.get(id(node.chain[-1]), "") if node.chain else ""
        if node.chain and not module:
            module = type(node.chain[-1]).__name__  # the model itself
        grad = grads.get(id(tensor)) if tensor is not None else None
        if grad is None and tensor is not None and tensor.grad is not None:
            grad = tensor.grad
        nodes.append(
            {
                "id": node.id,
                "label": "\n".join(_plain(line) for line in node.lines),
                "op": fn.name if fn is not None and node.kind != "output" else None,
                "kind": node.kind,
                "shape": list(tensor.shape) if tensor is not None else None,
                "dtype": str(tensor.dtype) if tensor is not None else None,
                "value": summary(tensor.data) if tensor is not None else None,
                "grad": summary(grad),
                "module": module,
                "source": op_source(type(fn)) if fn is not None and node.kind == "op" else None,
            }
        )
    steps = []
    texts = step_texts(visits, lambda t: label_of.get(id(t), t.name or "tensor"))
    for visit, (head, sent_texts) in zip(visits, texts):
        sent = [
            {"to": node_of.get(id(t)), "grad": summary(g), "text": text}
            for (t, g), text in zip(visit.sent, sent_texts)
        ]
        steps.append(
            {"node": node_of[id(visit.node)], "grad": summary(visit.grad), "text": head,
             "sent": sent}
        )  # fmt: skip
    return {
        "title": title or f"compute graph of {root.name or label_of.get(id(root), 'the output')}",
        "nodes": nodes,
        "edges": [[edge.src, edge.dst] for edge in drawing.edges],
        "steps": steps,
    }


def _modules(drawing: Any, names: Any) -> tuple[dict[tuple, str], list[dict]]:
    """({box key: box id}, the boxes' data: id, title, level, every node inside, parent).

    A box is one call of a module (`build.box_key`); its level is its nesting depth, the
    model's box being level 1.
    """
    box_ids: dict[tuple, str] = {}
    modules = []
    for node in drawing.nodes:
        for level in range(1, len(node.chain) + 1):
            key = box_key(node, level)
            if key not in box_ids:
                box_ids[key] = f"box{len(box_ids) + 1}"
                module = node.chain[level - 1]
                modules.append(
                    {
                        "id": box_ids[key],
                        "title": _plain(names.title(module)),
                        "level": level,
                        "nodes": [],
                        "parent": box_ids.get(key[:-1]),
                    }
                )
            modules[int(box_ids[key][3:]) - 1]["nodes"].append(node.id)
    return box_ids, modules


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
        >>> box_ids, _ = _modules(drawing, names)
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


# ----------------------------------------------------------------------------------------
# The page: SVG marked with data attributes, CSS, JS and data inline
# ----------------------------------------------------------------------------------------

_NODE = re.compile(r'<g id="(node\d+)" class="node">\s*<title>([^<]*)</title>')
_CLUSTER = re.compile(r'<g id="(clust\d+)" class="cluster">\s*<title>([^<]*)</title>')
_EDGE = re.compile(r'<g id="(edge\d+)" class="edge">\s*<title>([^<]*)</title>')


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
