"""Text and colours for graph drawings: node labels, op attributes, module titles, the legend.

Every label is an HTML-like Graphviz label (`<...>`), built from escaped pieces, so names
with `<`, `>`, `&`, quotes or braces print as written. `graph.py` decides what is drawn;
this file decides how each thing reads. Read `graph.py` next.
"""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------
# Node styles: one per kind of node, so the legend can show them all
# ----------------------------------------------------------------------------------------

STYLES: dict[str, dict[str, str]] = {
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#e5e7eb",
           "color": "#4b5563"},
    "input": {"shape": "box", "style": "filled", "fillcolor": "#fef3c7", "color": "#b45309"},
    "constant": {"shape": "ellipse", "style": "filled,dashed", "fillcolor": "#ffffff",
                 "color": "#6b7280"},
    "parameter": {"shape": "box", "style": "filled", "fillcolor": "#bfdbfe",
                  "color": "#1d4ed8"},
    "grad_tensor": {"shape": "box", "style": "filled,dashed", "fillcolor": "#dbeafe",
                    "color": "#1d4ed8"},
    "output": {"shape": "box", "style": "filled", "fillcolor": "#bbf7d0", "color": "#15803d"},
    "module": {"shape": "box3d", "style": "filled", "fillcolor": "#ede9fe", "color": "#6d28d9"},
    "grad_fn": {"shape": "box", "style": "rounded,filled", "fillcolor": "#fde2e2",
                "color": "#9f1239"},
}  # fmt: skip

LEGEND_TEXT: dict[str, str] = {
    "op": "op (forward)",
    "grad_fn": "op's backward",
    "input": "input (no grad)",
    "constant": "constant",
    "parameter": "parameter (named)",
    "grad_tensor": "tensor requiring grad",
    "output": "output",
    "module": "module, collapsed",
}

# fill colours of nested module boxes, outermost first (then repeating)
CLUSTER_FILLS = ("#f8fafc", "#eef2ff", "#f0fdf4", "#fff7ed")
BAD_COLOUR = "#dc2626"  # NaN / inf gradients

TINY = 4  # tensors with at most this many elements show their values, as micrograd does


# ----------------------------------------------------------------------------------------
# Small formatters
# ----------------------------------------------------------------------------------------


def esc(text: Any) -> str:
    """`text` escaped for an HTML-like label: & < > " ' become entities.

    Example:
        >>> esc('a<b & "c"')
        'a&lt;b &amp; &quot;c&quot;'
    """
    return html.escape(str(text), quote=True)


def html_label(lines: list[str]) -> str:
    """Join already-escaped lines into one HTML-like label.

    Example:
        >>> html_label([bold("add"), esc("x")])
        '<<B>add</B><BR/>x>'
    """
    return "<" + "<BR/>".join(lines) + ">"


def small(text: str, colour: str | None = None) -> str:
    """An escaped line in a smaller font (optionally coloured).

    Example:
        >>> small("a<b", "#dc2626")
        '<FONT POINT-SIZE="10" COLOR="#dc2626">a&lt;b</FONT>'
    """
    colour_attr = f' COLOR="{colour}"' if colour else ""
    return f'<FONT POINT-SIZE="10"{colour_attr}>{esc(text)}</FONT>'


def bold(text: str) -> str:
    """An escaped line in bold.

    Example:
        >>> bold("conv2d")
        '<B>conv2d</B>'
    """
    return f"<B>{esc(text)}</B>"


def shape_text(shape: tuple[int, ...]) -> str:
    """(2, 8, 28, 28) as written in Python; a scalar is ().

    Example:
        >>> shape_text((np.int64(2), 8)), shape_text(())
        ('(2, 8)', '()')
    """
    return str(tuple(int(n) for n in shape))


def dtype_text(dtype: np.dtype) -> str:
    """float32 -> f32, float64 -> f64 (short, for edge labels).

    Example:
        >>> dtype_text(np.float32), dtype_text(np.dtype('int64'))
        ('f32', 'i64')
    """
    dtype = np.dtype(dtype)
    return f"{dtype.kind}{dtype.itemsize * 8}"


def number(value: float) -> str:
    """A value the way micrograd prints it: 4 decimals, or scientific when huge or tiny.

    Example:
        >>> number(0.5), number(1234567.0), number(float('nan'))
        ('0.5000', '1.235e+06', 'nan')
    """
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4f}"


def values_text(array: np.ndarray) -> str:
    """The values of a tiny array: `6.0000` for a scalar, `[1.0000, -2.0000]` otherwise.

    Example:
        >>> values_text(np.array(6.0)), values_text(np.array([1.0, -2.0]))
        ('6.0000', '[1.0000, -2.0000]')
    """
    array = np.asarray(array)
    if array.ndim == 0:
        return number(array)
    return "[" + ", ".join(number(v) for v in array.reshape(-1)) + "]"


def grad_lines(grad: np.ndarray | None) -> tuple[list[str], bool]:
    """Label lines for a gradient (its values when tiny, else its shape and norm) and whether
    it holds NaN or inf. A missing gradient reads `grad: None`.

    Example:
        >>> grad_lines(np.ones((3, 4)))
        (['<FONT POINT-SIZE="10">grad (3, 4) norm 3.4641</FONT>'], False)
        >>> grad_lines(np.array([1.0, np.nan]))[1]
        True
    """
    if grad is None:
        return [small("grad: None")], False
    finite = bool(np.all(np.isfinite(grad)))
    colour = None if finite else BAD_COLOUR
    if grad.size <= TINY:
        text = f"grad {values_text(grad)}"
    else:
        norm = float(np.linalg.norm(grad.astype(np.float64).reshape(-1)))
        text = f"grad {shape_text(grad.shape)} norm {number(norm)}"
    lines = [small(text, colour)]
    if not finite:
        bad = int(np.count_nonzero(~np.isfinite(grad)))
        lines.append(
            f'<FONT POINT-SIZE="10" COLOR="{BAD_COLOUR}"><B>'
            f"{bad} NaN/inf value{'s' if bad != 1 else ''}</B></FONT>"
        )
    return lines, not finite


# ----------------------------------------------------------------------------------------
# Op attributes: `conv2d stride 2 padding 'same'`, `maxpool 2x2`
# ----------------------------------------------------------------------------------------

# parameters that read better without their name, as `2x2`
_WINDOW_KEYS = ("kernel_size", "kernel", "window", "size")
_MAX_ATTR_CHARS = 48


# values that go without saying: stride 1, padding 0, dilation 1, groups 1
_DEFAULTS = {"stride": "1", "padding": "0", "dilation": "1", "groups": "1"}


def _value_text(value: Any, key: str = "") -> str:
    """How a parameter's value reads; per-axis pairs of window settings shrink: (2, 2) -> 2."""
    if isinstance(value, str):
        return repr(value)
    if key in _DEFAULTS and isinstance(value, (tuple, list)) and value:
        if all(v == value[0] for v in value):
            return _value_text(value[0], key)  # ((1, 1), (1, 1)) -> (1, 1) -> 1
        return str(tuple(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if (
        isinstance(value, slice)
        or isinstance(value, tuple)
        and any(isinstance(v, slice) or v is Ellipsis or v is None for v in value)
    ):
        return index_text(value)
    return str(value)


def index_text(index: Any) -> str:
    """A numpy basic index as written in code: (slice(None), 0) -> [:, 0].

    Example:
        >>> index_text((slice(None), 0, slice(1, None, 2), Ellipsis))
        '[:, 0, 1::2, ...]'
    """
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for part in parts:
        if isinstance(part, slice):
            start = "" if part.start is None else str(part.start)
            stop = "" if part.stop is None else str(part.stop)
            text = f"{start}:{stop}" + ("" if part.step is None else f":{part.step}")
        elif part is Ellipsis:
            text = "..."
        elif part is None:
            text = "None"
        else:
            text = str(part)
        out.append(text)
    return "[" + ", ".join(out) + "]"


def op_attributes(
    params: dict[str, Any], kernel: tuple[int, ...] | None = None, padding_name: str | None = None
) -> str:
    """The key attributes of an op, for its node: `3x3 stride 2 padding 'same'`.

    Window sizes come first without a name (`2x2`); defaults (stride 1, padding 0, ...),
    False and None are left out. `kernel` is a convolution's window (from its weight's shape)
    and `padding_name` the 'same'/'valid' that the layer asked for, shown instead of the
    padding it resolved to.

    Example:
        >>> op_attributes({"kernel_size": (2, 2), "stride": (2, 2), "padding": 0})
        '2x2 stride 2'
        >>> op_attributes({"stride": (2, 2), "padding": ((0, 1), (0, 1))}, (3, 3), "same")
        "3x3 stride 2 padding 'same'"
    """
    words = []
    if kernel is not None:
        words.append("x".join(str(int(v)) for v in kernel))
    for key, value in params.items():
        if value is None or value is False:
            continue
        if key in _WINDOW_KEYS:
            sizes = value if isinstance(value, (tuple, list)) else (value, value)
            words.insert(0, "x".join(str(int(v)) for v in sizes))
        elif key == "index":
            words.append(index_text(value))
        elif key == "padding" and padding_name is not None:
            words.append(f"padding {padding_name!r}")
        elif value is True:
            words.append(key)
        elif _DEFAULTS.get(key) != _value_text(value, key):
            words.append(f"{key} {_value_text(value, key)}")
    text = " ".join(words)
    return text if len(text) <= _MAX_ATTR_CHARS else text[: _MAX_ATTR_CHARS - 3] + "..."


# ----------------------------------------------------------------------------------------
# Modules: titles and parameter counts
# ----------------------------------------------------------------------------------------

_MAX_TITLE_CHARS = 70


def _compact(value: Any) -> str:
    """(3, 3) -> '3', (1, 2) -> '(1, 2)', 'same' -> "'same'"."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (tuple, list)) and value and all(v == value[0] for v in value):
        return _compact(value[0])
    return str(value)


def module_summary(module: Any) -> str:
    """A one-line description of a module: `Conv2d(1 -> 8, k=3)`, `Linear(400 -> 100)`.

    Layers with channels or features are summarised from their attributes (stride and padding
    only when not the defaults); other modules use `extra_repr()` (PyTorch's convention) with
    pairs such as (2, 2) shortened to 2.

    Example:
        >>> from tinygrad_cnn import nn
        >>> module_summary(nn.Conv2d(1, 8, 3)), module_summary(nn.Linear(400, 100))
        ('Conv2d(1 -> 8, k=3)', 'Linear(400 -> 100)')
    """
    name = type(module).__name__
    attrs = vars(module) if hasattr(module, "__dict__") else {}
    if "in_channels" in attrs and "out_channels" in attrs and "kernel_size" in attrs:
        parts = [f"{attrs['in_channels']} -> {attrs['out_channels']}",
                 f"k={_compact(attrs['kernel_size'])}"]  # fmt: skip
        if _compact(attrs.get("stride", 1)) != "1":
            parts.append(f"s={_compact(attrs['stride'])}")
        if _compact(attrs.get("padding", 0)) not in ("0", "'valid'"):
            parts.append(f"padding={_compact(attrs['padding'])}")
        summary = f"{name}({', '.join(parts)})"
    elif "in_features" in attrs and "out_features" in attrs:
        summary = f"{name}({attrs['in_features']} -> {attrs['out_features']})"
    else:
        extra = getattr(module, "extra_repr", None)
        text = str(extra()) if callable(extra) else ""
        text = re.sub(r"\((\d+), \1\)", r"\1", text)  # (2, 2) -> 2
        summary = f"{name}({text})" if text and "\n" not in text else name
    return summary


def wrapped(text: str, width: int = _MAX_TITLE_CHARS) -> list[str]:
    """A long title as lines of at most about `width` characters, broken after commas (a title
    is never cut: the U-Net's whole constructor fits above its box).

    Example:
        >>> wrapped("UNet(in_channels=1, num_classes=1, base=16)", width=30)
        ['UNet(in_channels=1,', 'num_classes=1, base=16)']
    """
    lines = [""]
    for piece in re.split(r"(?<=,) ", text):
        if lines[-1] and len(lines[-1]) + 1 + len(piece) > width:
            lines.append(piece)
        else:
            lines[-1] = f"{lines[-1]} {piece}" if lines[-1] else piece
    return lines


def module_title(path: str, module: Any) -> str:
    """`features.0: Conv2d(1 -> 8, k=3)`; the model itself (path '') has no path prefix.

    Example:
        >>> from tinygrad_cnn import nn
        >>> module_title('features.0', nn.Conv2d(1, 8, 3))
        'features.0: Conv2d(1 -> 8, k=3)'
    """
    summary = module_summary(module)
    return f"{path}: {summary}" if path else summary


def parameter_count(module: Any) -> int:
    """How many numbers a module learns (0 when it has no `parameters()`).

    Example:
        >>> from tinygrad_cnn import nn
        >>> parameter_count(nn.Linear(4, 2)), parameter_count(object())
        (10, 0)
    """
    parameters = getattr(module, "parameters", None)
    if not callable(parameters):
        return 0
    return int(sum(p.data.size for p in parameters()))


def count_text(count: int) -> str:
    """12345 -> '12,345 params'.

    Example:
        >>> count_text(12345), count_text(1)
        ('12,345 params', '1 param')
    """
    return f"{count:,} param{'s' if count != 1 else ''}"
