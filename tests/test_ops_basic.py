"""Elementwise, reduction, movement, matmul and loss ops: gradchecks, torch, properties."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import distinct, random_grad
from tinygrad_cnn import Tensor, gradcheck, ops, unbroadcast

RNG = np.random.default_rng(0)


def positive(shape, rng):
    return rng.uniform(0.5, 2.0, shape)


# (name, function of tensors, input arrays) -- every differentiable op appears here
CASES = [
    ("add", lambda x, y: x + y, lambda r: [r.standard_normal((3, 4)), r.standard_normal((4,))]),
    ("add_keepdim", lambda x, y: x + y, lambda r: [r.standard_normal((3, 1)), r.standard_normal((1, 4))]),
    ("sub", lambda x, y: x - y, lambda r: [r.standard_normal((2, 3)), r.standard_normal((2, 1))]),
    ("mul", lambda x, y: x * y, lambda r: [r.standard_normal((2, 3, 4)), r.standard_normal((3, 1))]),
    ("div", lambda x, y: x / y, lambda r: [r.standard_normal((3, 4)), positive((4,), r)]),
    ("pow_tensor", lambda x, y: x**y, lambda r: [positive((3, 4), r), r.standard_normal((3, 4))]),
    ("pow_scalar", lambda x: x**3, lambda r: [r.standard_normal((3, 4))]),
    ("pow_sqrt", lambda x: x**0.5, lambda r: [positive((5,), r)]),
    ("neg", lambda x: -x, lambda r: [r.standard_normal((3,))]),
    ("exp", lambda x: x.exp(), lambda r: [r.standard_normal((3, 4))]),
    ("log", lambda x: x.log(), lambda r: [positive((3, 4), r)]),
    ("relu", lambda x: x.relu(), lambda r: [distinct((3, 4), r)]),
    ("sigmoid", lambda x: x.sigmoid(), lambda r: [r.standard_normal((3, 4)) * 3]),
    ("tanh", lambda x: x.tanh(), lambda r: [r.standard_normal((3, 4))]),
    ("sum_all", lambda x: x.sum(), lambda r: [r.standard_normal((3, 4))]),
    ("sum_axis", lambda x: x.sum(axis=(0, -1), keepdims=True), lambda r: [r.standard_normal((2, 3, 4))]),
    ("mean", lambda x: x.mean(axis=1), lambda r: [r.standard_normal((2, 3, 4))]),
    ("max", lambda x: x.max(axis=-1), lambda r: [distinct((3, 5), r)]),
    ("max_all", lambda x: x.max(), lambda r: [distinct((3, 5), r)]),
    ("reshape", lambda x: x.reshape(4, -1) * 1.5, lambda r: [r.standard_normal((2, 3, 2))]),
    ("transpose", lambda x: x.transpose(2, 0, 1), lambda r: [r.standard_normal((2, 3, 4))]),
    ("T", lambda x: x.T, lambda r: [r.standard_normal((2, 3))]),
    ("flatten", lambda x: x.flatten(), lambda r: [r.standard_normal((2, 3, 2))]),
    ("getitem", lambda x: x[1:, ::-2, None, 0], lambda r: [r.standard_normal((3, 5, 2))]),
    ("getitem_ellipsis", lambda x: x[..., -1], lambda r: [r.standard_normal((3, 5, 2))]),
    ("concat", lambda x, y: ops.concat([x, y, x], axis=-1), lambda r: [r.standard_normal((2, 3)), r.standard_normal((2, 1))]),
    ("pad", lambda x: ops.pad(x, ((1, 0), (2, 1)), 5.0), lambda r: [r.standard_normal((2, 3))]),
    ("matmul", lambda a, b: a @ b, lambda r: [r.standard_normal((3, 4)), r.standard_normal((4, 5))]),
    ("matmul_batched", lambda a, b: a @ b, lambda r: [r.standard_normal((2, 1, 3, 4)), r.standard_normal((3, 4, 2))]),
    ("matmul_vec_mat", lambda a, b: a @ b, lambda r: [r.standard_normal((4,)), r.standard_normal((2, 4, 3))]),
    ("matmul_mat_vec", lambda a, b: a @ b, lambda r: [r.standard_normal((2, 3, 4)), r.standard_normal((4,))]),
    ("matmul_vec_vec", lambda a, b: a @ b, lambda r: [r.standard_normal((4,)), r.standard_normal((4,))]),
    ("softmax", lambda x: x.softmax(axis=0), lambda r: [r.standard_normal((3, 4))]),
    ("log_softmax", lambda x: x.log_softmax(), lambda r: [r.standard_normal((3, 4))]),
    ("cross_entropy", lambda x: ops.cross_entropy(x, np.array([0, 3, 1])), lambda r: [r.standard_normal((3, 4))]),
    ("cross_entropy_2d", lambda x: ops.cross_entropy(x, np.array([[[0, 2], [1, 1]]])), lambda r: [r.standard_normal((1, 3, 2, 2))]),
    ("cross_entropy_sum", lambda x: ops.cross_entropy(x, np.array([2, 0]), reduction="sum"), lambda r: [r.standard_normal((2, 3))]),
    ("bce_logits", lambda x, t: ops.binary_cross_entropy_with_logits(x, t), lambda r: [r.standard_normal((3, 4)) * 3, r.uniform(0, 1, (3, 4))]),
]  # fmt: skip


@pytest.mark.parametrize("name, fn, make", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(name, fn, make):
    inputs = [Tensor(a, requires_grad=True) for a in make(np.random.default_rng(1))]
    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("name, fn, make", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_forward_and_backward(name, fn, make):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import TORCH_EQUIVALENTS

    arrays = make(np.random.default_rng(2))
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ours)
    expected = TORCH_EQUIVALENTS[name](torch, *ref)
    g = random_grad(out.shape, np.random.default_rng(3))
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for t, r in zip(ours, ref):
        np.testing.assert_allclose(t.grad, r.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, fn, make", CASES, ids=[c[0] for c in CASES])
def test_float32_stays_float32(name, fn, make):
    arrays = [a.astype(np.float32) for a in make(np.random.default_rng(4))]
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ours)
    assert out.dtype == np.float32
    out.backward(random_grad(out.shape, np.random.default_rng(5), np.float32))
    for t in ours:
        assert t.grad.dtype == np.float32 and t.grad.shape == t.shape


# --- properties ----------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, max_side=3), data=st.data())
def test_unbroadcast_undoes_broadcasting(shape, data):
    other = data.draw(hnp.broadcastable_shapes(shape, max_dims=4))
    grad = np.ones(np.broadcast_shapes(shape, other))
    out = unbroadcast(grad, shape)
    assert out.shape == shape and out.sum() == grad.sum()


@settings(max_examples=40, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_broadcast_add_grads_have_input_shapes(shape, data):
    other = data.draw(hnp.broadcastable_shapes(shape, max_dims=3))
    x = Tensor(np.ones(shape), requires_grad=True)
    y = Tensor(np.ones(other), requires_grad=True)
    out = x * 2 + y
    out.sum().backward()
    assert x.grad.shape == shape and y.grad.shape == other
    assert x.grad.sum() == pytest.approx(2 * out.size)
    assert y.grad.sum() == pytest.approx(out.size)


@settings(max_examples=50, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data())
def test_reductions_match_numpy(shape, data):
    ndim = len(shape)
    axis = data.draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(0, ndim - 1), unique=True, min_size=1).map(tuple),
        )
    )
    keepdims = data.draw(st.booleans())
    x = np.random.default_rng(0).standard_normal(shape)
    for ours, theirs in [(ops.sum, np.sum), (ops.mean, np.mean), (ops.max, np.max)]:
        out = ours(Tensor(x), axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(out.data, theirs(x, axis=axis, keepdims=keepdims))
    t = Tensor(x, requires_grad=True)
    ops.mean(t, axis=axis, keepdims=keepdims).sum().backward()
    assert t.grad.shape == shape
    assert t.grad.sum() == pytest.approx(np.mean(x, axis=axis, keepdims=keepdims).size)


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.floats(-50, 50)
    ),
    c=st.floats(-100, 100),
)
def test_softmax_sums_to_one_and_log_softmax_is_shift_invariant(x, c):
    np.testing.assert_allclose(ops.softmax(Tensor(x)).data.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        ops.log_softmax(Tensor(x + c)).data, ops.log_softmax(Tensor(x)).data, atol=1e-9
    )


# --- stability and bad input --------------------------------------------------------


def test_softmax_losses_stable_at_extreme_logits():
    logits = Tensor(np.array([[300.0, -300.0, 0.0], [-300.0, 300.0, 300.0]]), requires_grad=True)
    for out in [ops.log_softmax(logits), ops.softmax(logits)]:
        assert np.all(np.isfinite(out.data))
    loss = ops.cross_entropy(logits, np.array([1, 2]))
    assert loss.item() == pytest.approx((600 + np.log(2)) / 2)
    loss.backward()
    assert np.all(np.isfinite(logits.grad))

    x = Tensor(np.array([100.0, -100.0]), requires_grad=True)
    bce = ops.binary_cross_entropy_with_logits(x, np.array([0.0, 1.0]))
    assert bce.item() == pytest.approx(100.0)
    bce.backward()
    np.testing.assert_allclose(x.grad, [0.5, -0.5])


@pytest.mark.parametrize("label", [3, -1])
def test_cross_entropy_rejects_out_of_range_labels(label):
    with pytest.raises(ValueError, match=rf"label {label}.*C = 3"):
        ops.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, label]))


def test_cross_entropy_label_shape_and_type_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2,\).*\(3,\)"):
        ops.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer"):
        ops.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.5, 1.0]))
    loss = ops.cross_entropy(Tensor(np.zeros((2, 3))), Tensor([0.0, 2.0]))  # integral floats ok
    assert loss.item() == pytest.approx(np.log(3))


@pytest.mark.parametrize("a, b", [((3, 4), (5, 6)), ((2, 3, 6), (2, 7, 5)), ((2, 3, 4), (3, 4, 5))])
def test_matmul_shape_errors_name_both_shapes(a, b):
    with pytest.raises(ValueError, match=rf"{a}.*{b}".replace("(", r"\(").replace(")", r"\)")):
        Tensor(np.ones(a)) @ Tensor(np.ones(b))


def test_movement_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="permutation"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match="axis 5"):
        x.sum(axis=5)
    with pytest.raises(TypeError, match="basic"):
        x[np.array([0, 1])]
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        x[5]
    with pytest.raises(ValueError, match=r"\[\(2, 3\), \(2, 2\)\]"):
        ops.concat([x, Tensor(np.ones((2, 2)))], axis=0)


def test_getitem_gradient_scatters_back():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x[1, ::2].sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0, 0], [1, 0, 1]])


def test_max_ties_share_the_gradient():
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


def test_pow_exponent_gradient_at_zero_base_is_zero_as_in_pytorch():
    x = Tensor(np.array([0.0, 0.0, 2.0]), requires_grad=True)
    e = Tensor(np.array([2.0, 0.0, 3.0]), requires_grad=True)
    (x**e).sum().backward()
    np.testing.assert_allclose(e.grad, [0.0, 0.0, 8.0 * np.log(2.0)])
    torch = pytest.importorskip("torch")
    tx = torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64, requires_grad=True)
    te = torch.tensor([2.0, 0.0, 3.0], dtype=torch.float64, requires_grad=True)
    (tx**te).sum().backward()
    np.testing.assert_allclose(e.grad, te.grad.numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_complex_input_is_refused():
    with pytest.raises(TypeError, match="complex"):
        Tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="complex"):
        Tensor([1.0]) + np.array([1j])
