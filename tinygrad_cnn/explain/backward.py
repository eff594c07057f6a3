"""Backward worked examples: the chain rule node by node on any small expression, in the
order the engine really visits the nodes, and the two gradients of a convolution, each shown
to be a convolution itself.

    backward_steps(loss)       one record per node backward visits, from the engine itself
    explain_backward(text)     parse "a*b + b**3" (whitelisted ops only, never eval'd), then
                               backward_steps on it
    explain_conv_backward()    dx and dw of a convolution, each computed a second way

Read next: `examples/03_conv_by_hand.py`.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.gradcheck import gradcheck
from tinygrad_cnn.tensor import Tensor, watch_backward

# ----------------------------------------------------------------------------------------
# Backward on a small expression: each node's value, gradient, and the chain-rule step
# ----------------------------------------------------------------------------------------


@dataclass
class Contribution:
    """What one user of a node sent it in backward: upstream (dL/d user) x local (d user/d node).

    Example:
        >>> explain_backward().steps[-1].contributions[0]  # b, as a*b sees it: d(a*b)/db = a
        Contribution(user='a*b', op='mul', upstream=1.0, local=2.0, value=2.0)
    """

    user: str
    op: str
    upstream: float
    local: float
    value: float


@dataclass
class BackwardStep:
    """One node as backward visits it: its gradient is complete, the sum of its contributions.

    Attributes:
        name, op, inputs: the node, the op that made it ('' for a leaf) and its inputs' names.
        value: its forward value. grad: dL/d(node), as the engine computed it.
        contributions: what each use of the node sent back (two for a node used twice).
        sent: (input name, gradient) the node's own backward sent to each of its inputs.
        text: the chain-rule line, e.g. "dL/db = dL/d(a*b) · ∂(a*b)/∂b + ... = 29".
    Example:
        >>> step = explain_backward().steps[-1]
        >>> step.name, step.grad, [c.value for c in step.contributions]
        ('b', 29.0, [2.0, 27.0])
    """

    name: str
    op: str
    inputs: list[str]
    value: float
    grad: float
    contributions: list[Contribution]
    sent: list[tuple[str, float]]
    text: str
    tensor: Tensor | None = field(default=None, repr=False, compare=False)


@dataclass
class BackwardExplanation:
    """An expression, its steps in the engine's visiting order, and its loss tensor (graph kept).

    Example:
        >>> e = explain_backward()
        >>> e.expression, [step.name for step in e.steps], e.loss.item()
        ('a*b + b**3', ['L', 'a*b', 'a', 'b**3', 'b'], -33.0)
    """

    expression: str
    steps: list[BackwardStep]
    loss: Tensor


def _grouped(name: str) -> str:
    """'b' -> 'b', 'a*b' -> '(a*b)': a node's name as one symbol in a formula."""
    return name if name.isidentifier() else f"({name})"


def _number(value: float) -> str:
    text = f"{value:.6g}"
    return f"({text})" if value < 0 else text


def backward_steps(loss: Tensor, names: dict[Tensor, str] | None = None) -> list[BackwardStep]:
    """Run loss.backward() and record every node in the order the engine visits it.

    The order, each node's gradient and what each backward sent come from the engine itself
    (`watch_backward`), not from a second walk of the graph. The local derivatives
    d user / d node are each op's own backward applied to an upstream gradient of 1 (the graph
    is kept for that, and for drawing). Scalar nodes only: this is for worked examples.

    Args:
        loss: a one-element tensor. names: a name for each tensor; otherwise tensor.name,
            else the op's name ('L' for the loss).
    Example:
        >>> a = Tensor(np.float64(3.0), requires_grad=True)
        >>> a.name = "a"
        >>> [(s.name, s.grad) for s in backward_steps(a * a)]
        [('L', 1.0), ('a', 6.0)]
    """
    names = dict(names or {})
    visits: list[tuple[Tensor, float, tuple]] = []
    with watch_backward(lambda node, grad, sent: visits.append((node, float(grad), sent))):
        loss.backward(retain_graph=True)  # keep the saved arrays: locals and drawings need them

    def name(tensor: Tensor) -> str:
        if tensor not in names:
            names[tensor] = "L" if tensor is loss else tensor.name or tensor._ctx.name
        return names[tensor]

    grad_of = {node: grad for node, grad, _ in visits}
    received: dict[Tensor, list[Contribution]] = {}
    steps = []
    for node, grad, sent in visits:
        fn = node._ctx
        contributions = received.get(node, [])
        if node is loss:
            text = "dL/dL = 1 (backward starts here)"
        else:
            me = _grouped(name(node))
            terms = " + ".join(
                f"dL/d{_grouped(c.user)} · ∂{_grouped(c.user)}/∂{me}" for c in contributions
            )
            values = " + ".join(f"{_number(c.upstream)}·{_number(c.local)}" for c in contributions)
            text = f"dL/d{me} = {terms} = {values} = {grad:.6g}"
            if len(contributions) > 1:
                times = "twice" if len(contributions) == 2 else f"{len(contributions)} times"
                text += f"  ({name(node)} is used {times}: the contributions add up)"
        if fn is not None:
            locals_ = fn.backward(np.ones_like(node.data))  # d node / d input, each input
            locals_ = locals_ if isinstance(locals_, tuple) else (locals_,)
            for (inp, dinp), local in zip(sent, locals_):
                if dinp is not None and inp in grad_of:
                    share = Contribution(name(node), fn.name, grad, float(local), float(dinp))
                    received.setdefault(inp, []).append(share)
        steps.append(
            BackwardStep(
                name(node),
                fn.name if fn else "",
                [name(t) if t.requires_grad else f"{t.item():g}" for t in fn.inputs] if fn else [],
                node.item(),
                grad,
                contributions,
                [(name(inp), float(dinp)) for inp, dinp in sent if dinp is not None],
                text,
                node,
            )
        )
    return steps


# the operators and methods an expression may use: parsed with `ast`, never eval'd
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}  # fmt: skip
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
METHODS = ("relu", "exp", "log", "sigmoid", "tanh")


def parse_expression(text: str, values: dict[str, float]) -> tuple[Tensor, dict[Tensor, str]]:
    """Build the graph of `text` on float64 scalars; return its result and every node's name.

    `text` is an expression, or assignments then an expression, separated by ';' or new
    lines ("e = a*b; (e + c) * e" names e and uses it twice). It may use numbers, the
    variables in `values`, + - * / ** and unary minus, and the methods relu exp log sigmoid
    tanh (`(a*b).relu()`). A node is named by its variable or by its text ("a*b").

    Raises:
        ValueError: a syntax error, a variable without a value, anything outside the list.
    Example:
        >>> out, names = parse_expression("a*b + b**3", {"a": 2.0, "b": -3.0})
        >>> out.item(), sorted(names.values())
        (-33.0, ['L', 'a', 'a*b', 'b', 'b**3'])
        >>> parse_expression("__import__('os')", {})
        Traceback (most recent call last):
        ...
        ValueError: explain backward: a call of __import__ is not allowed; methods: relu, exp,
        log, sigmoid, tanh
    """
    source = "\n".join(part.strip() for part in text.replace(";", "\n").splitlines())
    try:
        statements = ast.parse(source).body
    except SyntaxError as error:
        raise ValueError(f"explain backward: not an expression: {error.msg} in {text!r}") from None
    if not statements:
        raise ValueError("explain backward: the expression is empty")
    variables = {}
    names: dict[Tensor, str] = {}
    for key, value in values.items():
        variables[key] = Tensor(np.float64(value), requires_grad=True)
        names[variables[key]] = key

    def evaluate(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in variables:
                raise ValueError(f"explain backward: no value for {node.id}; give {node.id}=NUMBER")
            return variables[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = evaluate(node.left), evaluate(node.right)
            if not isinstance(left, Tensor) and not isinstance(right, Tensor):
                left = Tensor(np.float64(left))
            result = _BINARY[type(node.op)](left, right)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            result = _UNARY[type(node.op)](evaluate(node.operand))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr not in METHODS or node.args or node.keywords:
                raise ValueError(
                    f"explain backward: a call of {node.func.attr} is not allowed; "
                    f"methods: {', '.join(METHODS)}"
                )
            inner = evaluate(node.func.value)
            result = getattr(
                inner if isinstance(inner, Tensor) else Tensor(inner), node.func.attr
            )()
        elif isinstance(node, ast.Call):
            called = node.func.id if isinstance(node.func, ast.Name) else "that"
            raise ValueError(
                f"explain backward: a call of {called} is not allowed; "
                f"methods: {', '.join(METHODS)}"
            )
        else:
            raise ValueError(f"explain backward: {type(node).__name__} is not allowed in {text!r}")
        if isinstance(result, Tensor) and result not in names:
            names[result] = ast.get_source_segment(source, node).strip()
        return result

    result = None
    for statement in statements:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            result = evaluate(statement.value)
            if isinstance(result, Tensor):
                names[result] = statement.targets[0].id
            variables[statement.targets[0].id] = result
        elif isinstance(statement, ast.Expr):
            result = evaluate(statement.value)
        else:
            raise ValueError(
                f"explain backward: only NAME = EXPRESSION and expressions are allowed, got "
                f"{ast.get_source_segment(source, statement)!r}"
            )
    if not isinstance(result, Tensor) or not result.requires_grad:
        raise ValueError(f"explain backward: {text!r} uses no variable with a value")
    names[result] = "L" if isinstance(statements[-1], ast.Expr) else names[result]
    return result, names


DEFAULT_EXPRESSION = "a*b + b**3"
DEFAULT_VALUES = {"a": 2.0, "b": -3.0}


def explain_backward(
    expression: str = DEFAULT_EXPRESSION, values: dict[str, float] | None = None
) -> BackwardExplanation:
    """Differentiate a small expression with the real engine and explain every step.

    The default, L = a*b + b**3 at a = 2, b = -3, uses b twice, so b's gradient is the sum of
    two contributions: dL/db = a + 3 b^2 = 2 + 27 = 29.

    Args:
        expression: see parse_expression. values: each variable's number (default a=2, b=-3).
    Example:
        >>> [(s.name, s.value, s.grad) for s in explain_backward().steps]
        [('L', -33.0, 1.0), ('a*b', -6.0, 1.0), ('a', 2.0, -3.0), ('b**3', -27.0, 1.0),
         ('b', -3.0, 29.0)]
    """
    values = DEFAULT_VALUES if values is None else values
    loss, names = parse_expression(expression, values)
    for tensor in names:
        if tensor._ctx is not None:
            tensor.retain_grad()  # so a drawing shows every node's gradient, not only the leaves'
    steps = backward_steps(loss, names)
    for step in steps:
        step.tensor.name = step.name  # a drawing of `loss` then shows the table's names
    return BackwardExplanation(expression, steps, loss)


# ----------------------------------------------------------------------------------------
# Convolution backward: both gradients are convolutions too
# ----------------------------------------------------------------------------------------


@dataclass
class ConvBackwardExplanation:
    """conv2d's two gradients, from backward and from a second route each.

    Attributes:
        x, w: the input (H, W) and kernel (KH, KW); out = conv2d(x, w) (valid, stride 1).
        upstream: dL/d(out), shape (OH, OW).
        dx: from backward. dx_transposed: conv_transpose2d(upstream, w). dx_full:
            conv2d(upstream padded by KH - 1, w flipped): a "full" convolution.
        dw: from backward. dw_correlation: conv2d(x, upstream): x correlated with the gradient.
        gradcheck_passed: gradcheck's verdict on conv2d for these inputs (float64).
    Shapes:
        x, dx, dx_transposed, dx_full: (4, 4); w, dw, dw_correlation: (2, 2);
        out, upstream: (3, 3), as `explain_conv_backward` makes them.
    Example:
        >>> e = explain_conv_backward()
        >>> e.x.shape, e.w.shape, e.upstream.shape, e.gradcheck_passed
        ((4, 4), (2, 2), (3, 3), True)
        >>> bool(np.allclose(e.dx, e.dx_full))
        True
    """

    x: np.ndarray
    w: np.ndarray
    out: np.ndarray
    upstream: np.ndarray
    dx: np.ndarray
    dx_transposed: np.ndarray
    dx_full: np.ndarray
    dw: np.ndarray
    dw_correlation: np.ndarray
    gradcheck_passed: bool


def explain_conv_backward(seed: int = 0) -> ConvBackwardExplanation:
    """A 4x4 image, a 2x2 kernel and a 3x3 upstream gradient of small integers.

    Example:
        >>> e = explain_conv_backward()
        >>> bool((e.dx == e.dx_transposed).all() and (e.dw == e.dw_correlation).all())
        True
    """

    rng = np.random.default_rng(seed)
    x_data = rng.integers(-3, 4, size=(1, 1, 4, 4)).astype(np.float64)
    w_data = rng.integers(-2, 3, size=(1, 1, 2, 2)).astype(np.float64)
    g_data = rng.integers(-2, 3, size=(1, 1, 3, 3)).astype(np.float64)
    x, w = Tensor(x_data, requires_grad=True), Tensor(w_data, requires_grad=True)
    out = ops.conv2d(x, w)  # (1, 1, 3, 3)
    out.backward(g_data)
    g = Tensor(g_data)
    dx_transposed = ops.conv_transpose2d(g, Tensor(w_data))
    flipped = Tensor(np.ascontiguousarray(w_data[:, :, ::-1, ::-1]))  # rotated 180 degrees
    dx_full = ops.conv2d(g, flipped, padding=1)  # pad KH - 1 = 1: every overlap counted
    dw_correlation = ops.conv2d(Tensor(x_data), g)  # N = C = O = 1: x slides under grad
    passed = gradcheck(
        lambda x, w: ops.conv2d(x, w),
        [Tensor(x_data, requires_grad=True), Tensor(w_data, requires_grad=True)],
    )
    return ConvBackwardExplanation(
        x_data[0, 0],
        w_data[0, 0],
        out.data[0, 0],
        g_data[0, 0],
        x.grad[0, 0],
        dx_transposed.data[0, 0],
        dx_full.data[0, 0],
        w.grad[0, 0],
        dw_correlation.data[0, 0],
        passed,
    )
