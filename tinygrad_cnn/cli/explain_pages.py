"""The pages of `tinygrad-cnn explain`: each topic's worked example as a list of blocks.

Each `*_page` function asks `tinygrad_cnn.explain` (which runs the real ops) for the numbers
and lays them out as `render.Block`s: titles, matrices with highlighted windows, sentences.
`cli/explain.py` parses the command line and renders the blocks on a terminal or as text.

Read next: `explain.py` (the command that shows these pages).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cnn import explain
from tinygrad_cnn.cli.render import Block, first_cell, number, signed

# ----------------------------------------------------------------------------------------
# Topics -> blocks
# ----------------------------------------------------------------------------------------


def conv_page(image: Any, kernel: Any, configs: list[tuple[int, Any]]) -> list[Block]:
    """The conv topic: for each (stride, padding), the first window by hand and the map.

    Example:
        >>> page = conv_page(explain.COURSE_IMAGE, explain.COURSE_KERNEL, [(1, "valid")])
        >>> [text for kind, text, *_ in page if kind == "text"][0][-22:]
        '5 + 1 + 3 + 0 + 1 = 10'
    """
    page: list[Block] = []
    for index, (stride, padding) in enumerate(configs):
        e = explain.explain_conv(image, kernel, stride=stride, padding=padding)
        KH, KW = e.kernel.shape
        (top, bottom), (left, right) = e.pads
        page.append(("heading", f"conv2d, stride {stride}, padding {padding!r}"))
        if top + bottom + left + right:
            page.append(
                (
                    "text",
                    f"padding: {top} row(s) on top, {bottom} at the bottom, "
                    f"{left} column(s) on the left, {right} on the right",
                )
            )
        window_mask = np.zeros(e.padded.shape, dtype=bool)
        window_mask[:KH, :KW] = True
        shown = [
            ("padded image" if top + bottom + left + right else "image", e.padded, window_mask),
            ("kernel", e.kernel, None),
        ]
        if index == 0:
            shown += [
                ("first window", e.window, None),
                ("window * kernel (Hadamard)", e.products, None),
            ]
        page.append(("matrices", shown))
        used = e.products[e.kernel != 0] if (e.kernel != 0).any() else e.products.ravel()
        page.append(
            (
                "text",
                "first output = sum of the products (where the kernel is not 0) = "
                + " + ".join(signed(v) for v in used)
                + f" = {number(e.first)}",
            )
        )
        if stride > 1:
            page.append(
                (
                    "text",
                    f"the window moves {stride} pixels at a time, so it reads "
                    f"rows and columns 0, {stride}, {2 * stride}, ... "
                    f"of the padded image",
                )
            )
        (rule_h, size_h), (rule_w, size_w) = e.size_rules
        if rule_h == rule_w:
            page.append(("text", f"output size (height and width): {rule_h} = {size_h}"))
        else:
            page.append(("text", f"output height: {rule_h} = {size_h}"))
            page.append(("text", f"output width:  {rule_w} = {size_w}"))
        page.append(
            (
                "matrices",
                [
                    (
                        f"output {e.output.shape[0]}x{e.output.shape[1]} (ops.conv2d)",
                        e.output,
                        first_cell(e.output),
                    )
                ],
            )
        )
    return page


def pool_page(image: Any, kernel_size: int, stride: int | None, padding: Any = 0) -> list[Block]:
    """The pool topic: max pooling forward, the arg-max mask in backward, avgpool for contrast.

    Example:
        >>> pool_page(explain.POOL_MAP, 2, None)[0]
        ('heading', 'max pooling 2x2, stride 2 (the stride defaults to the window)')
    """
    e = explain.explain_pool(image, kernel_size, stride, padding)
    k, s = e.kernel_size, e.stride
    default = " (the stride defaults to the window)" if stride is None else ""
    (top, bottom), (left, right) = e.pads
    padded = top + bottom + left + right > 0
    shown = f", padding {padding!r}" if padding not in (0, "valid") else ""
    return [
        ("heading", f"max pooling {k}x{k}, stride {s}{shown}{default}"),
        *(
            [
                (
                    "text",
                    f"padding: {top} row(s) on top, {bottom} at the bottom, {left} column(s) "
                    f"on the left, {right} on the right, all -inf: a padded cell never wins.",
                )
            ]
            if padded
            else []
        ),
        ("text", "forward: each window's largest value goes through."),
        (
            "matrices",
            [("input", e.image, e.mask.astype(bool)), ("output (ops.maxpool2d)", e.output, None)],
        ),
        ("heading", "backward: where the gradient goes"),
        (
            "text",
            "the max passed on only one value per window, so only that value moved the "
            "loss: each upstream gradient lands on its window's arg-max, every other "
            "cell gets 0 (the arg-max mask).",
        ),
        (
            "matrices",
            [
                ("upstream dL/d(output)", e.upstream, None),
                ("arg-max mask", e.mask, e.mask.astype(bool)),
                ("dL/d(input) (backward)", e.grad, e.mask.astype(bool)),
            ],
        ),
        (
            "text",
            "average pooling, for contrast, spreads each upstream value evenly over its "
            f"window (each cell gets 1/{k * k} of it"
            + (", or 1/its real cells with 'same'" if padding == "same" else "")
            + "):",
        ),
        ("matrices", [("dL/d(input) through ops.avgpool2d", e.average_grad, None)]),
    ]


def _count_blocks(c: explain.LayerCount) -> list[Block]:
    how = (
        "the layer was built and its parameters counted"
        if c.built
        else f"not built: {c.count:,} float32 numbers would take {c.count * 4 / 1e9:,.0f} GB; "
        "counted by the formula"
    )
    return [
        (
            "table",
            ["layer", "formula", "filled in", "parameters"],
            [[c.kind, c.formula, c.filled, f"{c.count:,}"]],
        ),
        ("text", f"{c.letters}: {c.formula} = {c.filled.split(' = ')[-1]}"),
        ("text", how),
    ]


def params_page(words: list[str]) -> list[Block]:
    """The params topic: [] the course's argument, [model], ['dense', IN, OUT] or ['conv', ...].

    Layers take their sizes in one order, inputs then outputs (as nn.Linear and nn.Conv2d):
    `dense IN OUT`, `conv IN OUT KX KY`.

    Example:
        >>> params_page(["dense", "784", "1000"])[1][2][0][-1]
        '785,000'
    """
    if not words:
        dense_small = explain.dense_count(784, 1000)
        dense_photo = explain.dense_count(72_000_000, 1000)
        conv_photo = explain.conv_count(3, 1000, 3, 3)
        ratio = dense_photo.count / conv_photo.count
        return [
            ("heading", "parameters of a layer: the course's two formulas"),
            (
                "text",
                "dense: n neurons over m inputs have n(m+1) parameters (a weight per "
                "input and a bias per neuron); conv: m filters kx x ky over n channels "
                "have m(n·kx·ky+1): the same filters slide over every position.",
            ),
            (
                "table",
                ["layer", "formula", "filled in", "parameters"],
                [
                    [c.kind, c.formula, c.filled, f"{c.count:,}"]
                    for c in (dense_small, dense_photo, conv_photo)
                ],
            ),
            (
                "text",
                f"a 24-megapixel RGB photo has 72,000,000 inputs: 1,000 dense neurons on "
                f"it need {dense_photo.count:,} parameters, 1,000 3x3 filters "
                f"{conv_photo.count:,}: {ratio:,.0f} times fewer.",
            ),
            (
                "text",
                "try: explain params mnist-cnn | unet | dense IN OUT | conv IN OUT KX KY "
                "(sizes in one order, inputs then outputs, as nn.Linear and nn.Conv2d)",
            ),
        ]
    kind, numbers = words[0], words[1:]
    if kind in explain.MODELS:
        if numbers:
            raise ValueError(f"explain params {kind}: takes no numbers, got {numbers}")
        result = explain.model_summary(kind)
        header, rows = result.table()
        return [
            ("heading", f"{explain.MODELS[kind][0]}: nn.summary, input {(1, *result.input_shape)}"),
            ("table", header, rows),
            ("text", "\n".join(result.totals_text())),
        ]
    sizes = {"dense": ("IN OUT", 2), "conv": ("IN OUT KX KY", 4)}
    if kind not in sizes:
        raise ValueError(
            f"explain params: unknown model {kind!r}; choose from "
            f"{', '.join(explain.MODELS)}, 'dense IN OUT' or 'conv IN OUT KX KY'"
        )
    usage, count = sizes[kind]
    try:
        values = [int(word.replace(",", "")) for word in numbers]
    except ValueError:
        values = []
    if len(values) != count:
        raise ValueError(
            f"explain params {kind}: expected {usage} (whole numbers), got "
            f"{' '.join(numbers) or 'nothing'}"
        )
    layer = explain.dense_count(*values) if kind == "dense" else explain.conv_count(*values)
    return [("heading", f"parameters of a {layer.kind}")] + _count_blocks(layer)


def parse_values(words: list[str]) -> dict[str, float]:
    """NAME=NUMBER words as a dict (ValueError naming the word at fault).

    Example:
        >>> parse_values(["a=2", "b=-3"])
        {'a': 2.0, 'b': -3.0}
    """
    values = {}
    for word in words:
        name, equals, text = word.partition("=")
        try:
            value = float(text) if equals and name.isidentifier() else None
        except ValueError:
            value = None
        if value is None or not np.isfinite(value):
            raise ValueError(f"explain backward: {word!r} should read NAME=NUMBER, e.g. a=2")
        values[name] = value
    return values


def expression_and_values(expression: str | None, words: list[str]) -> tuple[str, dict]:
    """The expression to explain (the default one when None) and its variables' values."""
    values = parse_values(words)
    if expression is None:
        return explain.DEFAULT_EXPRESSION, {**explain.DEFAULT_VALUES, **values}
    return expression, values


def backward_page(
    expression: str | None = None, words: list[str] | None = None, graph: str | None = None
) -> list[Block]:
    """The backward topic: each node, in the order backward visits it, with its value, its
    gradient and the chain-rule step that gave it; `graph` also draws the graph to that file.

    Example:
        >>> backward_page()[2][2][-1][-1].split("  ")[0]
        'dL/db = dL/d(a*b) · ∂(a*b)/∂b + dL/d(b**3) · ∂(b**3)/∂b = 1·2 + 1·27 = 29'
    """
    expression, values = expression_and_values(expression, words or [])
    e = explain.explain_backward(expression, values)
    rows = []
    for index, step in enumerate(e.steps, 1):
        made = f"{step.op}({', '.join(step.inputs)})" if step.op else "input"
        rows.append([str(index), step.name, made, number(step.value), number(step.grad), step.text])
    given = ", ".join(f"{k} = {number(v)}" for k, v in values.items())
    twice = [s.name for s in e.steps if len(s.contributions) > 1]
    page: list[Block] = [
        ("heading", f"backward on L = {expression}  ({given})"),
        (
            "text",
            "forward computed each value; backward visits the nodes in the order below, "
            "which is the engine's own (recorded while it ran): each node after every node "
            "that uses it, so its gradient is complete when it is reached. Each use of a "
            "node sends back dL/d(user) times the local derivative ∂user/∂node (the chain "
            "rule), and a node's gradient is the sum of what its uses sent.",
        ),
        ("table", ["#", "node", "made by", "value", "grad dL/d(node)", "chain-rule step"], rows),
        (
            "text",
            f"{', '.join(twice)} {'is' if len(twice) == 1 else 'are'} used more than once: "
            "the contributions add up (the multivariate chain rule)."
            if twice
            else "no node is used twice here: each gradient has a single contribution "
            '(try --expr "a*b + b**3" a=2 b=-3).',
        ),
    ]
    if graph:
        from tinygrad_cnn.viz import draw_graph, save_graph

        path = save_graph(draw_graph(e.loss, show_grads=True), graph)
        page.append(("text", f"graph written to {path}, with the table's names"))
    return page


def conv_backward_page() -> list[Block]:
    """The conv-backward topic: dx and dw from backward next to the convolutions equal to them.

    Example:
        >>> conv_backward_page()[-1][1].endswith("gradcheck on conv2d: passed")
        True
    """
    e = explain.explain_conv_backward()

    def gap(a: np.ndarray, b: np.ndarray) -> str:
        return number(float(np.max(np.abs(a - b))))

    return [
        ("heading", "conv2d backward: both gradients are convolutions"),
        (
            "matrices",
            [
                ("input x", e.x, None),
                ("kernel w", e.w, None),
                ("out = conv2d(x, w)", e.out, None),
                ("upstream g = dL/dout", e.upstream, None),
            ],
        ),
        (
            "text",
            "dL/dx: each output read a window of x, so each g[i, j] goes back, times w, "
            "onto the window it read: a transposed convolution of g with w (or, the "
            "same, a 'full' convolution of g padded by KH-1 with w turned 180 degrees).",
        ),
        (
            "matrices",
            [
                ("dx (backward)", e.dx, None),
                ("conv_transpose2d(g, w)", e.dx_transposed, None),
                ("conv2d(pad(g, 1), w rotated)", e.dx_full, None),
            ],
        ),
        (
            "text",
            "dL/dw: w[u, v] multiplied x[i+u, j+v] for every output (i, j), so dw[u, v] "
            "= sum g[i, j] x[i+u, j+v]: x correlated with g, i.e. conv2d(x, g).",
        ),
        ("matrices", [("dw (backward)", e.dw, None), ("conv2d(x, g)", e.dw_correlation, None)]),
        (
            "text",
            f"max |difference|: dx vs transposed {gap(e.dx, e.dx_transposed)}, dx vs full "
            f"{gap(e.dx, e.dx_full)}, dw vs correlation {gap(e.dw, e.dw_correlation)}; "
            f"gradcheck on conv2d: {'passed' if e.gradcheck_passed else 'FAILED'}",
        ),
    ]
