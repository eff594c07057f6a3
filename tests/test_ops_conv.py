"""conv2d and conv_transpose2d: the course example, gradchecks, PyTorch, 'same', adjointness,
output shapes, bad input, empty batches, results never in scratch memory."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import random_grad
from tinygrad_cnn import Tensor, gradcheck, models, ops
from tinygrad_cnn.models.unet import UNet
from tinygrad_cnn.ops.conv import col2im
from tinygrad_cnn.ops.window_args import resolve_padding


def test_course_example():
    image = np.array(
        [[5, 2, 1, 3, 5], [4, 3, 2, 3, 4], [0, 2, 1, 2, 2], [3, 3, 2, 3, 2], [2, 1, 3, 2, 2]],
        dtype=np.float32,
    )
    kernel = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float32)
    out = ops.conv2d(Tensor(image.reshape(1, 1, 5, 5)), Tensor(kernel.reshape(1, 1, 3, 3)))
    assert out.shape == (1, 1, 3, 3)
    assert out.data[0, 0, 0, 0] == 5 + 1 + 3 + 0 + 1
    expected = [[(image[i : i + 3, j : j + 3] * kernel).sum() for j in range(3)] for i in range(3)]
    np.testing.assert_array_equal(out.data[0, 0], expected)


# ----------------------------------------------------------------------------------------
# An independent direct-loop reference (no im2col, no BLAS), with TF/Keras 'same' padding
# ----------------------------------------------------------------------------------------


def keras_same(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's documented rule: ceil(n / s) outputs, the odd pixel at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def direct_conv(x, w, stride, pads, dilation, groups=1):
    """out[n,o,i,j] = sum_{c,u,v} w[o,c,u,v] * xp[n, g*C/G + c, i*s+u*d, j*s+v*d], by loops."""
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), *pads))
    N, _, Hp, Wp = xp.shape
    O, Cg, KH, KW = w.shape
    OH, OW = (Hp - (KH - 1) * dh - 1) // sh + 1, (Wp - (KW - 1) * dw - 1) // sw + 1
    out = np.zeros((N, O, OH, OW), dtype=x.dtype)
    for n, o, i, j in itertools.product(range(N), range(O), range(OH), range(OW)):
        g = o // (O // groups)
        for c, u, v in itertools.product(range(Cg), range(KH), range(KW)):
            out[n, o, i, j] += w[o, c, u, v] * xp[n, g * Cg + c, i * sh + u * dh, j * sw + v * dw]
    return out


@pytest.mark.parametrize("H, W, k, stride, dilation", [
    (6, 6, 3, 2, 1), (7, 5, 3, 2, 1), (8, 9, (2, 3), (3, 2), 1), (5, 7, 3, 3, 2), (6, 6, 4, 1, 1),
    (9, 6, (3, 2), (2, 1), (2, 1)), (4, 4, 1, 3, 1),
])  # fmt: skip
def test_same_matches_direct_loops(H, W, k, stride, dilation):
    rng = np.random.default_rng(0)
    KH, KW = (k, k) if isinstance(k, int) else k
    (sh, sw), (dh, dw) = [(v, v) if isinstance(v, int) else v for v in (stride, dilation)]
    x = rng.standard_normal((2, 3, H, W))
    w = rng.standard_normal((4, 3, KH, KW))
    out = ops.conv2d(Tensor(x), Tensor(w), stride=stride, padding="same", dilation=dilation)
    assert out.shape == (2, 4, -(-H // sh), -(-W // sw))  # Keras: ceil(in / stride)
    pads = (keras_same(H, KH, sh, dh), keras_same(W, KW, sw, dw))
    expected = direct_conv(x, w, (sh, sw), pads, (dh, dw))
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)


def test_same_puts_the_odd_pixel_bottom_right():
    # 6 rows, k 3, s 2: 3 outputs need (3-1)*2 + 3 = 7 rows, one pad row, and it goes at the bottom
    assert resolve_padding("same", (6, 6), (3, 3), (2, 2), (1, 1), "conv2d") == ((0, 1), (0, 1))
    x = np.arange(1.0, 37.0).reshape(1, 1, 6, 6)
    out = ops.conv2d(Tensor(x), Tensor(np.ones((1, 1, 3, 3))), stride=2, padding="same")
    # window (i, j) covers rows 2i..2i+2 and columns 2j..2j+2 of x, cut at the bottom/right
    expected = [
        [x[0, 0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].sum() for j in range(3)] for i in range(3)
    ]
    np.testing.assert_array_equal(out.data[0, 0], expected)
    assert out.data[0, 0, 2, 2] == 29 + 30 + 35 + 36  # only 2x2 real pixels in the corner


def test_same_with_stride_matches_torch_with_explicit_padding():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((5, 3, 4, 3))
    ours = [Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)]
    out = ops.conv2d(*ours, stride=(2, 3), padding="same")
    # torch refuses 'same' with stride > 1, so the Keras padding is written out: for H=7, k=4, s=2
    # the total is 3 -> (1 top, 2 bottom); for W=8, k=3, s=3 it is 1 -> (0 left, 1 right)
    ref = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    expected = torch.nn.functional.conv2d(
        torch.nn.functional.pad(ref[0], (0, 1, 1, 2)), ref[1], stride=(2, 3)
    )
    g = random_grad(expected.shape, rng)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for t, r in zip(ours, ref):
        np.testing.assert_allclose(t.grad, r.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------------
# PyTorch comparison over a grid, forward and backward
# ----------------------------------------------------------------------------------------

GRID = [  # x shape, weight shape, stride, padding, dilation, groups, bias
    ((2, 3, 9, 8), (4, 3, 3, 3), 1, 0, 1, 1, True),
    ((1, 3, 9, 8), (4, 3, 3, 3), 2, 1, 1, 1, False),
    ((2, 2, 10, 7), (3, 2, 2, 4), 3, (2, 1), 1, 1, True),
    ((2, 4, 8, 9), (6, 2, 3, 2), (1, 2), 1, 2, 2, True),
    ((2, 4, 9, 9), (4, 1, 3, 3), 2, "valid", (2, 1), 4, False),  # depthwise
    ((3, 6, 7, 6), (6, 3, 1, 1), 1, 0, 1, 2, True),
    ((2, 3, 6, 7), (5, 3, 4, 4), (2, 3), "same", 1, 1, True),
    ((1, 2, 5, 5), (2, 2, 5, 5), 1, "same", 1, 1, False),
    ((2, 3, 8, 8), (4, 3, 2, 2), 1, "same", 2, 1, True),
    ((2, 1, 11, 5), (3, 1, 3, 2), (3, 1), 2, (1, 2), 1, True),
    ((2, 4, 6, 6), (8, 2, 3, 3), 2, "same", 1, 2, False),
    # stride 1 and O <= C: dx as a full convolution with the turned filters
    ((2, 6, 7, 8), (4, 3, 3, 2), 1, "same", (2, 1), 2, True),
    ((1, 4, 5, 6), (4, 4, 1, 3), 1, (2, 1), 1, 1, False),  # more padding than the kernel reaches
    ((2, 5, 6, 5), (3, 5, 3, 3), 1, 1, 1, 1, True),
]


def _torch_padding(x_shape, w_shape, stride, padding, dilation):
    """torch's F.pad argument (left, right, top, bottom) for our padding, and torch's padding."""
    s = (stride, stride) if isinstance(stride, int) else stride
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "same":  # Keras 'same': asymmetric at stride > 1, so pad explicitly
        (top, bottom), (left, right) = (
            keras_same(x_shape[2], w_shape[2], s[0], d[0]),
            keras_same(x_shape[3], w_shape[3], s[1], d[1]),
        )
        return (left, right, top, bottom), 0
    return (0, 0, 0, 0), padding


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, bias", GRID)
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding, dilation, groups, bias, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[:1])]
    arrays = arrays if bias else arrays[:2]
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = ops.conv2d(*ours, stride=stride, padding=padding, dilation=dilation, groups=groups)
    pre, pad = _torch_padding(x_shape, w_shape, stride, padding, dilation)
    expected = F.conv2d(
        F.pad(ref[0], pre), *ref[1:], stride=stride, padding=pad, dilation=dilation, groups=groups
    )
    g = random_grad(expected.shape, rng, dtype)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tol)
    for t, r in zip(ours, ref):
        assert t.grad.dtype == dtype  # float32 stays float32 in the gradients too
        np.testing.assert_allclose(t.grad, r.grad.numpy(), **tol)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, output_padding, dilation, groups", [
    ((2, 4, 5, 6), (4, 3, 3, 2), 1, 0, 0, 1, 1),
    ((1, 4, 4, 3), (4, 2, 3, 3), 2, 1, 1, 1, 2),
    ((2, 3, 3, 5), (3, 2, 4, 2), (3, 2), (2, 0), (2, 1), 1, 1),
    ((2, 2, 4, 4), (2, 3, 3, 3), 1, 0, 1, 2, 1),  # output_padding beyond the cut padding
    ((2, 4, 3, 4), (4, 1, 2, 2), 2, 0, 0, 1, 4),
])  # fmt: skip
def test_conv_transpose2d_matches_torch(
    x_shape, w_shape, stride, padding, output_padding, dilation, groups
):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in (x_shape, w_shape, (w_shape[1] * groups,))]
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    kwargs = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    out = ops.conv_transpose2d(*ours, **kwargs)
    expected = torch.nn.functional.conv_transpose2d(*ref, **kwargs)
    g = random_grad(expected.shape, rng)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for t, r in zip(ours, ref):
        np.testing.assert_allclose(t.grad, r.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------------
# Gradient checks (float64, random upstream gradient), small shapes
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride, padding, dilation, groups, bias", [
    (1, 1, 1, 1, True), (2, "same", 1, 1, False), ((2, 1), (1, 0), (1, 2), 2, True),
    (1, "valid", 2, 4, False), (3, "same", 1, 2, True),
])  # fmt: skip
def test_conv2d_gradcheck(stride, padding, dilation, groups, bias):
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((2, 4, 6, 5)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 4 // groups, 3, 2)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    inputs = [x, w, b] if bias else [x, w]

    def f(x, w, b=None):
        return ops.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    assert gradcheck(f, inputs)


@pytest.mark.parametrize(
    "stride, padding, output_padding, groups",
    [
        (1, 0, 0, 1),
        (2, 1, 1, 1),
        ((2, 3), (0, 1), (1, 2), 2),
    ],
)
def test_conv_transpose2d_gradcheck(stride, padding, output_padding, groups):
    rng = np.random.default_rng(5)
    y = Tensor(rng.standard_normal((2, 2, 3, 4)), requires_grad=True)
    w = Tensor(
        rng.standard_normal((2, 3 // groups if groups == 1 else 1, 3, 2)), requires_grad=True
    )
    b = Tensor(rng.standard_normal(w.shape[1] * groups), requires_grad=True)

    def f(y, w, b):
        return ops.conv_transpose2d(
            y, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups
        )

    assert gradcheck(f, [y, w, b])


# ----------------------------------------------------------------------------------------
# Properties: adjointness and output shapes
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), (3, 2, 2, 1), ((2, 1), (1, 2), (1, 2), 2), (2, 0, 1, 3),
])  # fmt: skip
def test_conv_transpose2d_is_the_adjoint_of_conv2d(stride, padding, dilation, groups):
    # <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for every x and y
    rng = np.random.default_rng(6)
    s = (stride, stride) if isinstance(stride, int) else stride
    p = (padding, padding) if isinstance(padding, int) else padding
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    x = rng.standard_normal((2, 6, 11, 10))
    w = rng.standard_normal((12, 6 // groups, 3, 2))
    conv = ops.conv2d(
        Tensor(x), Tensor(w), stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    y = rng.standard_normal(conv.shape)
    # rows of x that no window reached come back as output_padding
    extra = tuple(
        (n + 2 * pi - di * (k - 1) - 1) % si
        for n, pi, di, k, si in zip(x.shape[2:], p, d, w.shape[2:], s)
    )
    back = ops.conv_transpose2d(
        Tensor(y),
        Tensor(w),
        stride=stride,
        padding=padding,
        output_padding=extra,
        dilation=dilation,
        groups=groups,
    )
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(conv.data * y), np.sum(x * back.data), rtol=1e-10)


@settings(max_examples=60, deadline=None)
@given(
    H=st.integers(1, 12),
    W=st.integers(1, 12),
    KH=st.integers(1, 4),
    KW=st.integers(1, 4),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.one_of(st.integers(0, 2), st.just("same"), st.just("valid")),
)
def test_conv2d_output_shape_formula(H, W, KH, KW, s, d, padding):
    x, w = Tensor(np.zeros((1, 2, H, W))), Tensor(np.zeros((3, 2, KH, KW)))
    if padding == "same":
        expected = (-(-H // s[0]), -(-W // s[1]))
        pads = (sum(keras_same(H, KH, s[0], d[0])), sum(keras_same(W, KW, s[1], d[1])))
    else:
        p = 0 if padding == "valid" else padding
        pads = (2 * p, 2 * p)
        expected = tuple(
            (n + pn - dn * (k - 1) - 1) // sn + 1
            for n, pn, dn, k, sn in zip((H, W), pads, d, (KH, KW), s)
        )
    if any(dn * (k - 1) + 1 > n + pn for n, pn, dn, k in zip((H, W), pads, d, (KH, KW))):
        with pytest.raises(ValueError, match="larger than the padded input"):
            ops.conv2d(x, w, stride=s, padding=padding, dilation=d)
        return
    out = ops.conv2d(x, w, stride=s, padding=padding, dilation=d)
    assert out.shape == (1, 3, *expected)
    y = ops.conv_transpose2d(
        Tensor(np.zeros((1, 3, H, W))), Tensor(np.zeros((3, 2, KH, KW))), stride=s, dilation=d
    )
    assert y.shape[2:] == tuple(
        (n - 1) * sn + dn * (k - 1) + 1 for n, sn, dn, k in zip((H, W), s, d, (KH, KW))
    )


# ----------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------

X, WEIGHT = Tensor(np.zeros((2, 4, 6, 6))), Tensor(np.zeros((8, 4, 3, 3)))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: ops.conv2d(Tensor(np.zeros((4, 6, 6))), WEIGHT), ValueError,
     r"conv2d: input must be 4-D .* got shape \(4, 6, 6\) \(add a batch axis"),
    (lambda: ops.conv2d(X, Tensor(np.zeros((8, 4, 3)))), ValueError, r"weight .* \(8, 4, 3\)"),
    (lambda: ops.conv2d(X, Tensor(np.zeros((8, 3, 3, 3)))), ValueError,
     r"input \(2, 4, 6, 6\) has 4 channels, but weight \(8, 3, 3, 3\) .* expects 3"),
    (lambda: ops.conv2d(X, Tensor(np.zeros((8, 2, 3, 3))), groups=3), ValueError,
     r"divisible by groups=3"),
    (lambda: ops.conv2d(X, Tensor(np.zeros((6, 1, 3, 3))), groups=4), ValueError,
     r"6 filters; both must be divisible by groups=4"),
    (lambda: ops.conv2d(X, Tensor(np.zeros((8, 4, 7, 3)))), ValueError,
     r"kernel 7x3 is larger than the padded input 6x6 \(input \(2, 4, 6, 6\)"),
    (lambda: ops.conv2d(X, WEIGHT, dilation=3), ValueError,
     r"kernel 3x3 \(dilated to 7x7\) is larger than the padded input 6x6"),
    (lambda: ops.conv2d(X, WEIGHT, stride=0), ValueError, r"stride must be positive, got 0"),
    (lambda: ops.conv2d(X, WEIGHT, dilation=(1, -1)), ValueError, r"dilation must be positive"),
    (lambda: ops.conv2d(X, Tensor(np.zeros((8, 4, 0, 3)))), ValueError,
     r"kernel size must be positive"),
    (lambda: ops.conv2d(X, WEIGHT, padding="full"), ValueError,
     r"padding must be an int, a pair, 'valid' or 'same', got 'full'"),
    (lambda: ops.conv2d(X, WEIGHT, padding=-1), ValueError, r"padding must be non-negative"),
    (lambda: ops.conv2d(X, WEIGHT, stride=1.5), TypeError, r"stride must be an int or a pair"),
    (lambda: ops.conv2d(X, WEIGHT, padding=(1, 2, 3)), TypeError, r"padding must be an int"),
    (lambda: ops.conv2d(X, WEIGHT, groups=0), ValueError, r"groups must be positive"),
    (lambda: ops.conv2d(X, WEIGHT, bias=Tensor(np.zeros(4))), ValueError,
     r"bias must have shape \(8,\), got \(4,\)"),
    (lambda: ops.conv_transpose2d(Tensor(np.zeros((8, 3, 3))), WEIGHT), ValueError,
     r"conv_transpose2d: input must be 4-D .*add a batch axis"),
    (lambda: ops.conv_transpose2d(X, WEIGHT), ValueError,
     r"input \(2, 4, 6, 6\) has 4 channels, but weight \(8, 4, 3, 3\) expects 8"),
    (lambda: ops.conv_transpose2d(X, Tensor(np.zeros((4, 2, 3, 3))), stride=2,
                                  output_padding=2), ValueError, r"output_padding \(2, 2\)"),
    (lambda: ops.conv_transpose2d(X, Tensor(np.zeros((4, 2, 3, 3))), padding="same"),
     TypeError, r"padding must be an int or a pair"),
])  # fmt: skip
def test_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_tensor_methods_delegate():
    x, w = Tensor(np.ones((1, 2, 5, 5))), Tensor(np.ones((3, 2, 3, 3)))
    np.testing.assert_array_equal(
        x.conv2d(w, stride=2, padding="same").data, ops.conv2d(x, w, stride=2, padding="same").data
    )
    np.testing.assert_array_equal(
        x.maxpool2d(2, padding="same").data, ops.maxpool2d(x, 2, padding="same").data
    )


def test_col2im_returns_its_own_array():
    """A result kept from one call is not changed by the next (no shared scratch memory)."""
    first = col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), (1, 1), (1, 1))
    kept = first.copy()
    col2im(np.full((1, 1, 2, 2, 2, 2), 7.0), (1, 1, 3, 3), (1, 1), (1, 1))
    np.testing.assert_array_equal(first, kept)


def test_conv_outputs_are_not_scratch_memory():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    first = ops.conv2d(x, w, padding=1)
    first.sum().backward()
    kept = first.data.copy(), x.grad.copy(), w.grad.copy()
    y = ops.conv2d(Tensor(rng.standard_normal((2, 3, 6, 6))), w, padding=1)
    (y * y).sum().backward()
    np.testing.assert_array_equal(first.data, kept[0])
    np.testing.assert_array_equal(x.grad, kept[1])


@pytest.mark.parametrize(
    "op, w_shape, kwargs",
    [
        (ops.conv2d, (4, 3, 3, 3), dict(padding=1)),
        (ops.conv2d, (4, 3, 3, 3), dict(stride=2, padding="same")),
        (ops.conv2d, (6, 1, 3, 3), dict(groups=3, padding=0)),
        (ops.conv_transpose2d, (3, 2, 2, 2), dict(stride=2)),
        (ops.conv_transpose2d, (3, 2, 3, 3), dict(padding=1)),
    ],
)
def test_an_empty_batch_flows_forward_and_backward(op, w_shape, kwargs):
    x = Tensor(np.zeros((0, 3, 8, 8), np.float32), requires_grad=True)
    w = Tensor(np.ones(w_shape, np.float32), requires_grad=True)
    out = op(x, w, **kwargs)
    assert out.shape[0] == 0
    out.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad, np.zeros(w_shape))  # a sum over no images


@pytest.mark.parametrize(
    "make, x_shape",
    [
        (lambda: models.mnist_cnn(seed=0), (0, 1, 28, 28)),
        (lambda: models.lenet(seed=0), (0, 1, 28, 28)),
        (lambda: UNet(1, 2, base=4, depth=2, seed=0), (0, 1, 16, 16)),
    ],
)
def test_models_take_an_empty_batch(make, x_shape):
    model = make()
    out = model(Tensor(np.zeros(x_shape, np.float32)))
    assert out.shape[0] == 0
    out.sum().backward()
    for p in model.parameters():
        np.testing.assert_array_equal(p.grad, np.zeros(p.shape))


@pytest.mark.parametrize("stride, dilation, padding", [(1, 1, 1), (2, 1, 1), (1, 2, "same")])
def test_blocked_forward_equals_one_product(monkeypatch, stride, dilation, padding):
    """Few filters and a large input take the blocked path (a few output rows at a time)."""
    from tinygrad_cnn.ops import conv_gemm

    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 16, 41, 40))
    w = rng.standard_normal((8, 16, 3, 3))
    b = rng.standard_normal(8)  # added inside the blocks
    grad = None

    def run():
        xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
        out = ops.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation)
        out.backward(grad if grad is not None else np.ones(out.shape))
        return out.data, xt.grad, wt.grad, bt.grad

    monkeypatch.setattr(conv_gemm, "BLOCK_ELEMENTS", 20_000)  # several blocks, one partial
    monkeypatch.setattr(conv_gemm, "get_num_threads", lambda: 1)  # the blocked path's condition
    calls = []
    original = conv_gemm._blocked_forward
    monkeypatch.setattr(conv_gemm, "_blocked_forward", lambda *a: calls.append(1) or original(*a))
    blocked = run()
    assert calls  # the forward (and, at stride 1, the input gradient) went through it
    monkeypatch.setattr(conv_gemm, "BLOCKED_MAX_FILTERS", 0)
    for got, expected in zip(blocked, run()):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
