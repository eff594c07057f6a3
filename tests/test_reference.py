"""ops/reference.py: the kernels written as the math reads equal the fast ones (values and every
gradient, float64, over the whole argument grid), pass gradcheck, and `use_kernels` switches
the public ops to them, per thread."""

from __future__ import annotations

import inspect
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import distinct, random_grad
from tinygrad_cnn import Tensor, gradcheck, ops
from tinygrad_cnn.ops import reference

OPS = ["conv2d", "conv_transpose2d", "maxpool2d", "avgpool2d"]


def both(op: str, arrays: list[np.ndarray], seed: int, **kwargs):
    """Run the fast and the reference op on the same float64 arrays with a random upstream
    gradient; return (values, gradients) of each."""
    results = []
    for module in (ops, reference):
        inputs = [Tensor(a, requires_grad=True) for a in arrays]
        out = getattr(module, op)(*inputs, **kwargs)
        out.backward(random_grad(out.shape, np.random.default_rng(seed)))
        results.append((out.data, [t.grad for t in inputs]))
    return results


def assert_same(fast, ref):
    (fast_out, fast_grads), (ref_out, ref_grads) = fast, ref
    assert fast_out.shape == ref_out.shape
    np.testing.assert_allclose(ref_out, fast_out, rtol=1e-10, atol=1e-12)
    for fast_grad, ref_grad in zip(fast_grads, ref_grads):
        np.testing.assert_allclose(ref_grad, fast_grad, rtol=1e-10, atol=1e-12)


pairs = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


@settings(max_examples=60, deadline=None)
@given(
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=pairs,
    dilation=pairs,
    padding=st.one_of(
        st.sampled_from(["same", "valid"]),
        st.integers(0, 2),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ),  # fmt: skip
    groups=st.sampled_from([1, 2]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv2d_reference_equals_fast(size, kernel, stride, dilation, padding, groups, bias, seed):
    rng = np.random.default_rng(seed)
    C, O = 2 * groups, 3 * groups
    arrays = [rng.standard_normal((2, C, *size)), rng.standard_normal((O, C // groups, *kernel))]
    arrays += [rng.standard_normal(O)] if bias else []
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    try:
        ops.conv2d(*map(Tensor, arrays), **kwargs)
    except ValueError as error:  # the kernel does not fit: the reference must say so too
        with pytest.raises(ValueError, match="larger than the padded input"):
            reference.conv2d(*map(Tensor, arrays), **kwargs)
        assert "larger than the padded input" in str(error)
        return
    assert_same(*both("conv2d", arrays, seed, **kwargs))


@settings(max_examples=50, deadline=None)
@given(
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=pairs,
    dilation=pairs,
    padding=st.integers(0, 2),
    output_padding=st.integers(0, 2),
    groups=st.sampled_from([1, 2]),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv_transpose2d_reference_equals_fast(
    size, kernel, stride, dilation, padding, output_padding, groups, bias, seed
):
    rng = np.random.default_rng(seed)
    C, Og = 2 * groups, 3
    arrays = [rng.standard_normal((2, C, *size)), rng.standard_normal((C, Og, *kernel))]
    arrays += [rng.standard_normal(Og * groups)] if bias else []
    kwargs = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    try:
        ops.conv_transpose2d(*map(Tensor, arrays), **kwargs)
    except ValueError as error:  # too much output_padding or padding: the same refusal
        with pytest.raises(ValueError) as ref_error:
            reference.conv_transpose2d(*map(Tensor, arrays), **kwargs)
        assert str(ref_error.value) == str(error)
        return
    assert_same(*both("conv_transpose2d", arrays, seed, **kwargs))


@settings(max_examples=60, deadline=None)
@given(
    op=st.sampled_from(["maxpool2d", "avgpool2d"]),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    kernel=st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    stride=st.one_of(st.none(), pairs),
    padding=st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 1)),
    seed=st.integers(0, 2**16),
)
def test_pool_reference_equals_fast(op, size, kernel, stride, padding, seed):
    x = distinct((2, 3, *size), np.random.default_rng(seed))  # no ties: one arg-max per window
    kwargs = dict(stride=stride, padding=padding)
    try:
        getattr(ops, op)(Tensor(x), kernel, **kwargs)
    except ValueError as error:
        with pytest.raises(ValueError) as ref_error:
            getattr(reference, op)(Tensor(x), kernel, **kwargs)
        assert str(ref_error.value) == str(error)
        return
    results = []
    for module in (ops, reference):
        t = Tensor(x, requires_grad=True)
        out = getattr(module, op)(t, kernel, **kwargs)
        out.backward(random_grad(out.shape, np.random.default_rng(seed)))
        results.append((out.data, [t.grad]))
    assert_same(*results)


def test_maxpool_ties_go_to_the_first_tap_in_both():
    x = np.zeros((1, 1, 4, 4))  # every window is a tie
    results = []
    for module in (ops, reference):
        t = Tensor(x, requires_grad=True)
        module.maxpool2d(t, 2, stride=1).sum().backward()
        results.append(t.grad)
    np.testing.assert_array_equal(results[0], results[1])


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    w = Tensor(rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    assert reference.conv2d(x, w).dtype == np.float32
    assert reference.conv_transpose2d(x, Tensor(w.data.transpose(1, 0, 2, 3))).dtype == np.float32
    assert reference.maxpool2d(x, 2).dtype == np.float32
    assert reference.avgpool2d(x, 2, padding="same").dtype == np.float32


@pytest.mark.parametrize("op", OPS)
def test_signatures_are_the_public_ones(op):
    fast = inspect.signature(getattr(ops, op)).parameters
    ref = inspect.signature(getattr(reference, op)).parameters
    assert [(p.name, p.default) for p in fast.values()] == [
        (p.name, p.default) for p in ref.values()
    ]


# ----------------------------------------------------------------------------------------
# gradcheck on each reference op
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [dict(stride=2, padding="same"), dict(padding=1, dilation=2), dict(groups=2, stride=(1, 2))],
)
def test_reference_conv2d_gradcheck(kwargs):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 4, 6, 5)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 4 // kwargs.get("groups", 1), 3, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda x, w, b: reference.conv2d(x, w, b, **kwargs), [x, w, b])


@pytest.mark.parametrize(
    "kwargs", [dict(stride=2, padding=1, output_padding=1), dict(dilation=2, groups=2)]
)
def test_reference_conv_transpose2d_gradcheck(kwargs):
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((2, 4, 4, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 2)), requires_grad=True)
    assert gradcheck(lambda x, w: reference.conv_transpose2d(x, w, **kwargs), [x, w])


@pytest.mark.parametrize("op", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, "same"), (3, 1, 1)])
def test_reference_pool_gradcheck(op, kernel, stride, padding):
    x = Tensor(distinct((2, 3, 7, 6), np.random.default_rng(2)), requires_grad=True)
    pool = getattr(reference, op)
    assert gradcheck(lambda x: pool(x, kernel, stride=stride, padding=padding), [x])


# ----------------------------------------------------------------------------------------
# The switch: ops.use_kernels("reference"), per thread
# ----------------------------------------------------------------------------------------


def test_use_kernels_routes_the_public_ops():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((1, 2, 6, 6)), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 2, 3, 3)))
    calls = {
        "conv2d": lambda: ops.conv2d(x, w),
        "conv_transpose2d": lambda: ops.conv_transpose2d(x, w),
        "maxpool2d": lambda: ops.maxpool2d(x, 2),
        "avgpool2d": lambda: ops.avgpool2d(x, 2),
    }
    for op, call in calls.items():
        assert type(call()._ctx).__module__ != reference.__name__, op
        with ops.use_kernels("reference"):
            assert ops.get_kernels() == "reference"
            assert type(call()._ctx).__module__ == reference.__name__, op
        assert ops.get_kernels() == "fast"


def test_use_kernels_is_per_thread_and_checked():
    seen = []
    with ops.use_kernels("reference"):
        thread = threading.Thread(target=lambda: seen.append(ops.get_kernels()))
        thread.start()
        thread.join()
        with ops.use_kernels("fast"):
            assert ops.get_kernels() == "fast"
        assert ops.get_kernels() == "reference"
    assert seen == ["fast"]
    with pytest.raises(ValueError, match="'slow'"):
        with ops.use_kernels("slow"):
            pass


def test_nn_layers_train_the_same_with_reference_kernels():
    from tinygrad_cnn import nn, optim

    rng = np.random.default_rng(4)
    images = rng.standard_normal((8, 1, 8, 8))
    labels = rng.integers(0, 3, size=8)
    losses = []
    for kernels in ("fast", "reference"):
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 3),
        )
        for p, seed in zip(model.parameters(), range(10)):  # the same weights in both runs
            p.data = np.random.default_rng(seed).standard_normal(p.shape) * 0.3
        opt = optim.SGD(model.parameters(), lr=0.1)
        with ops.use_kernels(kernels):
            for _ in range(3):
                loss = ops.cross_entropy(model(Tensor(images)), labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
        losses.append(loss.item())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-9)


def test_course_cnn_trains_to_the_same_accuracy_with_reference_kernels():
    from tinygrad_cnn import data, models, optim
    from tinygrad_cnn.data import DataLoader
    from tinygrad_cnn.train import fit

    images, labels = data.get_dataset("shapes", "train", limit=256, seed=0)
    histories = []
    for kernels in ("fast", "reference"):
        model = models.mnist_cnn(seed=0, num_classes=int(labels.max()) + 1)
        loader = DataLoader(images, labels, batch_size=64, seed=0)
        with ops.use_kernels(kernels):
            history = fit(model, loader, optim.Adam(model.parameters(), lr=3e-3), epochs=2,
                          val_loader=DataLoader(images[:64], labels[:64], batch_size=64),
                          verbose=False)  # fmt: skip
        histories.append(history)
    fast, ref = (h[-1] for h in histories)
    assert fast["val_accuracy"] == ref["val_accuracy"]
    # float32 sums taken in another order: the same losses to about 5 digits
    assert fast["loss"] == pytest.approx(ref["loss"], rel=1e-4)


@pytest.mark.parametrize("command", [["demo"], ["train", "--dataset", "shapes"]])
def test_cli_kernels_option_switches_the_kernels(command, monkeypatch):
    from tinygrad_cnn.cli import main, train

    seen = []

    def fake_train_and_report(*args, **kwargs):
        seen.append(ops.get_kernels())
        return 1, None  # 1: nothing was trained, so the demo skips its closing advice

    monkeypatch.setattr(train, "train_and_report", fake_train_and_report)
    monkeypatch.setattr(train, "load_split", lambda *args: (None, None))
    main([*command, "--kernels", "reference"])
    main(command)
    assert seen == ["reference", "fast"]


def test_gradcheck_command_checks_the_reference_kernels(capsys, monkeypatch):
    from tinygrad_cnn.cli import main

    assert main(["gradcheck", "maxpool2d", "avgpool2d", "--kernels", "reference"]) == 0
    # a reference backward that forgets the arg-max mask is caught; the fast one still passes
    monkeypatch.setattr(
        reference.MaxPool2dFn, "backward", lambda self, grad: (np.ones(self.args[0]),)
    )
    assert main(["gradcheck", "maxpool2d", "--kernels", "reference"]) == 1
    assert main(["gradcheck", "maxpool2d"]) == 0
    assert "failing: maxpool2d" in capsys.readouterr().out
