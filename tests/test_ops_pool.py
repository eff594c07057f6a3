"""maxpool2d, avgpool2d, upsample2d: gradchecks, PyTorch, Keras 'same' against direct loops,
ties, output shapes, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import distinct, random_grad
from tinygrad_cnn import Tensor, gradcheck, ops

CASES = [  # x shape, kernel, stride, padding
    ((2, 3, 8, 8), 2, None, 0),
    ((1, 2, 7, 9), 2, None, 0),  # odd sizes: the last row and column are never read
    ((2, 2, 7, 8), 3, 1, 1),  # overlapping windows: gradients add
    ((2, 2, 9, 7), 3, 2, 0),
    ((2, 1, 6, 9), (2, 3), (1, 2), (1, 0)),
    ((1, 3, 5, 6), (3, 2), None, (1, 1)),
]


def _torch_pool(torch, kind, x, kernel, stride, padding):
    F = torch.nn.functional
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    return pool(x, kernel, stride=kernel if stride is None else stride, padding=padding)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape, kernel, stride, padding", CASES)
def test_pool_matches_torch(x_shape, kernel, stride, padding, kind, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = distinct(x_shape, rng).astype(dtype)
    ours, ref = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    op = ops.maxpool2d if kind == "max" else ops.avgpool2d
    out = op(ours, kernel, stride=stride, padding=padding)
    expected = _torch_pool(torch, kind, ref, kernel, stride, padding)
    g = random_grad(expected.shape, rng, dtype)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    assert out.dtype == ours.grad.dtype == dtype
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tol)
    np.testing.assert_allclose(ours.grad, ref.grad.numpy(), **tol)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(
    "kernel, stride, padding",
    [(2, None, 0), (3, 2, 1), ((3, 2), 1, "same"), (2, 3, "same"), (3, 2, "valid")],
)
def test_pool_gradcheck(kind, kernel, stride, padding):
    x = Tensor(distinct((2, 2, 7, 6), np.random.default_rng(1)), requires_grad=True)
    op = ops.maxpool2d if kind == "max" else ops.avgpool2d
    assert gradcheck(lambda x: op(x, kernel, stride=stride, padding=padding), [x])


# ----------------------------------------------------------------------------------------
# Keras 'same' against a direct-loop reference
# ----------------------------------------------------------------------------------------


def direct_pool(x, kind, kernel, stride):
    """Keras 'same' by loops: ceil(n / s) windows, cut at the edges, over real pixels only."""
    (KH, KW), (sh, sw) = kernel, stride
    N, C, H, W = x.shape
    OH, OW = -(-H // sh), -(-W // sw)
    top = max((OH - 1) * sh + KH - H, 0) // 2  # the odd pixel of padding goes to the bottom
    left = max((OW - 1) * sw + KW - W, 0) // 2
    out = np.zeros((N, C, OH, OW))
    for n, c, i, j in itertools.product(range(N), range(C), range(OH), range(OW)):
        r0, c0 = i * sh - top, j * sw - left
        window = x[n, c, max(r0, 0) : r0 + KH, max(c0, 0) : c0 + KW]
        out[n, c, i, j] = window.max() if kind == "max" else window.mean()
    return out


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("H, W, kernel, stride", [
    (7, 7, (2, 2), (2, 2)), (5, 8, (3, 3), (2, 2)), (6, 5, (3, 2), (1, 3)), (4, 9, (2, 4), (3, 2)),
])  # fmt: skip
def test_same_matches_direct_loops(kind, H, W, kernel, stride):
    x = np.random.default_rng(2).standard_normal((2, 3, H, W)) - 3  # negative: pads never win
    op = ops.maxpool2d if kind == "max" else ops.avgpool2d
    out = op(Tensor(x), kernel, stride=stride, padding="same")
    np.testing.assert_allclose(out.data, direct_pool(x, kind, kernel, stride), rtol=1e-12)


def test_same_pads_bottom_right_and_averages_real_pixels():
    x = Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    # 3 rows, k 2, s 2: 2 outputs, one padding row, at the bottom
    np.testing.assert_array_equal(ops.maxpool2d(x, 2, padding="same").data[0, 0], [[5, 6], [8, 9]])
    np.testing.assert_array_equal(
        ops.avgpool2d(x, 2, padding="same").data[0, 0], [[3, 4.5], [7.5, 9]]
    )  # 9 alone: divided by 1, not 4
    # int padding counts the zeros, as PyTorch's count_include_pad=True
    assert ops.avgpool2d(x, 2, padding=1).data[0, 0, 0, 0] == 1 / 4


def test_maxpool_ties_send_the_gradient_to_one_element_per_window():
    x = Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)  # every window is a tie (e.g. relu)
    ops.maxpool2d(x, 2).backward(np.arange(1.0, 5.0).reshape(1, 1, 2, 2))
    expected = np.zeros((4, 4))
    expected[::2, ::2] = [[1, 2], [3, 4]]  # the first cell of each window, as PyTorch
    np.testing.assert_array_equal(x.grad[0, 0], expected)
    y = Tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    ops.maxpool2d(y, 2, stride=1).backward(np.ones((1, 1, 2, 2)))
    assert y.grad.sum() == 4 and np.count_nonzero(y.grad) == 4  # overlapping: one each


def test_upsample2d_matches_torch_and_gradcheck():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5))
    for dtype in (np.float64, np.float32):
        ours, ref = Tensor(x.astype(dtype), requires_grad=True), torch.tensor(x.astype(dtype))
        ref.requires_grad_()
        out = ops.upsample2d(ours, 3)
        expected = torch.nn.functional.interpolate(ref, scale_factor=3, mode="nearest")
        g = random_grad(expected.shape, rng, dtype)
        out.backward(g)
        expected.backward(torch.from_numpy(g))
        assert out.dtype == ours.grad.dtype == dtype
        np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert gradcheck(lambda t: ops.upsample2d(t, 2), [Tensor(x[:1, :2], requires_grad=True)])


@settings(max_examples=60, deadline=None)
@given(
    H=st.integers(1, 10),
    W=st.integers(1, 10),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    s=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    padding=st.one_of(st.integers(0, 1), st.just("same"), st.just("valid")),
)
def test_pool_output_shape_formula(H, W, k, s, padding):
    x = Tensor(np.zeros((1, 2, H, W)))
    stride = k if s is None else s
    if padding == "same":
        expected = (-(-H // stride[0]), -(-W // stride[1]))
    else:
        p = 0 if padding == "valid" else padding
        if any(2 * p > kn for kn in k) or any(kn > n + 2 * p for kn, n in zip(k, (H, W))):
            with pytest.raises(ValueError, match="maxpool2d"):
                ops.maxpool2d(x, k, stride=s, padding=padding)
            return
        expected = tuple((n + 2 * p - kn) // sn + 1 for n, kn, sn in zip((H, W), k, stride))
    for op in (ops.maxpool2d, ops.avgpool2d):
        assert op(x, k, stride=s, padding=padding).shape == (1, 2, *expected)


X = Tensor(np.zeros((2, 3, 6, 6)))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: ops.maxpool2d(Tensor(np.zeros((3, 6, 6))), 2), ValueError,
     r"maxpool2d: input must be 4-D .* got shape \(3, 6, 6\) \(add a batch axis"),
    (lambda: ops.avgpool2d(X, 0), ValueError, r"avgpool2d: kernel_size must be positive, got 0"),
    (lambda: ops.maxpool2d(X, 2, stride=(1, 0)), ValueError, r"stride must be positive"),
    (lambda: ops.maxpool2d(X, 7), ValueError,
     r"kernel 7x7 is larger than the padded input 6x6 \(input \(2, 3, 6, 6\)"),
    (lambda: ops.maxpool2d(X, 2, padding="full"), ValueError, r"'valid' or 'same', got 'full'"),
    (lambda: ops.avgpool2d(X, 2, padding=-1), ValueError, r"padding must be non-negative"),
    (lambda: ops.maxpool2d(X, 2, padding=2), ValueError, r"at most half of the kernel"),
    (lambda: ops.maxpool2d(X, 2.0), TypeError, r"kernel_size must be an int or a pair"),
    (lambda: ops.upsample2d(Tensor(np.zeros((3, 4, 4)))), ValueError, r"upsample2d: .*4-D"),
    (lambda: ops.upsample2d(X, 0), ValueError, r"scale_factor must be at least 1, got 0"),
    (lambda: ops.upsample2d(X, 1.5), TypeError, r"scale_factor must be an int"),
])  # fmt: skip
def test_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_maxpool_sends_the_gradient_to_the_nan_of_a_window_as_pytorch():
    nan = np.nan
    x = np.array([[1.0, nan, 5.0, 2.0], [nan, 0.0, 3.0, nan]]).reshape(1, 1, 2, 4)
    ours = Tensor(x, requires_grad=True)
    out = ops.maxpool2d(ours, 2)
    out.backward(np.array([[[[10.0, 20.0]]]]))
    assert np.isnan(out.data).all()
    expected = np.zeros((2, 4))
    expected[1, 0] = 10  # two NaNs in the first window: the last one, in row-major order
    expected[1, 3] = 20
    np.testing.assert_array_equal(ours.grad[0, 0], expected)
    torch = pytest.importorskip("torch")
    ref = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(ref, 2).backward(torch.tensor([[[[10.0, 20.0]]]]))
    np.testing.assert_array_equal(ours.grad, ref.grad.numpy())


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), (2, 1, "same")])
def test_maxpool_with_nan_matches_torch(kernel, stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = distinct((2, 3, 7, 6), rng)
    x[rng.random(x.shape) < 0.15] = np.nan
    ours, ref = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g = random_grad((2, 3, *ops.maxpool2d(ours, kernel, stride, padding).shape[2:]), rng)
    ops.maxpool2d(ours, kernel, stride, padding).backward(g)
    if padding == "same":  # Keras' bottom/right padding, given to torch explicitly
        ref_in = torch.nn.functional.pad(ref, (0, 1, 0, 1), value=-float("inf"))
        expected = torch.nn.functional.max_pool2d(ref_in, kernel, stride=stride)
    else:
        expected = _torch_pool(torch, "max", ref, kernel, stride, padding)
    expected.backward(torch.from_numpy(g))
    # the same cells get gradient; overlapping windows may add in another order (1 ulp)
    assert ((ours.grad != 0) == (ref.grad.numpy() != 0)).all()
    np.testing.assert_allclose(ours.grad, ref.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", [ops.maxpool2d, ops.avgpool2d])
def test_pooling_an_empty_batch(op):
    x = Tensor(np.zeros((0, 3, 8, 8), np.float32), requires_grad=True)
    out = op(x, 3, stride=2, padding=1)
    assert out.shape == (0, 3, 4, 4)
    out.sum().backward()
    assert x.grad.shape == (0, 3, 8, 8)
