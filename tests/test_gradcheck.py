"""gradcheck itself: it must accept right gradients and catch wrong ones."""

import numpy as np
import pytest

from tinygrad_cnn import Function, Tensor, gradcheck


class ForgetsTransposeFn(Function):
    """out = a @ b, but backward returns grad @ b (no transpose): right only for some shapes."""

    name = "bad_matmul"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        return grad @ self.b, self.a.T @ grad


def test_catches_wrong_gradient_of_detached_factor():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(AssertionError, match=r"input 0.*numeric.*analytic"):
        gradcheck(lambda x: (x * x.detach()).sum(), [x])


def test_catches_forgotten_transpose_on_square_inputs():
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    with pytest.raises(AssertionError, match="input 0"):
        gradcheck(lambda a, b: ForgetsTransposeFn.apply(a, b), [a, b])


def test_leaves_inputs_untouched_and_accepts_float32():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    x.grad = np.array([7.0, 7.0], dtype=np.float32)
    before = x.data.copy()
    assert gradcheck(lambda x: (x * x).exp(), [x])
    np.testing.assert_array_equal(x.data, before)
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])
    assert x.data.dtype == np.float32


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda x: x * 2, [Tensor(np.ones(2))])
