"""nn: the module system, every layer against PyTorch and the gradient check, modes,
state_dict, initialisation and the errors a user hits."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from tests.helpers import distinct, random_grad
from tinygrad_cnn import Tensor, gradcheck, manual_seed, nn, ops, tensor

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def owner_of(module: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    """The module holding the parameter called `dotted`, and its attribute name."""
    *path, attr = dotted.split(".")
    for name in path:
        module = getattr(module, name)
    return module, attr


def gradcheck_module(module: nn.Module, x: np.ndarray) -> bool:
    """gradcheck with respect to the input AND every parameter of `module` (float64).

    gradcheck nudges its own float64 copies of the inputs, so the module's parameters are
    swapped for those copies while it runs, then put back.
    """
    module.double()
    named = list(module.named_parameters())

    def run(x: Tensor, *params: Tensor) -> Tensor:
        for (name, _), p in zip(named, params):
            owner, attr = owner_of(module, name)
            setattr(owner, attr, p)
        return module(x)

    try:
        return gradcheck(run, [Tensor(x, requires_grad=True), *[p for _, p in named]])
    finally:
        for name, p in named:
            owner, attr = owner_of(module, name)
            setattr(owner, attr, p)


def mnist_cnn() -> nn.Sequential:
    """The course's CNN: Conv 1->8 3x3, pool, Conv 8->16 3x3, pool, Flatten, Dense 100, 10."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 100), nn.ReLU(), nn.Linear(100, 10),
    )  # fmt: skip


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class Net(nn.Module):
    """Nested modules, a ModuleList, a Sequential, a bare Parameter and a shared layer."""

    def __init__(self):
        super().__init__()
        self.block = Block()
        self.heads = nn.ModuleList([nn.Linear(3, 2), nn.Linear(3, 2)])
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.tail = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
        self.shared = self.tail[0]  # the same layer under a second name

    def forward(self, x):
        h = self.block(x).mean(axis=(2, 3))  # (N, 3)
        h = self.heads[0](h) + self.heads[1](h)
        return self.shared(self.tail(h)) * self.scale


# --------------------------------------------------------------------------------------------
# the module system
# --------------------------------------------------------------------------------------------


def test_named_parameters_unique_complete_and_in_assignment_order():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == [
        "scale",
        "block.conv.weight", "block.conv.bias", "block.bn.weight", "block.bn.bias",
        "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias",
        "tail.0.weight", "tail.0.bias",
    ]  # fmt: skip
    params = list(net.parameters())
    assert len({id(p) for p in params}) == len(params) == len(names)
    expected = 2 * 3 * 9 + 3 + 3 + 3 + 2 * (3 * 2 + 2) + 1 + (2 * 2 + 2)
    assert sum(p.size for p in params) == expected


def test_named_modules_children_and_root():
    net = Net()
    names = [name for name, _ in net.named_modules()]
    assert names == [
        "",
        "block",
        "block.conv",
        "block.bn",
        "heads",
        "heads.0",
        "heads.1",
        "tail",
        "tail.0",
        "tail.1",
    ]  # the shared layer appears once
    assert [name for name, _ in net.named_children()] == ["block", "heads", "tail", "shared"]
    assert next(net.modules()) is net


def test_state_dict_keys_follow_pytorch_including_buffers():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    ref = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 3)
    )
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert ours.state_dict()["1.num_batches_tracked"].dtype == np.int64
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]


def test_call_runs_forward_inside_module_scope():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(tensor.thread_state.scope)
            return x * 2

    probe = Probe()
    outer = nn.Sequential(probe)
    out = outer(Tensor(np.ones(2)))
    assert seen == [(outer, probe)]
    assert out._scope == (outer, probe)
    assert tensor.thread_state.scope == ()


def test_train_eval_propagate_and_return_self():
    net = Net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())


def test_zero_grad_sets_none():
    layer = nn.Linear(3, 2)
    layer(Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    assert layer.weight.grad is not None
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_sequential_indexing_len_iteration_and_repr():
    model = mnist_cnn()
    assert len(model) == 10 and isinstance(model[-1], nn.Linear)
    assert [type(m).__name__ for m in model][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    head = model[7:]
    assert isinstance(head, nn.Sequential) and len(head) == 3 and head[0] is model[7]
    text = repr(Net())
    assert text.startswith("Net(\n  (block): Block(\n    (conv): Conv2d(2, 3, kernel_size=(3, 3)")
    assert "    (bn): BatchNorm2d(3, eps=1e-05, momentum=0.1)\n  )\n" in text
    assert "(tail): Sequential(\n    (0): Linear(in_features=2, out_features=2, bias=True)" in text


def test_parameter_counts_follow_the_formulas():
    assert sum(p.size for p in nn.Linear(784, 1000).parameters()) == 785_000  # n(m+1)
    assert sum(p.size for p in nn.Conv2d(1, 8, 3).parameters()) == 8 * (1 * 3 * 3 + 1)
    assert sum(p.size for p in nn.Conv2d(8, 16, 3, groups=4).parameters()) == 16 * (2 * 9 + 1)
    assert sum(p.size for p in nn.ConvTranspose2d(16, 8, 2).parameters()) == 8 * (16 * 4 + 1)
    assert sum(p.size for p in mnist_cnn().parameters()) == 42_358
    assert nn.Linear(3, 2, bias=False).bias is None
    assert nn.Conv2d(3, 2, 1, bias=False).bias is None


# --------------------------------------------------------------------------------------------
# every layer, forward and backward, against PyTorch with the same weights
# --------------------------------------------------------------------------------------------

LAYERS = {
    # name: (our layer, the torch layer, input shape)
    "linear": (lambda: nn.Linear(5, 3), lambda t: t.nn.Linear(5, 3), (4, 5)),
    "linear_3d_nobias": (lambda: nn.Linear(5, 3, bias=False),
                         lambda t: t.nn.Linear(5, 3, bias=False), (2, 4, 5)),
    "conv": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1),
             lambda t: t.nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 7)),
    "conv_groups_dilation": (lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2,
                                               bias=False),
                             lambda t: t.nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2,
                                                   bias=False), (2, 4, 6, 6)),
    "conv_same": (lambda: nn.Conv2d(2, 3, (3, 5), padding="same"),
                  lambda t: t.nn.Conv2d(2, 3, (3, 5), padding="same"), (1, 2, 6, 7)),
    "conv_transpose": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                  output_padding=1),
                       lambda t: t.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                      output_padding=1), (2, 3, 4, 4)),
    "maxpool": (lambda: nn.MaxPool2d(2), lambda t: t.nn.MaxPool2d(2), (2, 3, 6, 6)),
    "maxpool_stride_pad": (lambda: nn.MaxPool2d(3, stride=2, padding=1),
                           lambda t: t.nn.MaxPool2d(3, stride=2, padding=1), (1, 2, 7, 7)),
    "avgpool": (lambda: nn.AvgPool2d(2), lambda t: t.nn.AvgPool2d(2), (2, 3, 6, 6)),
    "upsample": (lambda: nn.Upsample(scale_factor=2),
                 lambda t: t.nn.Upsample(scale_factor=2, mode="nearest"), (1, 2, 3, 4)),
    "relu": (nn.ReLU, lambda t: t.nn.ReLU(), (3, 4)),
    "sigmoid": (nn.Sigmoid, lambda t: t.nn.Sigmoid(), (3, 4)),
    "tanh": (nn.Tanh, lambda t: t.nn.Tanh(), (3, 4)),
    "flatten": (nn.Flatten, lambda t: t.nn.Flatten(), (2, 3, 2, 2)),
    "identity": (nn.Identity, lambda t: t.nn.Identity(), (2, 3)),
    "batchnorm_train": (lambda: nn.BatchNorm2d(3), lambda t: t.nn.BatchNorm2d(3), (4, 3, 3, 2)),
    "mnist_cnn": (mnist_cnn, lambda t: t.nn.Sequential(
        t.nn.Conv2d(1, 8, 3), t.nn.ReLU(), t.nn.MaxPool2d(2),
        t.nn.Conv2d(8, 16, 3), t.nn.ReLU(), t.nn.MaxPool2d(2),
        t.nn.Flatten(), t.nn.Linear(400, 100), t.nn.ReLU(), t.nn.Linear(100, 10)), (2, 1, 28, 28)),
}  # fmt: skip


def _randomise_batchnorm(module: nn.Module, rng: np.random.Generator) -> None:
    """Give BatchNorm non-trivial scale, shift and running statistics."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.weight.shape)
            m.bias.data[...] = rng.standard_normal(m.bias.shape)
            m.running_mean[...] = rng.standard_normal(m.running_mean.shape)
            m.running_var[...] = rng.uniform(0.5, 2.0, m.running_var.shape)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("case", sorted(LAYERS))
def test_layer_matches_torch(case, mode):
    torch = pytest.importorskip("torch")
    make_ours, make_ref, shape = LAYERS[case]
    rng = np.random.default_rng(0)
    ours = make_ours().double()
    _randomise_batchnorm(ours, rng)
    ref = make_ref(torch).double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    ours.train(mode == "train")
    ref.train(mode == "train")

    x = distinct(shape, rng)
    x_ours, x_ref = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(x_ours), ref(x_ref)
    g = random_grad(expected.shape, rng)
    out.backward(g)
    expected.backward(torch.from_numpy(g))

    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x_ours.grad, x_ref.grad.numpy(), rtol=1e-9, atol=1e-11)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad, ref_params[name].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name
        )
    ref_state = ref.state_dict()
    for name, value in ours.state_dict().items():  # running statistics moved alike
        np.testing.assert_allclose(value, ref_state[name].numpy(), rtol=1e-10, err_msg=name)


def test_float32_layers_stay_float32():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    x = Tensor(np.ones((2, 1, 4, 4), dtype=np.float32))
    out = model(x)
    out.sum().backward()
    assert out.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    assert all(b.dtype in (np.float32, np.int64) for b in model.buffers())


# --------------------------------------------------------------------------------------------
# float64 gradient checks through layers (input and every parameter)
# --------------------------------------------------------------------------------------------

GRADCHECK = {
    "linear": (lambda: nn.Linear(4, 3), (2, 4)),
    "conv": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 5, 5)),
    "conv_same_groups": (lambda: nn.Conv2d(2, 4, 3, padding="same", groups=2), (1, 2, 4, 4)),
    "conv_transpose": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), (1, 2, 3, 3)),
    "batchnorm": (lambda: nn.BatchNorm2d(3), (3, 3, 2, 2)),
    "block": (Block, (2, 2, 3, 3)),
    "small_cnn": (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2),
                                        nn.Flatten(), nn.Linear(8, 3), nn.Sigmoid()),
                  (2, 1, 6, 6)),
}  # fmt: skip


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("case", sorted(GRADCHECK))
def test_layer_gradcheck(case, mode):
    make, shape = GRADCHECK[case]
    rng = np.random.default_rng(1)
    module = make().train(mode == "train")
    _randomise_batchnorm(module, rng)
    buffers = {k: v for k, v in module.state_dict().items() if "running" in k}
    assert gradcheck_module(module, distinct(shape, rng))
    if mode == "eval":  # eval mode never touches the running statistics
        for key, value in buffers.items():
            np.testing.assert_array_equal(module.state_dict()[key], value)


# --------------------------------------------------------------------------------------------
# train / eval behaviour: BatchNorm and Dropout
# --------------------------------------------------------------------------------------------


def test_batchnorm_eval_output_of_a_sample_ignores_the_rest_of_the_batch():
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU()).double()
    for _ in range(3):  # give the running statistics some history
        model(Tensor(rng.standard_normal((4, 2, 5, 5))))
    batch = rng.standard_normal((6, 2, 5, 5))
    other = batch.copy()
    other[1:] = rng.standard_normal((5, 2, 5, 5)) * 10
    model.eval()
    np.testing.assert_allclose(model(Tensor(batch)).data[0], model(Tensor(other)).data[0])
    np.testing.assert_allclose(model(Tensor(batch[:1])).data[0], model(Tensor(batch)).data[0])
    model.train()
    assert not np.allclose(model(Tensor(batch)).data[0], model(Tensor(other)).data[0])


def test_batchnorm_running_statistics_as_pytorch():
    bn = nn.BatchNorm2d(2, momentum=0.5).double()
    x = np.arange(16.0).reshape(2, 2, 2, 2)
    bn(Tensor(x))
    batch_mean = x.mean(axis=(0, 2, 3))
    unbiased_var = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.5 * batch_mean)
    np.testing.assert_allclose(bn.running_var, 0.5 * 1.0 + 0.5 * unbiased_var)
    assert int(bn.num_batches_tracked) == 1
    cumulative = nn.BatchNorm2d(2, momentum=None).double()
    cumulative(Tensor(x))
    cumulative(Tensor(x + 2))
    np.testing.assert_allclose(cumulative.running_mean, batch_mean + 1)  # plain average


def test_dropout_train_mask_scale_and_fresh_masks():
    drop = nn.Dropout(0.25)
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    out = drop(x)
    values = set(np.unique(out.data).tolist())
    assert values == {0.0, 1 / 0.75}
    assert abs((out.data == 0).mean() - 0.25) < 0.02
    g = random_grad(out.shape, np.random.default_rng(3))
    out.backward(g)
    np.testing.assert_allclose(x.grad, g * out.data)  # mask / (1-p), the same mask
    assert not np.array_equal(drop(x).data, out.data)  # a fresh mask each call
    assert drop(x).dtype == np.float64


def test_dropout_eval_p0_p1_and_bad_p():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert nn.Dropout(0.5).eval()(x) is x
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).data, np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"Dropout: p must be a finite number in \[0, 1\], got 1.5"
    ):
        nn.Dropout(1.5)


def test_manual_seed_makes_init_and_dropout_reproducible():
    def draw():
        manual_seed(123)
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.5), nn.Flatten(), nn.Linear(8, 2))
        out = model(Tensor(np.ones((1, 1, 4, 4), dtype=np.float32)))
        return model.state_dict(), out.data

    (state_a, out_a), (state_b, out_b) = draw(), draw()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key])
    np.testing.assert_array_equal(out_a, out_b)


# --------------------------------------------------------------------------------------------
# initialisation
# --------------------------------------------------------------------------------------------


def test_default_init_bounds_as_pytorch():
    manual_seed(0)
    for layer, fan_in in [
        (nn.Linear(400, 100), 400),
        (nn.Conv2d(8, 16, 3), 72),
        (nn.Conv2d(8, 16, 3, groups=4), 18),
        (nn.ConvTranspose2d(16, 8, 2), 8 * 4),
    ]:  # torch uses axis 1 here
        bound = 1 / math.sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            assert np.abs(p.data).max() <= bound
            assert np.abs(p.data).max() > 0.9 * bound  # uses the whole range
            assert p.dtype == np.float32
        # a uniform distribution on [-b, b] has standard deviation b / sqrt(3)
        assert abs(layer.weight.data.std() - bound / math.sqrt(3)) < 0.15 * bound


def test_glorot_and_zeros_init():
    layer = nn.Conv2d(8, 16, 3)
    nn.init.glorot_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    bound = math.sqrt(6 / (8 * 9 + 16 * 9))
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound
    assert not layer.bias.data.any()
    assert nn.init.xavier_uniform_ is nn.init.glorot_uniform_


# --------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# --------------------------------------------------------------------------------------------


def test_state_dict_round_trip_with_running_stats_and_copy_semantics():
    rng = np.random.default_rng(4)
    source = Net()
    source(Tensor(rng.standard_normal((3, 2, 4, 4)).astype(np.float32)))  # moves running stats
    saved = source.state_dict()
    assert int(saved["block.bn.num_batches_tracked"]) == 1
    target = Net()
    weight_array = target.block.conv.weight.data
    target.load_state_dict(saved)
    assert target.block.conv.weight.data is weight_array  # copied in place
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, saved[key])
    # train the source on: neither the saved dict nor the target may change
    source.block.conv.weight.data += 1
    source.block.bn.running_mean += 1
    source(Tensor(rng.standard_normal((3, 2, 4, 4)).astype(np.float32)))
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, saved[key])
    saved["block.conv.weight"] += 5  # nor may editing the dict change the target
    assert not np.array_equal(target.block.conv.weight.data, saved["block.conv.weight"])


def test_state_dict_loads_into_torch_and_back():
    torch = pytest.importorskip("torch")
    ours = mnist_cnn().double()
    ref = LAYERS["mnist_cnn"][1](torch).double()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((2, 1, 28, 28))
    expected = ref(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-10)
    fresh = mnist_cnn().double()
    fresh.load_state_dict(ref.state_dict())  # torch tensors are accepted too
    np.testing.assert_allclose(fresh(Tensor(x)).data, expected, rtol=1e-10)


def test_load_state_dict_errors_name_keys_and_shapes_and_change_nothing():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm2d(3))
    before = model.state_dict()
    good = {k: v + 1 for k, v in before.items()}

    bad_shape = dict(good, **{"0.weight": np.zeros((3, 5))})
    with pytest.raises(
        ValueError,
        match=r"'0.weight' has shape \(3, 5\) in the state_dict but "
        r"\(3, 4\) in the model",
    ):
        model.load_state_dict(bad_shape)
    missing = {k: v for k, v in good.items() if k != "1.running_var"}
    with pytest.raises(ValueError, match=r"missing keys \['1.running_var'\]"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['2.weight'\]"):
        model.load_state_dict(dict(good, **{"2.weight": np.zeros(3)}))
    for key, value in model.state_dict().items():  # every failed load left everything alone
        np.testing.assert_array_equal(value, before[key])

    missing_keys, unexpected = model.load_state_dict(dict(missing, extra=np.zeros(1)), strict=False)
    assert missing_keys == ["1.running_var"] and unexpected == ["extra"]
    np.testing.assert_array_equal(model[0].weight.data, good["0.weight"])


# --------------------------------------------------------------------------------------------
# the errors a user will hit
# --------------------------------------------------------------------------------------------


def test_layer_input_errors_name_the_layer_and_shapes():
    with pytest.raises(
        ValueError,
        match=r"^Linear\(400 -> 100\) expected input \(\*, 400\), "
        r"got \(32, 576\)$",
    ):
        nn.Linear(400, 100)(Tensor(np.zeros((32, 576), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"^Conv2d\(8 -> 16\) expected 8 input channels, got 3"):
        nn.Conv2d(8, 16, 3)(Tensor(np.zeros((2, 3, 9, 9), dtype=np.float32)))
    with pytest.raises(
        ValueError,
        match=r"Conv2d\(1 -> 8\) expected a 4-D input \(N, C, H, W\), "
        r"got \(28, 28\)",
    ):
        nn.Conv2d(1, 8, 3)(Tensor(np.zeros((28, 28), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(4 -> 2\) expected 4 input channels"):
        nn.ConvTranspose2d(4, 2, 2)(Tensor(np.zeros((1, 2, 3, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) expected 3 channels, got 4"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((2, 4, 3, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2\) expected a 4-D input"):
        nn.MaxPool2d(2)(Tensor(np.zeros((4, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="batch_norm2d: training needs more than 1 value"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((1, 3, 1, 1), dtype=np.float32)))


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="Linear: in_features must be a positive int, got 0"):
        nn.Linear(0, 3)
    with pytest.raises(
        ValueError, match="Conv2d: padding must be an int, a pair, 'valid' or 'same', got 'full'"
    ):
        nn.Conv2d(1, 2, 3, padding="full")
    with pytest.raises(
        ValueError,
        match="Conv2d: in_channels=3 and out_channels=4 must both be divisible by groups=2",
    ):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(TypeError, match="Sequential: item 1 must be a Module, got int"):
        nn.Sequential(nn.ReLU(), 3)


def test_batchnorm_bad_batch_changes_nothing():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError):
        bn(Tensor(np.zeros((1, 3, 1, 1), dtype=np.float32)))
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_var, np.ones(3))


# --------------------------------------------------------------------------------------------
# the fused batch-norm op itself (ops/norm.py)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_op_gradcheck(training):
    rng = np.random.default_rng(6)
    x = Tensor(distinct((3, 2, 3, 2), rng), requires_grad=True)
    w = Tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    mean, var = rng.standard_normal(2), rng.uniform(0.5, 2.0, 2)

    def run(x, w, b):
        return ops.batch_norm2d(x, w, b, mean.copy(), var.copy(), training=training)

    assert gradcheck(run, [x, w, b])


def test_batch_norm2d_op_matches_torch_functional():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    x, w, b = distinct((4, 3, 2, 5), rng), rng.standard_normal(3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    ref = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ref_mean, ref_var = torch.tensor(mean), torch.tensor(var)
    out = ops.batch_norm2d(*ours, mean, var, training=True, momentum=0.3, eps=1e-3)
    expected = F.batch_norm(
        ref[0], ref_mean, ref_var, ref[1], ref[2], training=True, momentum=0.3, eps=1e-3
    )
    g = random_grad(out.shape, rng)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    for t, r in zip(ours, ref):
        np.testing.assert_allclose(t.grad, r.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(mean, ref_mean.numpy(), rtol=1e-12)  # updated in place alike
    np.testing.assert_allclose(var, ref_var.numpy(), rtol=1e-12)


def test_batch_norm2d_op_errors():
    x = Tensor(np.zeros((2, 3, 4, 4)))
    one = Tensor(np.ones(3))
    with pytest.raises(
        ValueError,
        match=r"batch_norm2d: weight must have shape \(3,\) for "
        r"input \(2, 3, 4, 4\), got \(2,\)",
    ):
        ops.batch_norm2d(x, Tensor(np.ones(2)), one)
    with pytest.raises(ValueError, match="batch_norm2d: eval mode .* needs running_mean"):
        ops.batch_norm2d(x, one, one, training=False)
    with pytest.raises(ValueError, match=r"batch_norm2d: expected an input \(N, C, H, W\)"):
        ops.batch_norm2d(Tensor(np.zeros((2, 3))), one, one)


# --------------------------------------------------------------------------------------------
# layer arguments are checked when the layer is built, naming the argument
# --------------------------------------------------------------------------------------------

BAD_LAYER_ARGUMENTS = [  # (layer, args, kwargs, error, what the message must say)
    (nn.Conv2d, (1, 8, 3.0), {}, TypeError, "Conv2d: kernel_size must be an int or a pair"),
    (nn.Conv2d, (1, 8, -3), {}, ValueError, "Conv2d: kernel_size must be positive, got -3"),
    (nn.Conv2d, (1, 8, (3, 0)), {}, ValueError, "Conv2d: kernel_size must be positive"),
    (nn.Conv2d, (1, 8, (3, 3, 3)), {}, TypeError, "Conv2d: kernel_size must be an int or a pair"),
    (nn.Conv2d, (1, 8, 3), {"stride": 0}, ValueError, "Conv2d: stride must be positive, got 0"),
    (nn.Conv2d, (1, 8, 3), {"padding": -1}, ValueError, "Conv2d: padding must be non-negative"),
    (nn.Conv2d, (1, 8, 3), {"padding": "smae"}, ValueError, "Conv2d: padding must be an int, a"),
    (nn.Conv2d, (1, 8, 3), {"dilation": 0}, ValueError, "Conv2d: dilation must be positive"),
    (nn.Conv2d, (1, 8, 3), {"groups": 0}, ValueError, "Conv2d: groups must be a positive int"),
    (nn.Conv2d, (1, 8, 3), {"bias": "False"}, TypeError, "Conv2d: bias must be True or False"),
    (nn.Conv2d, (1.0, 8, 3), {}, TypeError, "Conv2d: in_channels must be a positive int"),
    (nn.Conv2d, ("1", 8, 3), {}, TypeError, "Conv2d: in_channels must be a positive int"),
    (nn.Conv2d, (1, 0, 3), {}, ValueError, "Conv2d: out_channels must be a positive int"),
    (nn.ConvTranspose2d, (4, 2, 2.5), {}, TypeError, "ConvTranspose2d: kernel_size must be"),
    (nn.ConvTranspose2d, (4, 2, 2), {"stride": 0}, ValueError, "ConvTranspose2d: stride must"),
    (nn.ConvTranspose2d, (4, 2, 2), {"padding": -1}, ValueError, "ConvTranspose2d: padding"),
    (nn.ConvTranspose2d, (4, 2, 2), {"padding": "same"}, ValueError, "ConvTranspose2d: padding"),
    (nn.ConvTranspose2d, (4, 2, 2), {"output_padding": -1}, ValueError, "output_padding must"),
    (nn.ConvTranspose2d, (4, 2, 2), {"stride": 2, "output_padding": 2}, ValueError,
     r"output_padding \(2, 2\) must be smaller than the stride"),
    (nn.Linear, (4.0, 3), {}, TypeError, "Linear: in_features must be a positive int"),
    (nn.Linear, (4, -3), {}, ValueError, "Linear: out_features must be a positive int"),
    (nn.Linear, (4, 3), {"bias": None}, TypeError, "Linear: bias must be True or False"),
    (nn.BatchNorm2d, (0,), {}, ValueError, "BatchNorm2d: num_features must be a positive int"),
    (nn.BatchNorm2d, (3.0,), {}, TypeError, "BatchNorm2d: num_features must be a positive int"),
    (nn.BatchNorm2d, (3,), {"eps": float("nan")}, ValueError, "BatchNorm2d: eps must be"),
    (nn.BatchNorm2d, (3,), {"eps": 0.0}, ValueError, "BatchNorm2d: eps must be > 0"),
    (nn.BatchNorm2d, (3,), {"momentum": float("nan")}, ValueError, "BatchNorm2d: momentum"),
    (nn.BatchNorm2d, (3,), {"momentum": 1.5}, ValueError, "BatchNorm2d: momentum must be"),
    (nn.BatchNorm2d, (3,), {"momentum": "0.1"}, TypeError, "BatchNorm2d: momentum must be"),
    (nn.MaxPool2d, (0,), {}, ValueError, "MaxPool2d: kernel_size must be positive, got 0"),
    (nn.MaxPool2d, (2.0,), {}, TypeError, "MaxPool2d: kernel_size must be an int or a pair"),
    (nn.MaxPool2d, (2,), {"padding": "smae"}, ValueError,
     "MaxPool2d: padding must be an int, a pair, 'valid' or 'same', got 'smae'"),
    (nn.MaxPool2d, (2,), {"stride": 0}, ValueError, "MaxPool2d: stride must be positive"),
    (nn.MaxPool2d, (2,), {"padding": 2}, ValueError, "MaxPool2d: padding 2 must be at most half"),
    (nn.MaxPool2d, (2,), {"padding": -1}, ValueError, "MaxPool2d: padding must be non-negative"),
    (nn.AvgPool2d, (-2,), {}, ValueError, "AvgPool2d: kernel_size must be positive"),
    (nn.AvgPool2d, (2,), {"stride": "2"}, TypeError, "AvgPool2d: stride must be an int or a"),
    (nn.AvgPool2d, (2,), {"padding": "full"}, ValueError, "AvgPool2d: padding must be an int"),
    (nn.Upsample, (0,), {}, ValueError, "Upsample: scale_factor must be at least 1"),
    (nn.Upsample, (2.0,), {}, TypeError, "Upsample: scale_factor must be an int"),
    (nn.Upsample, (2,), {"mode": "bilinear"}, ValueError, "Upsample: only mode='nearest'"),
    (nn.Dropout, ("0.5",), {}, TypeError, r"Dropout: p must be a number, got '0.5' \(str\)"),
    (nn.Dropout, (1.5,), {}, ValueError, r"Dropout: p must be a finite number in \[0, 1\]"),
    (nn.Dropout, (float("nan"),), {}, ValueError, "Dropout: p must be a finite number"),
    (nn.Dropout, (-0.1,), {}, ValueError, "Dropout: p must be a finite number"),
    (nn.Flatten, (1.0,), {}, TypeError, "Flatten: start_axis must be an int"),
]  # fmt: skip


@pytest.mark.parametrize(
    "layer, args, kwargs, error, message",
    BAD_LAYER_ARGUMENTS,
    ids=[f"{row[0].__name__}{row[1]}{row[2] or ''}" for row in BAD_LAYER_ARGUMENTS],
)
def test_layer_constructor_refuses_bad_argument_naming_it(layer, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        layer(*args, **kwargs)


def test_layer_arguments_accepted_as_the_ops_accept_them():
    assert nn.Conv2d(1, 8, np.int64(3), stride=(1, 2), padding=(0, 1)).kernel_size == (3, 3)
    assert nn.Conv2d(1, 8, [3, 5], padding="same").kernel_size == (3, 5)
    assert nn.MaxPool2d(3, stride=1, padding="same").padding == "same"
    assert nn.MaxPool2d((2, 2), padding=(1, 0)).kernel_size == (2, 2)
    assert nn.BatchNorm2d(3, momentum=None).momentum is None
    assert nn.Dropout(1).p == 1


# --------------------------------------------------------------------------------------------
# every layer takes Python lists (and arrays) like the ops do
# --------------------------------------------------------------------------------------------

LIST_INPUTS = [  # (layer, input as nested lists, output shape)
    (lambda: nn.Linear(4, 3), [[1, 2, 3, 4]], (1, 3)),
    (lambda: nn.Conv2d(1, 2, 2), [[[[1, 2], [3, 4]]]], (1, 2, 1, 1)),
    (lambda: nn.ConvTranspose2d(1, 2, 2), [[[[1, 2], [3, 4]]]], (1, 2, 3, 3)),
    (lambda: nn.BatchNorm2d(1), [[[[1, 2], [3, 4]]]], (1, 1, 2, 2)),
    (lambda: nn.MaxPool2d(2), [[[[1, 2], [3, 4]]]], (1, 1, 1, 1)),
    (lambda: nn.AvgPool2d(2), [[[[1, 2], [3, 4]]]], (1, 1, 1, 1)),
    (lambda: nn.Upsample(2), [[[[1, 2]]]], (1, 1, 2, 4)),
    (lambda: nn.ReLU(), [[-1, 2]], (1, 2)),
    (lambda: nn.Sigmoid(), [[-1, 2]], (1, 2)),
    (lambda: nn.Tanh(), [[-1, 2]], (1, 2)),
    (lambda: nn.Identity(), [[-1, 2]], (1, 2)),
    (lambda: nn.Flatten(), [[[1, 2], [3, 4]]], (1, 4)),
    (lambda: nn.Dropout(0.5), [[1.0, 2.0]], (1, 2)),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), [[[1, 2], [3, 4]]], (1, 2)),
]


@pytest.mark.parametrize("make, x, shape", LIST_INPUTS, ids=[str(s) for _, _, s in LIST_INPUTS])
def test_every_layer_takes_python_lists(make, x, shape):
    layer = make()
    out = layer(x)
    assert isinstance(out, Tensor) and out.shape == shape
    expected = layer(Tensor(np.array(x, dtype=np.float32)))
    if not isinstance(layer, nn.Dropout):  # a fresh random mask each call
        np.testing.assert_array_equal(out.data, expected.data)


def test_layer_refuses_input_that_is_not_a_tensor_or_list():
    with pytest.raises(TypeError, match="Linear: expected a Tensor, an array or a number"):
        nn.Linear(4, 3)({"x": 1})


def test_load_state_dict_refuses_a_path_pointing_at_load_weights():
    model = nn.Linear(4, 3)
    before = model.state_dict()
    with pytest.raises(TypeError, match=r"got the path 'model.safetensors', not a state_dict.*"
                       r"checkpoint.load_weights\(model, path\)"):  # fmt: skip
        model.load_state_dict("model.safetensors")
    with pytest.raises(TypeError, match="not a state_dict"):
        model.load_state_dict(pathlib.Path("model.safetensors"))
    with pytest.raises(TypeError, match="expected a dict of arrays .* got list"):
        model.load_state_dict([np.zeros((3, 4)), np.zeros(3)])
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
