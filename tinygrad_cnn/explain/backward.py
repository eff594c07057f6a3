"""Backward worked examples: the chain rule node by node on a tiny expression, and the two
gradients of a convolution, each shown to be a convolution itself.

Read next: `examples/03_conv_by_hand.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinygrad_cnn import ops
from tinygrad_cnn.gradcheck import gradcheck
from tinygrad_cnn.tensor import Tensor

# ----------------------------------------------------------------------------------------
# Backward on a tiny expression: each node's value, gradient, and the chain-rule step
# ----------------------------------------------------------------------------------------


@dataclass
class Step:
    """One edge of the graph seen from its input: how `node` feeds `user`.

    contribution = upstream (dL/d user) x local (d user / d node), from user's backward.

    Example:
        >>> explain_backward().nodes[1].steps  # f feeds L = d * f
        [Step(user='L', op='mul', upstream=1.0, local=4.0, contribution=4.0)]
    """

    user: str
    op: str
    upstream: float
    local: float
    contribution: float


@dataclass
class Node:
    """A tensor of the expression: its name, the op that made it, value, gradient, steps.

    Example:
        >>> node = explain_backward().nodes[0]
        >>> node.name, node.op, node.inputs, node.value, node.grad
        ('L', 'mul', ['d', 'f'], -8.0, 1.0)
    """

    name: str
    op: str
    inputs: list[str]
    value: float
    grad: float
    steps: list[Step]


@dataclass
class BackwardExplanation:
    """The nodes, loss first, and the loss tensor itself (its graph kept, for drawing).

    Example:
        >>> explanation = explain_backward()
        >>> len(explanation.nodes), explanation.loss.item()
        (7, -8.0)
    """

    nodes: list[Node]
    loss: Tensor


def explain_backward() -> BackwardExplanation:
    """micrograd's tiny expression L = (a*b + c) * f, differentiated by the real engine.

    Every tensor keeps its gradient (retain_grad); each edge's step is the op's own backward
    applied to the user's gradient (the contribution) and to 1 (the local derivative). A
    node's gradient is the sum of its steps' contributions: the multivariate chain rule.

    Example:
        >>> nodes = explain_backward().nodes
        >>> [(n.name, n.value, n.grad) for n in nodes]  # doctest: +NORMALIZE_WHITESPACE
        [('L', -8.0, 1.0), ('f', -2.0, 4.0), ('d', 4.0, -2.0), ('c', 10.0, -2.0),
         ('e', -6.0, -2.0), ('b', -3.0, -4.0), ('a', 2.0, 6.0)]
    """
    a, b, c, f = (Tensor(np.float64(v), requires_grad=True) for v in (2.0, -3.0, 10.0, -2.0))
    e = a * b
    d = e + c
    loss = d * f
    names = {a: "a", b: "b", c: "c", f: "f", e: "e", d: "d", loss: "L"}
    for tensor, name in names.items():
        tensor.name = name
        tensor.retain_grad()
    loss.backward(retain_graph=True)  # keep the saved arrays: each backward runs again below
    steps: dict[Tensor, list[Step]] = {t: [] for t in names}
    for user in names:
        fn = user._ctx
        if fn is None:
            continue
        contributions = fn.backward(user.grad)
        locals_ = fn.backward(np.ones_like(user.grad))
        for node, dnode, local in zip(fn.inputs, contributions, locals_):
            steps[node].append(
                Step(names[user], fn.name, float(user.grad), float(local), float(dnode))
            )
    nodes = []
    for tensor in sorted(names, key=lambda t: "Lfdceba".index(names[t])):  # loss first
        fn = tensor._ctx
        inputs = [names[t] for t in fn.inputs] if fn is not None else []
        total = sum(step.contribution for step in steps[tensor])
        assert not steps[tensor] or np.isclose(total, tensor.grad), (names[tensor], total)
        nodes.append(
            Node(
                names[tensor],
                fn.name if fn else "",
                inputs,
                tensor.item(),
                float(tensor.grad),
                steps[tensor],
            )
        )
    return BackwardExplanation(nodes, loss)


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
