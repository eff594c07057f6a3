"""How tensors, models and training curves look in a Jupyter notebook.

Jupyter shows the value of a cell by calling its `_repr_html_()` if it has one. `Tensor`,
`Module` and `History` each have that method as a one-line delegation to a function here, so
the engine itself stays free of HTML:

    Tensor   a card: shape, dtype, requires_grad, the gradient (if any), min/mean/max/std,
             the op that made it, and a picture when it is image-shaped ((H, W) or (N, C, H, W))
    Module   the summary table with the course's parameter formulas and the total
    History  the loss and metric curves per epoch, as inline SVG

Only numpy and the standard library: the picture is a PNG written by the tiny encoder below
(a PNG is a signature, then chunks of length + type + data + CRC; the pixels are zlib-deflated
rows, each prefixed by a filter byte, 0 = none), inlined as base64.

Read next: `onnx/__init__.py` (the models out into other runtimes).
"""

from __future__ import annotations

import base64
import html
import math
import struct
import zlib
from typing import Any

import numpy as np

STYLE = "font-family: monospace; font-size: 12px; border-collapse: collapse"
CELL = "padding: 1px 8px; text-align: left"


# ----------------------------------------------------------------------------------------
# A PNG encoder in twenty lines, and image grids
# ----------------------------------------------------------------------------------------


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an (H, W) grey or (H, W, 3) RGB uint8 image as PNG.

    Example:
        >>> data = png_bytes(np.zeros((2, 3), np.uint8))
        >>> data[:8], len(data)
        (b'\\x89PNG\\r\\n\\x1a\\n', 68)
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"png_bytes: expected (H, W) or (H, W, 3) pixels, got {image.shape}")
    height, width = image.shape[:2]
    colour_type = 0 if image.ndim == 2 else 2  # 0: grey, 2: RGB; 8 bits per sample

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    rows = image.reshape(height, -1)  # (H, W * channels)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _to_pixels(array: np.ndarray) -> np.ndarray:
    """Scale values to 0..255 (min to black, max to white); a constant image is mid-grey."""
    array = np.nan_to_num(np.asarray(array, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = array.min(), array.max()
    if high - low < 1e-12:
        return np.full(array.shape, 128, np.uint8)
    return np.round((array - low) / (high - low) * 255).astype(np.uint8)


def image_grid(array: np.ndarray, max_images: int = 16, min_side: int = 48) -> np.ndarray | None:
    """The pixels of an image-shaped array, or None: (H, W) is one grey image; (N, C, H, W)
    with C = 1 or 3 is a row of up to max_images images (C = 3 in colour), each scaled up by
    an integer factor to at least min_side pixels, 2 pixels apart.

    Example:
        >>> image_grid(np.arange(32.0).reshape(2, 1, 4, 4), min_side=8).shape
        (8, 18)
        >>> image_grid(np.zeros((5, 10))) is None  # too small a side to be an image
        True
    """
    array = np.asarray(array)
    if array.ndim == 2 and min(array.shape) >= 8:
        images = array[None, :, :, None]  # (1, H, W, 1)
    elif array.ndim == 4 and array.shape[1] in (1, 3) and min(array.shape[2:]) >= 4:
        images = array[:max_images].transpose(0, 2, 3, 1)  # (N, H, W, C)
    else:
        return None
    pixels = _to_pixels(images)
    N, H, W, C = pixels.shape
    factor = max(1, math.ceil(min_side / max(H, W)))
    pixels = pixels.repeat(factor, axis=1).repeat(factor, axis=2)  # nearest-neighbour
    gap = np.full((N, H * factor, 2, C), 255, np.uint8)
    row = np.concatenate([pixels, gap], axis=2).transpose(1, 0, 2, 3)  # (H', N, W'+2, C)
    row = row.reshape(H * factor, -1, C)[:, :-2]  # no gap after the last image
    return row[:, :, 0] if C == 1 else row


def image_tag(pixels: np.ndarray, title: str = "") -> str:
    """An <img> holding `pixels` as an inline PNG.

    Example:
        >>> image_tag(np.zeros((2, 2), np.uint8))[:32]
        '<img src="data:image/png;base64,'
    """
    encoded = base64.b64encode(png_bytes(pixels)).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{encoded}" title="{html.escape(title)}" '
        f'style="image-rendering: pixelated">'
    )


# ----------------------------------------------------------------------------------------
# Tensor, Module, History
# ----------------------------------------------------------------------------------------


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><th style="{CELL}">{html.escape(key)}</th><td style="{CELL}">{value}</td></tr>'
        for key, value in rows
    )
    return f'<table style="{STYLE}">{cells}</table>'


def _number(value: float) -> str:
    return f"{value:.4g}"


def value_summary(array: np.ndarray) -> str:
    """min, mean, max and std of an array (and how many values are not finite).

    Example:
        >>> value_summary(np.array([1.0, 2.0, 3.0, np.nan]))
        'min 1 · mean 2 · max 3 · std 0.8165 · 1 not finite'
    """
    array = np.asarray(array)
    if array.size == 0:
        return "empty"
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return f"all {array.size} values are nan or inf"
    text = " · ".join(
        f"{name} {_number(f(finite))}"
        for name, f in (("min", np.min), ("mean", np.mean), ("max", np.max), ("std", np.std))
    )
    bad = array.size - finite.size
    return text + (f" · {bad} not finite" if bad else "")


def tensor_html(tensor: Any) -> str:
    """A Tensor as an HTML card (what Jupyter shows for a Tensor).

    Example:
        >>> from tinygrad_cnn import Tensor
        >>> card = tensor_html(Tensor(np.zeros((1, 1, 28, 28)), requires_grad=True))
        >>> "(1, 1, 28, 28)" in card, "float64" in card, "<img" in card
        (True, True, True)
    """
    data = tensor.data
    grad = tensor.grad
    made_by = tensor._ctx.name if tensor._ctx is not None else "a leaf (made by no op)"
    rows = [
        ("shape", html.escape(str(tuple(data.shape)))),
        ("dtype", str(data.dtype)),
        ("requires_grad", str(tensor.requires_grad)),
        ("grad", "None" if grad is None else f"{tuple(grad.shape)}: {value_summary(grad)}"),
        ("values", html.escape(value_summary(data))),
        ("made by", html.escape(made_by)),
    ]
    if data.size <= 64:
        text = np.array2string(data, precision=4, separator=", ", threshold=64)
        rows.append(("data", f"<pre style='margin: 0'>{html.escape(text)}</pre>"))
    pixels = image_grid(data)
    if pixels is not None:
        shown = min(len(data), 16) if data.ndim == 4 else 1
        rows.append(("image", image_tag(pixels, f"{shown} image(s), min black, max white")))
    title = f"<b>Tensor</b> {html.escape(tensor.name or '')}"
    return f"<div>{title}{_table(rows)}</div>"


def guess_input_shape(module: Any) -> tuple[int, ...] | None:
    """One sample's shape the model takes, from its config or its first layer, or None.

    Example:
        >>> from tinygrad_cnn.models import mnist_cnn, UNet
        >>> guess_input_shape(mnist_cnn()), guess_input_shape(UNet(depth=3, padding="valid"))
        ((1, 28, 28), (1, 92, 92))
    """
    kwargs = (getattr(module, "config", None) or {}).get("kwargs", {})
    if "image_size" in kwargs:
        return kwargs.get("in_channels", 1), kwargs["image_size"], kwargs["image_size"]
    if hasattr(module, "valid_sizes") and hasattr(module, "in_channels"):  # a U-Net
        sizes = [size for size, _ in module.valid_sizes(up_to=1024) if size >= 64]
        return (module.in_channels, sizes[0], sizes[0]) if sizes else None
    for layer in module.modules():
        if hasattr(layer, "in_features"):
            return (layer.in_features,)
        if hasattr(layer, "in_channels"):
            return None  # a convolution takes any size: nothing to guess from
    return None


def summary_html(summary: Any) -> str:
    """An `nn.Summary` as an HTML table with the totals under it.

    Example:
        >>> from tinygrad_cnn import nn
        >>> page = summary_html(nn.summary(nn.Sequential(nn.Linear(4, 2)), (4,)))
        >>> "2·(4+1) = 10" in page, "Total params: 10" in page
        (True, True)
    """
    header, cells = summary.table()
    head = "".join(f'<th style="{CELL}">{html.escape(text)}</th>' for text in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{CELL}{"; text-align: right" if i == 3 else ""}">{html.escape(text)}</td>'
            for i, text in enumerate(line)
        )
        + "</tr>"
        for line in cells
    )
    title = f"<b>{html.escape(summary.model_name)}</b>, input (None, " + ", ".join(
        map(str, summary.input_shape)
    )
    totals = "<br>".join(html.escape(line) for line in summary.totals_text())
    table = f'<table style="{STYLE}"><tr>{head}</tr>{body}</table>'
    return f"<div>{title})<br>{table}<b>{totals}</b></div>"


def module_html(module: Any, input_shape: tuple[int, ...] | None = None) -> str:
    """A Module as its summary table (the course's formulas and the total parameter count);
    with no input shape to run it on, the layers and their parameters without shapes.

    Example:
        >>> from tinygrad_cnn.models import mnist_cnn
        >>> "Total params: 42,358" in module_html(mnist_cnn(seed=0))
        True
    """
    from tinygrad_cnn.nn.summary import summary

    input_shape = input_shape or guess_input_shape(module)
    if input_shape is not None:
        try:
            return summary_html(summary(module, input_shape))
        except ValueError:
            pass  # the guess did not fit: show the layers without running the model
    from tinygrad_cnn.nn.summary import formula

    rows = [
        (f"{name} ({type(layer).__name__})", html.escape(formula(layer)))
        for name, layer in module.named_modules()
        if name and formula(layer)
    ]
    total = sum(p.size for p in module.parameters())
    rows.append(("Total params", f"<b>{total:,}</b>"))
    return f"<div><b>{html.escape(type(module).__name__)}</b>{_table(rows)}</div>"


# ----------------------------------------------------------------------------------------
# Curves as SVG: one small chart per quantity, training and validation together
# ----------------------------------------------------------------------------------------


def _chart(title: str, series: dict[str, list[float]], width: int = 300, height: int = 180) -> str:
    left, right, top, bottom = 48, 10, 34, 28
    points = [v for values in series.values() for v in values if math.isfinite(v)]
    if not points:
        return ""
    low, high = min(points), max(points)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    epochs = max(len(values) for values in series.values())

    def xy(i: int, v: float) -> str:
        x = left + (width - left - right) * (i / max(epochs - 1, 1))
        y = top + (height - top - bottom) * (1 - (v - low) / (high - low))
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'style="font: 11px sans-serif">',
        f'<text x="{width / 2}" y="14" text-anchor="middle">{html.escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" '
        f'height="{height - top - bottom}" fill="none" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{_number(high)}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">{_number(low)}</text>',
        f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">epoch 1 to {epochs}</text>',
    ]
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for k, (name, values) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        line = " ".join(xy(i, v) for i, v in enumerate(values) if math.isfinite(v))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for point in line.split():
            x, y = point.split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>')
        label = html.escape(name)
        parts.append(f'<text x="{left + 70 * k}" y="{top - 5}" fill="{colour}">— {label}</text>')
    return "".join(parts) + "</svg>"


def history_html(history: list[dict]) -> str:
    """Per-epoch curves of a `fit` history: one chart per quantity (loss, each metric), the
    training and the validation value together, and the last epoch's figures under them.

    Example:
        >>> page = history_html([{"epoch": 1, "loss": 0.9, "val_loss": 0.8},
        ...                      {"epoch": 2, "loss": 0.5, "val_loss": 0.6}])
        >>> page.count("<svg"), page.count("<polyline")
        (1, 2)
    """
    if not history:
        return "<div><b>History</b>: no finished epoch</div>"
    skip = {"epoch", "time", "images_per_s", "interrupted"}
    keys = [k for k in dict.fromkeys(k for epoch in history for k in epoch) if k not in skip]
    quantities = [k for k in keys if not k.startswith("val_")]
    quantities += [k[4:] for k in keys if k.startswith("val_") and k[4:] not in quantities]
    charts = []
    for quantity in quantities:
        series = {}
        for key, label in ((quantity, "train"), (f"val_{quantity}", "validation")):
            values = [epoch.get(key, math.nan) for epoch in history]
            if any(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                series[label] = [float(v) for v in values]
        if series:
            charts.append(_chart(quantity, series))
    last = ", ".join(
        f"{k} {_number(v)}" for k, v in history[-1].items() if isinstance(v, (int, float))
    )
    return (
        f"<div><b>History</b>: {len(history)} epoch(s)<br>{''.join(charts)}"
        f"<br><small>last epoch: {html.escape(last)}</small></div>"
    )
