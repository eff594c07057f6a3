"""The explorer's data: what `graph-data` holds for every node, edge and backward step.

`graph_data` turns a drawing and a recorded backward pass into the JSON the page embeds
(`<script type="application/json" id="graph-data">`, documented in `explore.py`): each node's
op, shape, dtype, value and gradient summaries (a small heatmap for image-shaped arrays), its
module and the source lines of its op's forward and backward; the edges; the steps in the
order the engine's backward visited them. `explore.py` builds the page around it.

Read next: `explore.py` (the page: SVG, CSS, JS and this data inline).
"""

from __future__ import annotations

import base64
import functools
import html
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.viz.build import box_key
from tinygrad_cnn.viz.record import Visit, step_texts

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # holds tinygrad_cnn/, for file names
HEATMAP_SIDE = 32  # heatmaps are subsampled to at most this many pixels a side
HEATMAP_CHANNELS = 4  # and show at most this many channels


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
        >>> from tinygrad_cnn.viz.graph import build_drawing
        >>> from tinygrad_cnn.viz.record import record_backward
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


def module_boxes(drawing: Any, names: Any) -> tuple[dict[tuple, str], list[dict]]:
    """({box key: box id}, the boxes' data: id, title, level, every node inside, parent).

    A box is one call of a module (`build.box_key`); its level is its nesting depth, the
    model's box being level 1.

    Example:
        >>> from tinygrad_cnn import nn
        >>> from tinygrad_cnn.viz.graph import build_drawing
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> _, names, drawing = build_drawing([model(Tensor(np.ones((1, 2)))).sum()])
        >>> _, boxes = module_boxes(drawing, names)
        >>> for box in boxes:
        ...     print(box["id"], box["title"], "level", box["level"], "in", box["parent"])
        box1 Sequential level 1 in None
        box2 0: Linear(2 -> 2) level 2 in box1
        box3 1: ReLU level 2 in box1
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
