"""Elementwise ops: add sub mul div pow neg exp log relu sigmoid tanh.

Each output element depends on the input elements at the same position only, so each
derivative is a pointwise product: dx = grad * f'(x). Binary ops broadcast their inputs as
numpy does; their backward sums each gradient back to its input's shape (`unbroadcast`).

Read next: `reduce.py`.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.ops.windows import elementwise
from tinygrad_cnn.tensor import Function, Tensor, as_tensor, unbroadcast


def _binary(op: str, x, y) -> tuple[Tensor, Tensor]:
    """Wrap Python numbers as tensors of the other operand's dtype; check broadcasting."""
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
    x, y = as_tensor(x, like), as_tensor(y, like)
    try:
        np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {x.shape} and {y.shape} cannot be broadcast together "
            f"(sizes must match or be 1, aligned from the right)"
        ) from None
    return x, y


class AddFn(Function):
    """Elementwise sum; shapes broadcast as in numpy.

    forward:   out = x + y
    backward:  dx = grad      dy = grad      (each summed back to its input's shape)
    """

    name = "add"

    def forward(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.x_shape, self.y_shape = x.shape, y.shape
        return x + y

    def backward(self, grad: np.ndarray):
        dx = unbroadcast(grad, self.x_shape) if self.needs_input_grad[0] else None
        dy = unbroadcast(grad, self.y_shape) if self.needs_input_grad[1] else None
        return dx, dy


class SubFn(Function):
    """Elementwise difference.

    forward:   out = x - y
    backward:  dx = grad      dy = -grad
    """

    name = "sub"

    def forward(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.x_shape, self.y_shape = x.shape, y.shape
        return x - y

    def backward(self, grad: np.ndarray):
        dx = unbroadcast(grad, self.x_shape) if self.needs_input_grad[0] else None
        dy = -unbroadcast(grad, self.y_shape) if self.needs_input_grad[1] else None
        return dx, dy


class MulFn(Function):
    """Elementwise product.

    forward:   out = x * y
    backward:  dx = grad * y      dy = grad * x
    """

    name = "mul"

    def forward(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.x, self.y = x, y
        return x * y

    def backward(self, grad: np.ndarray):
        dx = unbroadcast(grad * self.y, self.x.shape) if self.needs_input_grad[0] else None
        dy = unbroadcast(grad * self.x, self.y.shape) if self.needs_input_grad[1] else None
        return dx, dy


class DivFn(Function):
    """Elementwise quotient.

    forward:   out = x / y
    backward:  dx = grad / y      dy = -grad * x / y^2 = -grad * out / y
    """

    name = "div"

    def forward(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.x_shape, self.y = x.shape, y
        self.out = x / y
        return self.out

    def backward(self, grad: np.ndarray):
        dx = unbroadcast(grad / self.y, self.x_shape) if self.needs_input_grad[0] else None
        dy = None
        if self.needs_input_grad[1]:
            dy = unbroadcast(-grad * self.out / self.y, self.y.shape)
        return dx, dy


class PowFn(Function):
    """Elementwise power with a tensor exponent.

    forward:   out = x ** y
    backward:  dx = grad * y * x^(y-1)      dy = grad * out * log(x)
    """

    name = "pow"

    def forward(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.x, self.y = x, y
        self.out = x**y
        return self.out

    def backward(self, grad: np.ndarray):
        dx = dy = None
        if self.needs_input_grad[0]:
            # NOTE: where y = 0, x^y is constant: dx is 0 even at x = 0 (not 0 * inf)
            with np.errstate(divide="ignore", invalid="ignore"):
                local = np.where(self.y == 0, 0, self.y * self.x ** (self.y - 1))
            dx = unbroadcast(grad * local, self.x.shape)
        if self.needs_input_grad[1]:
            # NOTE: log(x) is nan for x < 0, as the real derivative is undefined there. At
            # x = 0 with y >= 0, out * log(x) is 0 * -inf; x^y is flat in y there (0 for
            # y > 0), so the derivative is taken as 0, as PyTorch does
            with np.errstate(divide="ignore", invalid="ignore"):
                local = self.out * np.log(self.x)
            local = np.where((self.x == 0) & (self.y >= 0), 0, local)
            dy = unbroadcast(grad * local, self.y.shape)
        return dx, dy


class PowScalarFn(Function):
    """Power with a constant Python-number exponent p (x ** 2, x ** 0.5).

    forward:   out = x ** p
    backward:  dx = grad * p * x^(p-1)
    """

    name = "pow"

    def forward(self, x: np.ndarray, exponent: float) -> np.ndarray:
        self.x, self.exponent = x, exponent
        return x**exponent

    def backward(self, grad: np.ndarray):
        p = self.exponent
        if p == 0:  # x ** 0 is constant (even at x = 0, where p * x^(p-1) would be 0 * inf)
            return np.zeros_like(grad)
        return grad * (p * self.x ** (p - 1)).astype(self.x.dtype, copy=False)


class NegFn(Function):
    """forward: out = -x        backward: dx = -grad"""

    name = "neg"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, grad: np.ndarray):
        return -grad


class ExpFn(Function):
    """forward: out = e^x       backward: dx = grad * out   (the derivative is the output)"""

    name = "exp"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.exp(x)
        return self.out

    def backward(self, grad: np.ndarray):
        return grad * self.out


class LogFn(Function):
    """forward: out = ln x      backward: dx = grad / x"""

    name = "log"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.log(x)

    def backward(self, grad: np.ndarray):
        return grad / self.x


class ReluFn(Function):
    """forward: out = max(x, 0)        backward: dx = grad * (x > 0)

    NOTE: relu'(0) is taken as 0, as PyTorch does.
    """

    name = "relu"

    def forward(self, x: np.ndarray) -> np.ndarray:
        # NOTE: `elementwise` (windows.py) splits the pass over threads; measured in the
        # backward's NOTE. Same numbers as np.maximum(x, 0)
        self.out = elementwise(_clip, np.empty(x.shape, x.dtype), x)
        return self.out

    def backward(self, grad: np.ndarray):
        # NOTE: the mask written straight as 0.0 / 1.0 in grad's dtype, then multiplied in
        # place, one cache-sized block at a time and over threads: memory is read and written
        # once (same numbers as grad * (out > 0)). Measured, relu forward + backward per
        # 2-thread step: LeNet 4.6 -> 3.5 ms, course CNN (batch 512) 7.8 -> 6.1 ms
        return elementwise(_masked, np.empty(grad.shape, grad.dtype), self.out, grad)


def _clip(out: np.ndarray, x: np.ndarray) -> None:
    np.maximum(x, 0, out=out)


def _masked(dx: np.ndarray, out: np.ndarray, grad: np.ndarray) -> None:
    np.greater(out, 0, out=dx)
    dx *= grad


class SigmoidFn(Function):
    """forward: out = 1 / (1 + e^-x)     backward: dx = grad * out * (1 - out)"""

    name = "sigmoid"

    def forward(self, x: np.ndarray) -> np.ndarray:
        # e^-|x| never overflows: for x < 0 use the equal form e^x / (1 + e^x)
        z = np.exp(-np.abs(x))
        self.out = np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, grad: np.ndarray):
        return grad * self.out * (1 - self.out)


class TanhFn(Function):
    """forward: out = tanh x     backward: dx = grad * (1 - out^2)"""

    name = "tanh"

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad: np.ndarray):
        return grad * (1 - self.out * self.out)


# ---------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------


def add(x: Tensor | float, y: Tensor | float) -> Tensor:
    """x + y with numpy broadcasting.

    Example:
        >>> add(Tensor([1.0, 2.0]), 10).data
        array([11., 12.], dtype=float32)
    """
    return AddFn.apply(*_binary("add", x, y))


def sub(x: Tensor | float, y: Tensor | float) -> Tensor:
    """x - y with numpy broadcasting.

    Example:
        >>> sub(Tensor([1.0, 2.0]), 10).data
        array([-9., -8.], dtype=float32)
    """
    return SubFn.apply(*_binary("sub", x, y))


def mul(x: Tensor | float, y: Tensor | float) -> Tensor:
    """x * y with numpy broadcasting.

    Example:
        >>> mul(Tensor([1.0, 2.0]), Tensor([3.0, 4.0])).data
        array([3., 8.], dtype=float32)
    """
    return MulFn.apply(*_binary("mul", x, y))


def div(x: Tensor | float, y: Tensor | float) -> Tensor:
    """x / y with numpy broadcasting.

    Example:
        >>> div(Tensor([1.0, 3.0]), 2).data
        array([0.5, 1.5], dtype=float32)
    """
    return DivFn.apply(*_binary("div", x, y))


def pow(x: Tensor | float, y: Tensor | float) -> Tensor:
    """x ** y. A Python-number exponent is a constant; a Tensor exponent gets a gradient.

    Example:
        >>> pow(Tensor([3.0]), 2).data
        array([9.], dtype=float32)
    """
    if isinstance(x, Tensor) and isinstance(y, (int, float)) and not isinstance(y, bool):
        return PowScalarFn.apply(x, exponent=y)
    return PowFn.apply(*_binary("pow", x, y))


def neg(x: Tensor) -> Tensor:
    """-x

    Example:
        >>> neg(Tensor([1.0, -2.0])).data
        array([-1.,  2.], dtype=float32)
    """
    return NegFn.apply(as_tensor(x))


def exp(x: Tensor) -> Tensor:
    """e ** x, elementwise.

    Example:
        >>> exp(Tensor(np.array([0.0, 1.0]))).data
        array([1.        , 2.71828183])
    """
    return ExpFn.apply(as_tensor(x))


def log(x: Tensor) -> Tensor:
    """Natural logarithm, elementwise (nan below 0, -inf at 0, as numpy).

    Example:
        >>> log(Tensor(np.array([1.0, np.e]))).data
        array([0., 1.])
    """
    return LogFn.apply(as_tensor(x))


def relu(x: Tensor) -> Tensor:
    """max(x, 0), elementwise.

    Example:
        >>> relu(Tensor([-1.0, 0.0, 2.0])).data
        array([0., 0., 2.], dtype=float32)
    """
    return ReluFn.apply(as_tensor(x))


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x), elementwise, without overflow for large |x|.

    Example:
        >>> sigmoid(Tensor(np.array([-1000.0, 0.0, 1000.0]))).data
        array([0. , 0.5, 1. ])
    """
    return SigmoidFn.apply(as_tensor(x))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent, elementwise.

    Example:
        >>> tanh(Tensor(np.array([0.0, 1.0]))).data.round(4)
        array([0.    , 0.7616])
    """
    return TanhFn.apply(as_tensor(x))
