"""Record the backward pass as the engine runs it, and say each step in words and numbers.

The engine calls a watcher once per node it visits (`tinygrad_cnn.tensor.watch_backward`), in
its real order, with the node's complete gradient and what its op sent to each input. This
file keeps those visits (`record_backward`) and writes the sentence for each one
(`step_texts`): "upstream 0.4958 × local d(pow)/d(x) = 2x = −14 → −6.94 to `sub`".
Nothing here runs unless a drawing asks for it, so an ordinary backward pays nothing.

Read `explore.py` next: it puts these steps in a page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinygrad_cnn.tensor import Tensor, watch_backward


@dataclass
class Visit:
    """One node as backward visited it: its complete gradient and what it sent to its inputs.

    `sent` holds (input tensor, gradient array or None) for each input of the node's op, in
    input order; it is empty for a leaf.

    Example:
        >>> x = Tensor(3.0, requires_grad=True)
        >>> [(v.node is x, float(v.grad)) for v in record_backward(x * x)][-1]
        (True, 6.0)
    """

    node: Tensor
    grad: np.ndarray
    sent: tuple


def record_backward(root: Tensor) -> list[Visit]:
    """Run `root.backward()` and return every node it visited, in the engine's order.

    Leaves get their `.grad` as after any backward; the graph's saved arrays are freed.

    Raises:
        RuntimeError: root needs no gradient, or its graph was already freed by a backward.
    Example:
        >>> a, b = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True)
        >>> visits = record_backward(a * b)
        >>> [v.node._ctx.name if v.node._ctx else "leaf" for v in visits]
        ['mul', 'leaf', 'leaf']
        >>> float(a.grad), float(b.grad)
        (-3.0, 2.0)
    """
    visits: list[Visit] = []

    def keep(node: Tensor, grad: np.ndarray, sent: tuple) -> None:
        # copies: a hook or the engine may reuse an array after this call returns
        pairs = tuple((t, None if g is None else np.array(g)) for t, g in sent)
        visits.append(Visit(node, np.array(grad), pairs))

    with watch_backward(keep):  # the engine's own record of its visits
        root.backward()
    return visits


# ----------------------------------------------------------------------------------------
# The words: each step's sentence
# ----------------------------------------------------------------------------------------


def num(value: float) -> str:
    """A number for a sentence: 4 significant digits, a real minus sign.

    Example:
        >>> num(0.49584), num(-14.0), num(-6.9417), num(138.83381)
        ('0.4958', '−14', '−6.942', '138.8')
    """
    value = float(value)
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "∞" if value > 0 else "−∞"
    text = f"{value:.4g}"
    if "e" not in text and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "−")


def _power_text(p: float) -> str:
    """The derivative of x^p written as a reader would: 2x, 3x², 0.5x^−0.5."""
    if p == 2:
        return "2x"
    q = p - 1
    superscripts = {2: "²", 3: "³"}
    power = superscripts.get(q) if q == int(q) else None
    base = num(p)
    return f"{base}x{power}" if power else f"{base}x^{num(q)}"


def local_formula(node: Tensor, index: int) -> tuple[str, float | None]:
    """(formula, value) of d(node)/d(input `index`) for a one-element op, from its inputs.

    The value is None where the formula has no simple scalar form (the caller then divides
    the contribution by the upstream gradient).

    Example:
        >>> x = Tensor(-7.0, requires_grad=True)
        >>> local_formula(x**2, 0)
        ('2x', -14.0)
        >>> local_formula(x * 3.0, 1)
        ('x', -7.0)
    """
    fn = node._ctx
    values = [float(np.asarray(t.data).reshape(-1)[0]) for t in fn.inputs]
    x = values[0]
    y = values[1] if len(values) > 1 else None
    out = float(np.asarray(node.data).reshape(-1)[0])
    name = fn.name
    if name == "add":
        return "1", 1.0
    if name == "sub":
        return ("1", 1.0) if index == 0 else ("−1", -1.0)
    if name == "mul":
        return ("y", y) if index == 0 else ("x", x)
    if name == "div":
        return ("1/y", 1 / y) if index == 0 else ("−x/y²", -x / y**2)
    if name == "pow" and "exponent" in fn.params:
        p = float(fn.params["exponent"])
        return _power_text(p), p * x ** (p - 1)
    if name == "pow":
        return ("y·x^(y−1)", y * x ** (y - 1)) if index == 0 else ("xʸ·ln x", None)
    if name == "neg":
        return "−1", -1.0
    if name == "exp":
        return "exp(x)", out
    if name == "log":
        return "1/x", 1 / x
    if name == "relu":
        return ("1 (x > 0)", 1.0) if x > 0 else ("0 (x ≤ 0)", 0.0)
    if name == "sigmoid":
        return "σ(1−σ)", out * (1 - out)
    if name == "tanh":
        return "1 − tanh²", 1 - out * out
    return "", None


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


def _array_text(array: np.ndarray) -> str:
    """A gradient as a phrase: the number, or its shape, mean and norm."""
    if array.size == 1:
        return num(array.reshape(-1)[0])
    shape = str(tuple(array.shape))
    a = array.astype(np.float64)
    return f"a {shape} array (mean {num(a.mean())}, norm {num(np.sqrt((a * a).sum()))})"


def step_texts(
    visits: list[Visit], name_of: Callable[[Tensor], str]
) -> list[tuple[str, list[str]]]:
    """For each visit: (the sentence for the node, one sentence per contribution it sent).

    `name_of(tensor)` names a tensor as the page shows it (`mul`, `a`, `features.0.weight`).
    Where a node receives from more than one user, the contributions are added up as they
    arrive: "second contribution: −6.94 + 6.94 = 0".

    Example:
        >>> x = Tensor(-7.0, requires_grad=True)
        >>> y = x**2
        >>> visits = record_backward(y)
        >>> names = {id(x): "x", id(y): "pow"}
        >>> head, sent = step_texts(visits, lambda t: names[id(t)])[0]
        >>> head
        '`pow` gets its gradient 1 (the output: d out/d out = 1).'
        >>> sent
        ['upstream 1 × local d(pow)/d(x) = 2x = −14 → −14 to `x`']
    """
    received: dict[int, list[tuple[str, np.ndarray]]] = {}  # id(tensor) -> (from, grad)
    texts = []
    for i, visit in enumerate(visits):
        name = name_of(visit.node)
        arrivals = received.get(id(visit.node), [])
        grad = _array_text(visit.grad)
        if i == 0:
            head = f"`{name}` gets its gradient {grad} (the output: d out/d out = 1)."
        elif len(arrivals) > 1:
            parts = " + ".join(num(g.sum()) if g.size == 1 else f"`{s}`'s" for s, g in arrivals)
            head = f"`{name}` has all {len(arrivals)} contributions: {parts} = {grad}."
        else:
            source = f" from `{arrivals[0][0]}`" if arrivals else ""
            head = f"`{name}` gets its gradient {grad}{source}."
        if visit.node._ctx is None:
            head += f" A leaf: {grad} is added to `{name}.grad`."
        sent_texts = []
        upstream = visit.grad
        for index, (target, dtarget) in enumerate(visit.sent):
            target_name = name_of(target)
            if dtarget is None:
                sent_texts.append(f"nothing to `{target_name}` (needs no gradient)")
                continue
            if upstream.size == 1 and dtarget.size == 1 and visit.node.size == 1:
                formula, local = local_formula(visit.node, index)
                u, d = float(upstream.reshape(-1)[0]), float(dtarget.reshape(-1)[0])
                if local is None:
                    local = d / u if u != 0 else float("nan")
                arg = "xy"[index] if len(visit.sent) == 2 else "x"
                same = formula and formula.replace("-", "−") == num(local)  # "1", not "1 = 1"
                shown = f"{formula} = {num(local)}" if formula and not same else num(local)
                text = f"upstream {num(u)} × local d({visit.node._ctx.name})/d({arg}) = {shown}"
                text += f" → {num(d)} to `{target_name}`"
            else:
                text = f"sends {_array_text(dtarget)} to `{target_name}`"
            earlier = received.setdefault(id(target), [])
            earlier.append((name, dtarget))
            if len(earlier) > 1:
                total = sum(g for _, g in earlier)
                if dtarget.size == 1:
                    sums = " + ".join(num(g.sum()) for _, g in earlier)
                    sums += f" = {num(total.sum())}"
                else:
                    sums = f"running sum {_array_text(total)}"
                text += f"; {_ordinal(len(earlier))} contribution: {sums}"
            sent_texts.append(text)
        texts.append((head, sent_texts))
    return texts
