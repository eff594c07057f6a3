"""Backward as an animated GIF: the explorer's steps, one frame each, for slides and READMEs.

    from tinygrad_cnn.viz.animate import animate_backward
    animate_backward(loss, "backward.gif")      # runs loss.backward(), recording each step

Each frame is the forward graph drawn by Graphviz (`graph.py`), with the node backward is
visiting filled yellow, the nodes already visited outlined red, and under it the step's
sentence from `record.py` ("upstream 1 × local d(mul)/d(x) = y = −2 → −2 to `d`").
Pillow (which matplotlib brings) writes the GIF.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from tinygrad_cnn.files import write_atomically
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.viz.graph import _to_graphviz, build_drawing
from tinygrad_cnn.viz.record import record_backward, step_texts

CURRENT = {"fillcolor": "#fde047", "color": "#b91c1c", "penwidth": "4"}
DONE = {"color": "#dc2626", "penwidth": "2.5"}
CAPTION_WIDTH = 70  # characters a caption line holds before it wraps


def animate_backward(
    root: Tensor,
    path: str | Path,
    title: str | None = None,
    frame_ms: int = 1400,
    dpi: int = 96,
) -> Path:
    """Write a GIF of backward visiting the graph behind `root`, one frame per step.

    Args:
        root: a one-element tensor whose graph backward has not freed; backward runs here.
        path: the .gif file to write.
        title: a caption above the graph.
        frame_ms: how long each frame shows (the first and last show three times longer).
        dpi: Graphviz's resolution for each frame.
    Raises:
        ValueError: a path not ending in .gif, root of more than one element, or frame_ms < 1.
        RuntimeError: root needs no gradient, or its graph was already freed.
    Example:
        >>> import tempfile, pathlib
        >>> a, b = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "backward.gif"
        >>> from PIL import Image
        >>> with Image.open(animate_backward(a * b + b, path)) as image:
        ...     image.n_frames  # the start, then 4 steps
        5
    """
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"animate_backward: {path.name!r} should end in .gif")
    if not isinstance(root, Tensor) or root.size != 1:
        raise ValueError("animate_backward: root must be a one-element Tensor (a loss)")
    if frame_ms < 1:
        raise ValueError(f"animate_backward: frame_ms must be >= 1, got {frame_ms}")
    _, names, drawing = build_drawing([root])
    visits = record_backward(root)
    node_of = {
        id(n.tensor): n.id for n in drawing.nodes if n.kind != "output" and n.tensor is not None
    }
    label_of = {
        id(n.tensor): _first_line(n.lines[0]) for n in drawing.nodes if n.id in node_of.values()
    }
    texts = step_texts(visits, lambda t: label_of.get(id(t), t.name or "tensor"))
    base = _to_graphviz(drawing, names, "TB", True, title, False)
    captions = ["backward starts at the output; each frame is one node, in the engine's order"]
    marks: list[dict[str, dict]] = [{}]
    for i, (head, sent) in enumerate(texts):
        step_marks = {node_of[id(v.node)]: DONE for v in visits[:i]}
        step_marks[node_of[id(visits[i].node)]] = CURRENT
        marks.append(step_marks)
        captions.append(f"step {i + 1} of {len(texts)}: {head}\n" + "\n".join(sent))
    frames = [_frame(base, m, c, dpi) for m, c in zip(marks, captions)]
    width = max(f.width for f in frames)
    height = max(f.height for f in frames)
    padded = []
    for frame in frames:
        canvas = Image.new("RGB", (width, height), "white")
        canvas.paste(frame, ((width - frame.width) // 2, 0))
        padded.append(canvas.convert("P", palette=Image.Palette.ADAPTIVE, colors=64))
    durations = [frame_ms] * len(padded)
    durations[0] = durations[-1] = 3 * frame_ms
    buffer = io.BytesIO()
    padded[0].save(
        buffer, format="GIF", save_all=True, append_images=padded[1:], duration=durations, loop=0
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, buffer.getvalue())
    return path


def _first_line(label_line: str) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]*>", "", label_line))


def _frame(base, marks: dict[str, dict], caption: str, dpi: int):
    """One frame: the graph with `marks` (node id -> attributes) over the wrapped caption."""
    from PIL import Image, ImageDraw

    graph = base.copy()
    graph.attr(dpi=str(dpi))
    for node_id, attributes in marks.items():
        graph.node(node_id, **attributes)  # a second statement only adds attributes
    picture = Image.open(io.BytesIO(graph.pipe(format="png"))).convert("RGB")
    font = _font(15)
    lines = []
    for paragraph in caption.replace("`", "").split("\n"):
        lines += textwrap.wrap(paragraph, CAPTION_WIDTH, subsequent_indent="   ") or [""]
    line_height = 20
    width = max(picture.width, 640)
    frame = Image.new("RGB", (width, picture.height + 16 + line_height * len(lines)), "white")
    frame.paste(picture, ((width - picture.width) // 2, 0))
    draw = ImageDraw.Draw(frame)
    for i, line in enumerate(lines):
        draw.text((12, picture.height + 8 + i * line_height), line, fill="#111827", font=font)
    return frame


def _font(size: int):
    """DejaVu Sans (shipped with matplotlib), which has × − → and ≤; Pillow's own otherwise."""
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default()
