"""Matrix product with numpy's `matmul` rules, and its two gradients.

For matrices, out = a @ b means out[i,j] = sum_k a[i,k] * b[k,j]. Differentiating that sum:
dL/da[i,k] = sum_j grad[i,j] * b[k,j], that is da = grad @ b^T, and likewise db = a^T @ grad.
Both gradients are matrix products again, which is why a dense layer's backward costs about
twice its forward. Batched operands (..., M, K) @ (..., K, N) broadcast their leading axes, and
the gradients are summed back over the axes that were broadcast.

Read next: `loss.py`, the last op of a classifier (`conv.py` later makes a whole convolution
one of these matrix products).
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.tensor import Function, Tensor, as_tensor, unbroadcast


class MatmulFn(Function):
    """Matrix product, numpy semantics (1-D operands, batched and broadcast leading axes).

    forward:   out[..., i, j] = sum_k a[..., i, k] * b[..., k, j]
    backward:  da = grad @ b^T        db = a^T @ grad        (^T swaps the last two axes;
               a 1-D a is treated as a row (1, K), a 1-D b as a column (K, 1))
    """

    name = "matmul"

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.a, self.b = a, b
        return np.matmul(a, b)

    def backward(self, grad: np.ndarray):
        a = self.a[None, :] if self.a.ndim == 1 else self.a  # (..., M, K)
        b = self.b[:, None] if self.b.ndim == 1 else self.b  # (..., K, N)
        if self.b.ndim == 1:
            grad = grad[..., None]  # put back the N axis that a 1-D b removed
        if self.a.ndim == 1:
            grad = grad[..., None, :]  # put back the M axis that a 1-D a removed
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(np.matmul(grad, np.swapaxes(b, -1, -2)), a.shape)  # (..., M, K)
            da = da.reshape(self.a.shape)
        if self.needs_input_grad[1]:
            db = unbroadcast(np.matmul(np.swapaxes(a, -1, -2), grad), b.shape)  # (..., K, N)
            db = db.reshape(self.b.shape)
        return da, db


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """a @ b as numpy.matmul: (M, K) @ (K, N) -> (M, N), with 1-D and batched operands.

    Shapes:
        a (..., M, K), b (..., K, N) -> out (broadcast(...), M, N); a 1-D operand has its
        M (or N) axis dropped from the output.
    Raises:
        ValueError: a 0-d operand, inner sizes that differ, or batch axes that do not
            broadcast; the message names both shapes.
    Example:
        >>> matmul(Tensor([[1.0, 2.0]]), Tensor([[3.0], [4.0]])).data
        array([[11.]], dtype=float32)
    """
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: cannot multiply {a.shape} by {b.shape}: both operands need at least one axis"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: cannot multiply {a.shape} by {b.shape}: inner sizes {k_a} and {k_b} differ"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: cannot multiply {a.shape} by {b.shape}: batch axes "
            f"{a.shape[:-2]} and {b.shape[:-2]} do not broadcast"
        ) from None
    return MatmulFn.apply(a, b)
