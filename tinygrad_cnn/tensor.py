"""Tensor and reverse-mode autograd: the engine.

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

What guards and watches the engine sits beside it, each in a small file of its own that a
first reading can skip (track 3 of docs/READING.md), called from here at one line:
`saved.py` keeps the arrays a graph saved exactly as forward saw them (so an in-place edit
raises instead of bending a gradient), `convert.py` turns lists and numbers into tensors and
checks the gradient backward starts from, `hooks.py` runs a tensor's gradient hooks, and
`watch.py` lets tools watch forward and backward in the engine's real order. State that
persists between calls is per thread.

Read next: `ops/elementwise.py` (the simplest Functions), then `ops/__init__.py` for the
table of every op's derivative.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_cnn import convert, hooks, saved
from tinygrad_cnn.convert import as_tensor  # noqa: F401 (re-export: the ops import it from here)
from tinygrad_cnn.watch import watch_backward, watch_forward, watchers  # noqa: F401 (re-export)

# ----------------------------------------------------------------------------------------
# Per-thread state: gradient recording and the module scope
# ----------------------------------------------------------------------------------------


class _ThreadState(threading.local):
    """What persists between calls lives here, one copy per thread (as PyTorch's grad mode
    does), so `no_grad` in one thread never turns recording off in another."""

    def __init__(self) -> None:
        self.grad_enabled = True
        self.grad_modes: list[bool] = []  # the state each open no_grad/enable_grad restores
        # the modules whose forward is running and which call of each (set by nn.Module,
        # copied by every new tensor; the graph drawings box tensors by module)
        self.scope: tuple = ()
        self.calls: tuple[int, ...] = ()
        self.call_serial = 0


thread_state = _ThreadState()


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) that turns off graph recording in this thread.

    Results computed inside have `requires_grad=False` and keep no reference to their inputs,
    which is what evaluation and optimizer updates want. Nests (even re-entering the same
    instance, as a recursive decorated function does): each exit restores the state its own
    entry found, also when the body raises. Other threads keep recording.

    Example:
        >>> w = Tensor([1.0, 2.0], requires_grad=True)
        >>> with no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """

    enabled = False  # the grad mode inside the block

    def __enter__(self) -> None:
        thread_state.grad_modes.append(thread_state.grad_enabled)
        thread_state.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        thread_state.grad_enabled = thread_state.grad_modes.pop()


class enable_grad(no_grad):
    """Turn recording back on inside a `no_grad` block (context manager and decorator).

    Example:
        >>> with no_grad(), enable_grad():
        ...     print(is_grad_enabled())
        True
    """

    enabled = True


def is_grad_enabled() -> bool:
    """True unless inside a `no_grad()` block in this thread.

    Example:
        >>> with no_grad():
        ...     print(is_grad_enabled())
        False
        >>> is_grad_enabled()
        True
    """
    return thread_state.grad_enabled


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
    _pinned: tuple = ()  # input tensors whose arrays this node keeps read-only until released
    _frozen_out: np.ndarray | None = None  # the output array it made read-only

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
        for watch in watchers.forward:  # usually none (anomaly mode, explainers)
            watch(fn, data)
        requires_grad = thread_state.grad_enabled and any(fn.needs_input_grad)
        out = Tensor(data, requires_grad=requires_grad)
        if requires_grad:
            out._ctx = fn
            # keep small attributes (stride, axis...) for labels in graph drawings
            fn.params = {k: v for k, v in params.items() if not isinstance(v, np.ndarray)}
            saved.freeze(fn, inputs, data)  # read-only until backward (see saved.py)
        return out

    def release(self) -> None:
        """Drop the arrays saved for backward; keep the graph's structure and labels."""
        saved.thaw(self)
        keep = ("inputs", "needs_input_grad", "params")
        for key in [k for k in vars(self) if k not in keep]:
            delattr(self, key)
        self.released = True

    def __del__(self) -> None:
        saved.thaw(self)  # a graph dropped without backward frees its arrays too


# ----------------------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------------------


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    Args:
        data: an ndarray (float32 and float64 are kept as they are, without a copy), a nested
            list or a Python number (those become float32). Complex values are refused.
        requires_grad: whether `backward()` should compute dL/d(this tensor) into `.grad`.

    Attributes:
        data: the numpy array. While a recorded graph still needs it for backward it is
            read-only (writing into it raises); assigning a new array (`t.data = a`,
            `t.data += b`) is allowed and counted, and backward through the old graph then
            refuses to run rather than mix old and new values.
        grad: None until a backward pass reaches this tensor, then an array of its shape and
            dtype. Gradients accumulate over backward calls until reset to None.

    Example:
        >>> x = Tensor([2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        array([4., 6.], dtype=float32)
    """

    __array_priority__ = 1000  # so `np.float64(2) * t` calls Tensor.__rmul__
    # in-place bookkeeping (class defaults, so creating a tensor stays cheap)
    _version = 0  # bumped by every change of the values through the library
    _pins = 0  # how many pending graph nodes need this tensor's current array
    _frozen: np.ndarray | None = None  # the array we made read-only, to make writable again
    _hooks: dict | None = None

    def __init__(self, data: Any, requires_grad: bool = False):
        self._data: np.ndarray = convert.as_array(data)  # checked (convert.py)
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self._ctx: Function | None = None  # the Function that produced this tensor, if any
        self._retain_grad = False
        self._scope = thread_state.scope  # the modules whose forward created it (for viz)
        self._calls = thread_state.calls  # which call of each of those modules
        self.name: str | None = None  # optional label for graph drawings

    # --- the values, and changing them safely -------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = convert.as_array(value)
        self._version += 1

    def data_for_update(self) -> np.ndarray:
        """The array to change this tensor's values through, in place; counts the change (a
        writable copy first, if a pending graph saved the current array: see saved.py)."""
        return saved.data_for_update(self)

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

    def register_hook(self, hook: Callable[[np.ndarray], np.ndarray | None]) -> Any:
        """Call `hook(grad)` when backward has this tensor's complete gradient; a returned
        array replaces it. Returns a handle whose `remove()` unregisters it (see hooks.py)."""
        return hooks.register_hook(self, hook)

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
        grad = convert.initial_grad(self, grad)  # checked: shape, or 1 for a scalar
        order = self._topological_order()
        saved.check_not_released(order)  # a second backward needs retain_graph=True
        grads: dict[Tensor, np.ndarray] = {self: grad}
        for node in reversed(order):  # the loss first, then each node after all its users
            fn = node._ctx
            g = grads.pop(node, None)  # popped: its buffer is freed as soon as it is used
            if g is None:  # no gradient reached it (every user's backward returned None)
                if fn is not None and not retain_graph:
                    fn.release()
                continue
            if node._hooks:  # see hooks.py
                g = hooks.run_hooks(node, g)
            if fn is None or node._retain_grad:
                node._accumulate(g)
            if fn is None:
                for watch in watchers.backward:  # usually none (explainers, anomaly mode)
                    watch(node, g, ())
                continue
            saved.check_versions(fn)  # no input changed since forward saved it
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            assert len(input_grads) == len(fn.inputs), (
                f"{fn.name}.backward returned {len(input_grads)} gradients "
                f"for {len(fn.inputs)} inputs"
            )
            sent = []
            for inp, needs, dinp in zip(fn.inputs, fn.needs_input_grad, input_grads):
                if not needs or dinp is None:
                    sent.append((inp, None))
                    continue
                assert dinp.shape == inp.shape, (
                    f"{fn.name}.backward returned a gradient of shape {dinp.shape} "
                    f"for an input of shape {inp.shape}"
                )
                dinp = dinp.astype(inp.dtype, copy=False)
                grads[inp] = grads[inp] + dinp if inp in grads else dinp
                sent.append((inp, dinp))
            for watch in watchers.backward:
                watch(node, g, tuple(sent))
            if not retain_graph:
                fn.release()

    def _accumulate(self, g: np.ndarray) -> None:
        """Add g into .grad (a leaf, or an intermediate that asked to keep its gradient)."""
        if self.grad is None:
            # copy, since g may be shared with another input (add sends the same array to
            # both) or be a view of a buffer
            self.grad = g.copy()
        elif np.shape(self.grad) != self.shape:  # set by hand: adding would broadcast
            raise ValueError(
                f"backward: .grad has shape {np.shape(self.grad)} but the tensor has shape "
                f"{self.shape}; reset it with .grad = None"
            )
        else:
            self.grad = self.grad + g

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


# ops imports Tensor and Function from this module, so it can only be imported once both
# exist: at the bottom, not the top. The operators above look `ops` up when they run.
from tinygrad_cnn import ops  # noqa: E402
