"""Reading a recorded graph forward: every tensor an output was computed from, inputs first.

Backward walks the graph from the loss to the leaves and visits only what needs a gradient
(`Tensor._topological_order`). The drawings (`viz`) and the exporters (`onnx`) need the other
view: every tensor, including inputs that need no gradient, each after what it was computed
from, in the order a reader would compute them.

Read next: `viz/build.py` (how a walked graph becomes a drawing).
"""

from __future__ import annotations

from tinygrad_cnn.tensor import Tensor


def walk(roots: list[Tensor]) -> list[Tensor]:
    """Every tensor the roots were computed from, each after its inputs (first input first).

    Iterative depth-first search, like `Tensor._topological_order`, but it also visits the
    inputs that need no gradient, since the forward view draws and exports them.

    Example:
        >>> a, b = Tensor([1.0], requires_grad=True), Tensor([2.0])
        >>> [t._ctx.name if t._ctx else "leaf" for t in walk([a * b + a])]
        ['leaf', 'leaf', 'mul', 'add']
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(t, False) for t in reversed(roots)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        if tensor._ctx is not None:
            stack.extend((t, False) for t in reversed(tensor._ctx.inputs) if id(t) not in seen)
    return order
