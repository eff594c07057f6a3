"""The engine: Tensor construction, dtypes, the backward pass, no_grad, memory."""

import gc
import tracemalloc

import numpy as np
import pytest

from tinygrad_cnn import Tensor, no_grad, ops
from tinygrad_cnn.tensor import is_grad_enabled


def test_construction_keeps_float_dtypes_without_copy():
    a64 = np.zeros((2, 3))
    a32 = np.zeros((2, 3), dtype=np.float32)
    assert Tensor(a64).data is a64 and Tensor(a64).dtype == np.float64
    assert Tensor(a32).data is a32
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(3).dtype == np.float32 and Tensor(3).shape == ()
    assert Tensor(np.arange(3)).dtype == np.float32


def test_properties_and_item():
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6
    assert t.numpy() is t.data
    assert t.sum().item() == 15.0 and isinstance(t.sum().item(), float)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        t.item()
    d = t.detach()
    assert d.data is t.data and not d.requires_grad


def test_float32_stays_float32_with_python_scalars():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = (2.5 - x) * 3 + x / 2 - 1 / (x + 1) + 2**x + x**2 - (-x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_reflected_operators_values_and_grads():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = 2.5 - x
    z = 2**x
    w = 1 / x
    np.testing.assert_allclose(y.data, [1.5, 0.5])
    np.testing.assert_allclose(z.data, [2.0, 4.0])
    np.testing.assert_allclose(w.data, [1.0, 0.5])
    (y + z + w).sum().backward()
    np.testing.assert_allclose(x.grad, -1 + np.log(2) * 2**x.data - 1 / x.data**2)


def test_micrograd_readme_example():
    def scalar(v):
        return Tensor(np.float64(v), requires_grad=True)

    a, b = scalar(-4.0), scalar(2.0)
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    assert g.item() == pytest.approx(24.7041, abs=1e-4)
    assert a.grad == pytest.approx(138.8338, abs=1e-4)
    assert b.grad == pytest.approx(645.5773, abs=1e-4)


@pytest.mark.parametrize("op", ["add", "mul"])
def test_deep_chain_5000_is_iterative(op):
    x = Tensor(np.float64(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + x if op == "add" else y * 1.0001
    y.backward()
    expected = 5001.0 if op == "add" else 1.0001**5000
    assert x.grad == pytest.approx(expected)


def test_shared_nodes_sum_all_paths():
    a = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    (a @ a).sum().backward()  # d/da sum(a a) = 1 a^T + a^T 1
    ones = np.ones((2, 2))
    np.testing.assert_allclose(a.grad, ones @ a.data.T + a.data.T @ ones)

    x = Tensor(np.float64(3.0), requires_grad=True)
    b = x * 2  # used three times, at two depths
    c = b * b
    (c + b).backward()  # (2x)^2 + 2x -> 8x + 2
    assert x.grad == pytest.approx(26.0)

    # a diamond: two paths from x to the loss
    x = Tensor(np.float64(2.0), requires_grad=True)
    left, right = x.exp(), x * 3
    (left * right).backward()
    assert x.grad == pytest.approx(np.exp(2) * 6 + np.exp(2) * 3)


def test_gradients_accumulate_until_zeroed():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    x.zero_grad()
    assert x.grad is None


def test_constants_get_no_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    (x * c).sum().backward()
    assert c.grad is None and not c.requires_grad
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_backward_without_grad_needs_one_element():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        y.backward()
    assert x.grad is None
    (x.sum(keepdims=True)).backward()  # shape (1, 1): allowed
    np.testing.assert_allclose(x.grad, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_twice_needs_retain_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_no_grad_context_decorator_nesting_and_exceptions():
    w = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
        y = w * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y._ctx is None

    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("boom")
    assert is_grad_enabled()

    @no_grad()
    def evaluate(t):
        return t * 3

    assert not evaluate(w).requires_grad
    assert is_grad_enabled()


def test_retain_grad_keeps_intermediate_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    other = x * 4
    (h * h + other).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    assert other.grad is None


def test_nan_propagates_without_crashing():
    x = Tensor(np.array([1.0, np.nan]), requires_grad=True)
    y = (x * 2 + 1).exp().sum()
    assert np.isnan(y.item())
    y.backward()
    assert np.isnan(x.grad[1]) and np.isfinite(x.grad[0])


def test_broadcast_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))


def test_bool_is_an_error():
    with pytest.raises(TypeError):
        bool(Tensor([1.0]))


def test_training_steps_do_not_grow_memory():
    rng = np.random.default_rng(0)
    w1 = Tensor(rng.standard_normal((20, 32)).astype(np.float32) * 0.1, requires_grad=True)
    w2 = Tensor(rng.standard_normal((32, 5)).astype(np.float32) * 0.1, requires_grad=True)
    x = Tensor(rng.standard_normal((64, 20)).astype(np.float32))
    labels = rng.integers(0, 5, 64)

    def step():
        loss = ops.cross_entropy((x @ w1).relu() @ w2, labels)
        loss.backward()
        for w in (w1, w2):
            w.data -= 0.01 * w.grad
            w.grad = None

    for _ in range(10):  # warm-up: caches, first allocations
        step()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(200):
        step()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after - before < 2 * 1024 * 1024


def test_backward_releases_saved_arrays():
    x = Tensor(np.ones((3, 3)), requires_grad=True)
    y = x.exp()
    z = y.sum()
    assert hasattr(y._ctx, "out")
    z.backward()
    assert not hasattr(y._ctx, "out")  # the saved exp(x) buffer is gone
    assert y._ctx.inputs[0] is x  # the graph's structure stays, for drawing
