"""Tensor and reverse-mode autograd: the whole engine in one file.

A `Tensor` wraps a numpy array. Every operation on tensors is a `Function`: its `forward`
computes the result from plain arrays, and its `backward` turns dL/d(out) into dL/d(input)
for each input. `Function.apply` runs forward and, when some input needs a gradient, links
the output to the function that made it (`out._ctx`). Those links form a directed acyclic
graph from the inputs to the loss. `Tensor.backward()` visits it in reverse topological
order (each node after every node that uses it), so that when a node is reached its
gradient is complete: the sum over every path from the loss (the multivariate chain rule).

    x --\
         mul -> z -> sum -> loss         backward:  dloss/dz = 1
    w --/                                           dloss/dx = dloss/dz * w,  dloss/dw = ... * x

Read next: `ops/elementwise.py` (the simplest Functions), then `ops/__init__.py` for the
table of every op's derivative.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------
# Global switches: gradient recording and the module scope (for labelling graph nodes)
# ----------------------------------------------------------------------------------------

_grad_enabled = True

# Module.__call__ pushes the module here while its forward runs, so each tensor knows which
# module created it (viz draws those as boxes; tuples, so tensors can share them). `_calls`
# runs beside it with a serial number per call: a module called twice is two boxes.
_scope: tuple = ()
_calls: tuple[int, ...] = ()
_call_serials = itertools.count(1)


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that turns off graph recording.

    Results computed inside have `requires_grad=False` and keep no reference to their inputs,
    which is what evaluation and optimizer updates want. Nests, and restores the previous
    state on exit even when the body raises.

    Example:
        >>> w = Tensor([1.0, 2.0], requires_grad=True)
        >>> with no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous


def is_grad_enabled() -> bool:
    """True unless inside a `no_grad()` block.

    Example:
        >>> from tinygrad_cnn import no_grad
        >>> with no_grad():
        ...     print(is_grad_enabled())
        False
        >>> is_grad_enabled()
        True
    """
    return _grad_enabled


@contextlib.contextmanager
def module_scope(module: Any):
    """Record `module` as the innermost scope of tensors created in the `with` body.

    Example:
        >>> with module_scope("outer"), module_scope("inner"):
        ...     t = Tensor([1.0])
        >>> t._scope, len(t._calls)
        (('outer', 'inner'), 2)
    """
    global _scope, _calls
    outer, outer_calls = _scope, _calls
    _scope, _calls = outer + (module,), outer_calls + (next(_call_serials),)
    try:
        yield
    finally:
        _scope, _calls = outer, outer_calls


# ----------------------------------------------------------------------------------------
# Un-broadcasting: the one place where broadcasting meets the chain rule
# ----------------------------------------------------------------------------------------


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`, undoing numpy broadcasting.

    A value that numpy stretched along an axis fed every copy of itself, so its gradient is
    the sum over that axis.

    Example:
        >>> unbroadcast(np.ones((4, 3)), (1, 3))
        array([[4., 4., 4.]])
    """
    if grad.shape == tuple(shape):
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # axes numpy added on the left
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)  # size-1 axes numpy stretched
    return grad


# ----------------------------------------------------------------------------------------
# Function: the forward/backward contract every op follows
# ----------------------------------------------------------------------------------------


class Function:
    """One node of the graph: an operation that knows its own derivative.

    Subclasses define:
        forward(self, *arrays, **params) -> np.ndarray
            gets plain arrays, returns the output, and keeps on `self` only what backward
            needs (the inputs, or the output when the derivative is written with it).
        backward(self, grad) -> one array (or None) per input
            gets grad = dL/d(out) in the output's shape and returns dL/d(input) in each
            input's shape, or None where `self.needs_input_grad[i]` is False.
        name: the label of the node in graph drawings.

    Example:
        >>> class DoubleFn(Function):
        ...     name = "double"
        ...     def forward(self, x):
        ...         return 2 * x
        ...     def backward(self, grad):
        ...         return (2 * grad,)
        >>> x = Tensor([1.0, 2.0], requires_grad=True)
        >>> y = DoubleFn.apply(x)
        >>> y.data
        array([2., 4.], dtype=float32)
        >>> y.sum().backward()
        >>> x.grad
        array([2., 2.], dtype=float32)
    """

    name = "function"

    def __init__(self, *inputs: Tensor):
        self.inputs = inputs  # ordered, as the forward received them
        self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        self.params: dict[str, Any] = {}

    def forward(self, *arrays: np.ndarray, **params: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad: np.ndarray) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run forward on the inputs' arrays and, if needed, link the output into the graph."""
        fn = cls(*inputs)
        data = fn.forward(*[t.data for t in inputs], **params)
        requires_grad = _grad_enabled and any(fn.needs_input_grad)
        out = Tensor(data, requires_grad=requires_grad)
        if requires_grad:
            out._ctx = fn
            # keep small attributes (stride, axis...) for labels in graph drawings
            fn.params = {k: v for k, v in params.items() if not isinstance(v, np.ndarray)}
        return out

    def release(self) -> None:
        """Drop the arrays saved for backward; keep the graph's structure and labels."""
        keep = ("inputs", "needs_input_grad", "params")
        for key in [k for k in vars(self) if k not in keep]:
            delattr(self, key)
        self.released = True


# ----------------------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------------------


def _as_array(data: Any) -> np.ndarray:
    """float32/float64 arrays are kept as they are (no copy); anything else becomes float32."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, np.ndarray) and data.dtype in (np.float32, np.float64):
        return data
    if isinstance(data, np.generic) and data.dtype in (np.float32, np.float64):
        return np.asarray(data)
    return np.asarray(data, dtype=np.float32)


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    Args:
        data: an ndarray (float32 and float64 are kept as they are, without a copy), a nested
            list or a Python number (those become float32).
        requires_grad: whether `backward()` should compute dL/d(this tensor) into `.grad`.

    Attributes:
        data: the numpy array; may be assigned into (`p.data[...] = v`).
        grad: None until a backward pass reaches this tensor, then an array of its shape and
            dtype. Gradients accumulate over backward calls until reset to None.

    Example:
        >>> x = Tensor([2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        array([4., 6.], dtype=float32)
    """

    __array_priority__ = 1000  # so `np.float64(2) * t` calls Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data: np.ndarray = _as_array(data)
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._ctx: Function | None = None  # the Function that produced this tensor, if any
        self._retain_grad = False
        self._scope = _scope  # the modules whose forward created this tensor (for viz)
        self._calls = _calls  # which call of each of those modules (serial numbers)
        self.name: str | None = None  # optional label for graph drawings

    # --- plain properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item, got shape {self.shape}")
        return float(self.data.reshape(()))

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut off from the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep theirs)."""
        self._retain_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20)
        grad = ", requires_grad=True" if self.requires_grad else ""
        dtype = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        return f"Tensor({body}{dtype}{grad})"

    def _repr_html_(self) -> str:  # what Jupyter shows; the HTML lives outside the engine
        from tinygrad_cnn.display import tensor_html

        return tensor_html(self)

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        raise TypeError("a Tensor has no truth value; compare .data or use .item()")

    # --- the backward pass --------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires it.

        Args:
            grad: dL/d(self); may be omitted only when self has exactly one element (then 1).
            retain_graph: keep the arrays saved for backward so backward can run again.
        Raises:
            ValueError: grad omitted for a tensor of more than one element, or of wrong shape.
            RuntimeError: self does not require grad, or the graph was already freed.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad; "
                "no input it was computed from has requires_grad=True"
            )
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: grad can be omitted only for a one-element tensor, "
                    f"got shape {self.shape}; pass grad= of that shape"
                )
            grad = np.ones(self.shape, dtype=self.dtype)
        grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(
                f"backward: grad of shape {grad.shape} given for a tensor of shape {self.shape}"
            )

        order = self._topological_order()
        for node in order:
            if node._ctx is not None and getattr(node._ctx, "released", False):
                raise RuntimeError(
                    "backward: the graph's saved arrays were freed by an earlier "
                    "backward; pass retain_graph=True to the first call"
                )
        grads: dict[Tensor, np.ndarray] = {self: grad.astype(self.dtype, copy=False)}
        for node in reversed(order):  # the loss first, then each node after all its users
            g = grads.pop(node, None)  # popped: its buffer is freed as soon as it is used
            if g is None:
                continue
            if node._ctx is None or node._retain_grad:
                # a leaf (or a kept intermediate): accumulate into .grad; copy, since g may be
                # shared with another input (add sends the same array to both) or be a view
                node.grad = g.copy() if node.grad is None else node.grad + g
            fn = node._ctx
            if fn is None:
                continue
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            assert len(input_grads) == len(fn.inputs), (
                f"{fn.name}.backward returned {len(input_grads)} gradients "
                f"for {len(fn.inputs)} inputs"
            )
            for inp, needs, dinp in zip(fn.inputs, fn.needs_input_grad, input_grads):
                if not needs or dinp is None:
                    continue
                assert dinp.shape == inp.shape, (
                    f"{fn.name}.backward returned a gradient of shape {dinp.shape} "
                    f"for an input of shape {inp.shape}"
                )
                dinp = dinp.astype(inp.dtype, copy=False)
                grads[inp] = grads[inp] + dinp if inp in grads else dinp
            if not retain_graph:
                fn.release()

    def _topological_order(self) -> list[Tensor]:
        """Tensors that require grad, each after all of its inputs (iterative depth-first).

        An explicit stack instead of recursion, so a chain 100,000 ops deep works.
        """
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))  # revisit after its inputs are placed
            if node._ctx is not None:
                for inp in node._ctx.inputs:
                    if inp.requires_grad and id(inp) not in visited:
                        stack.append((inp, False))
        return order

    # --- operators: one-line delegations, so each op's math lives only in ops/ ------------
    # fmt: off
    def __add__(self, other): return ops.add(self, other)
    def __radd__(self, other): return ops.add(other, self)
    def __sub__(self, other): return ops.sub(self, other)
    def __rsub__(self, other): return ops.sub(other, self)
    def __mul__(self, other): return ops.mul(self, other)
    def __rmul__(self, other): return ops.mul(other, self)
    def __truediv__(self, other): return ops.div(self, other)
    def __rtruediv__(self, other): return ops.div(other, self)
    def __pow__(self, other): return ops.pow(self, other)
    def __rpow__(self, other): return ops.pow(other, self)
    def __matmul__(self, other): return ops.matmul(self, other)
    def __rmatmul__(self, other): return ops.matmul(other, self)
    def __neg__(self): return ops.neg(self)
    def __getitem__(self, index): return ops.getitem(self, index)
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def relu(self): return ops.relu(self)
    def sigmoid(self): return ops.sigmoid(self)
    def tanh(self): return ops.tanh(self)
    def softmax(self, axis=-1): return ops.softmax(self, axis=axis)
    def log_softmax(self, axis=-1): return ops.log_softmax(self, axis=axis)
    def sum(self, axis=None, keepdims=False): return ops.sum(self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return ops.mean(self, axis=axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return ops.max(self, axis=axis, keepdims=keepdims)
    def reshape(self, *shape): return ops.reshape(self, *shape)
    def transpose(self, *axes): return ops.transpose(self, *axes)
    def flatten(self, start_axis=1): return ops.flatten(self, start_axis=start_axis)
    def matmul(self, other): return ops.matmul(self, other)
    def conv2d(self, weight, bias=None, **kwargs): return ops.conv2d(self, weight, bias, **kwargs)
    def maxpool2d(self, kernel_size, **kwargs): return ops.maxpool2d(self, kernel_size, **kwargs)
    # fmt: on

    @property
    def T(self) -> Tensor:
        return ops.transpose(self)


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """`value` as a Tensor. Python numbers take `like`'s dtype, so float32 stays float32.

    Raises:
        TypeError: value is not a Tensor, an array, a list/tuple or a number.

    Example:
        >>> as_tensor(2, like=Tensor(np.zeros(3))).dtype
        dtype('float64')
        >>> as_tensor([1, 2]).data
        array([1., 2.], dtype=float32)
    """
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, (int, float, bool, np.number)):
        return Tensor(np.asarray(value, dtype=like.dtype))
    if isinstance(value, (int, float, bool, list, tuple, np.ndarray, np.number)):
        return Tensor(value)
    raise TypeError(f"expected a Tensor, an array or a number, got {type(value).__name__}")


def _shape_tuple(shape: Sequence[Any]) -> tuple[int, ...]:
    """Accept `reshape(2, 3)` and `reshape((2, 3))` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


# ops imports Tensor and Function from this module, so it can only be imported once both
# exist: at the bottom, not the top. The operators above look `ops` up when they run.
from tinygrad_cnn import ops  # noqa: E402
