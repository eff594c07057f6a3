"""Tests for models.UNet: shapes for both paddings, the paper's 572 -> 388, parameter counts,
a float64 gradcheck through the crop and concat, torch equality, and learning on shapes."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, nn, no_grad, ops
from tinygrad_cnn.models import UNet
from tinygrad_cnn.models.unet import center_crop


def zeros(*shape):
    return Tensor(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize(
    "depth, base, up",
    [(1, 2, "transpose"), (2, 3, "nearest"), (3, 2, "transpose"), (4, 1, "nearest")],
)
def test_same_padding_keeps_the_size(depth, base, up):
    model = UNet(in_channels=3, num_classes=5, base=base, depth=depth, up=up)
    side = 2**depth * 3
    with no_grad():
        out = model(zeros(2, 3, side, 2 * side))
    assert out.shape == (2, 5, side, 2 * side)


@pytest.mark.parametrize(
    "depth, side, expected", [(1, 20, 4), (2, 44, 4), (2, 60, 20), (3, 100, 12)]
)
def test_valid_padding_shrinks_as_the_paper(depth, side, expected):
    model = UNet(base=2, depth=depth, padding="valid", batchnorm=False)
    assert model.output_size(side) == expected
    assert (side, expected) in model.valid_sizes(up_to=side)
    with no_grad():
        assert model(zeros(1, 1, side, side)).shape == (1, 1, expected, expected)


def test_paper_572_gives_388():
    # the paper's shapes with one channel per level: shapes do not depend on the width
    model = UNet(in_channels=1, num_classes=2, base=1, depth=4, padding="valid", batchnorm=False)
    with no_grad():
        assert model(zeros(1, 1, 572, 572)).shape == (1, 2, 388, 388)


def test_sizes_that_do_not_fit_name_the_ones_that_do():
    with pytest.raises(ValueError, match=r"multiples of 2\^4 = 16; got 50 \(try 48 or 64\)"):
        UNet(base=2)(zeros(1, 1, 50, 64))
    with pytest.raises(
        ValueError,
        match=r"padding='valid' and depth=4, an input side of 570 "
        r"does not fit.*572 -> 388",
    ):
        UNet(base=1, padding="valid").output_size(570)
    with pytest.raises(ValueError, match=r"UNet: input must be \(N, 1, H, W\), got \(1, 3, 16"):
        UNet(base=2, depth=1)(zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="UNet: padding must be 'same' or 'valid'"):
        UNet(padding="full")
    with pytest.raises(ValueError, match="UNet: up must be 'transpose' or 'nearest'"):
        UNet(up="bilinear")
    with pytest.raises(ValueError, match="UNet: depth must be a positive int, got 0"):
        UNet(depth=0)


def count(model) -> int:
    return sum(p.size for p in model.parameters())


def test_parameter_counts():
    assert count(UNet()) == 1_943_761  # base 16, depth 4, BatchNorm
    assert count(UNet(depth=3)) == 483_153
    # the paper's network (2 output classes): 31,030,658 parameters
    paper = UNet(1, 2, base=64, depth=4, padding="valid", batchnorm=False)
    assert count(paper) == 31_030_658


def torch_unet(torch, in_channels, num_classes, base, depth, padding, batchnorm, up):
    """The same network in torch, with the same module names (so state_dicts load across)."""
    tnn = torch.nn

    def double_conv(c_in, c_out):
        layers = []
        for c in (c_in, c_out):
            layers.append(tnn.Conv2d(c, c_out, 3, padding=padding))
            if batchnorm:
                layers.append(tnn.BatchNorm2d(c_out))
            layers.append(tnn.ReLU())
        return tnn.Sequential(*layers)

    def up_conv(c_in, c_out):
        if up == "transpose":
            return tnn.ConvTranspose2d(c_in, c_out, 2, stride=2)
        return tnn.Sequential(tnn.Upsample(scale_factor=2), tnn.Conv2d(c_in, c_out, 1))

    widths = [base * 2**level for level in range(depth + 1)]

    class TorchUNet(tnn.Module):
        def __init__(self):
            super().__init__()
            ins = [in_channels] + widths[:-2]
            self.encoder = tnn.ModuleList([double_conv(a, b) for a, b in zip(ins, widths[:-1])])
            self.pool = tnn.MaxPool2d(2)
            self.bottleneck = double_conv(widths[-2], widths[-1])
            levels = list(reversed(range(depth)))
            self.ups = tnn.ModuleList([up_conv(widths[k + 1], widths[k]) for k in levels])
            self.decoder = tnn.ModuleList([double_conv(2 * widths[k], widths[k]) for k in levels])
            self.head = tnn.Conv2d(base, num_classes, 1)

        def forward(self, x):
            skips = []
            for block in self.encoder:
                x = block(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottleneck(x)
            for up_layer, block, skip in zip(self.ups, self.decoder, reversed(skips)):
                x = up_layer(x)
                top = (skip.shape[2] - x.shape[2]) // 2
                left = (skip.shape[3] - x.shape[3]) // 2
                skip = skip[:, :, top : top + x.shape[2], left : left + x.shape[3]]
                x = block(torch.cat([skip, x], dim=1))
            return self.head(x)

    return TorchUNet()


@pytest.mark.parametrize("config", [
    dict(base=64, depth=4, padding="valid", batchnorm=False, up="transpose"),
    dict(base=16, depth=4, padding="same", batchnorm=True, up="transpose"),
    dict(base=16, depth=3, padding="same", batchnorm=True, up="nearest"),
])  # fmt: skip
def test_parameter_count_equals_torch(config):
    torch = pytest.importorskip("torch")
    ours = UNet(1, 2, **config)
    with torch.device("meta"):  # shapes only: no memory, no initialisation of 31M numbers
        theirs = torch_unet(torch, 1, 2, **config)
    assert count(ours) == sum(p.numel() for p in theirs.parameters())


@pytest.mark.parametrize(
    "padding, batchnorm, up", [("valid", True, "transpose"), ("same", False, "nearest")]
)
def test_forward_and_backward_equal_torch(padding, batchnorm, up):
    torch = pytest.importorskip("torch")
    config = dict(base=2, depth=2, padding=padding, batchnorm=batchnorm, up=up)
    nn.manual_seed(0)
    ours = UNet(2, 3, **config).double()
    theirs = torch_unet(torch, 2, 3, **config).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(0)
    side = 44 if padding == "valid" else 12
    x = rng.standard_normal((2, 2, side, side))
    ours_x, theirs_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(ours_x), theirs(theirs_x)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-9, atol=1e-10)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours_x.grad, theirs_x.grad.numpy(), rtol=1e-8, atol=1e-10)
    torch_grads = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(
            parameter.grad, torch_grads[name].grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name
        )
    if batchnorm:  # the running statistics moved the same way
        for name, buffer in ours.named_buffers():
            np.testing.assert_allclose(buffer, theirs.state_dict()[name].numpy(), rtol=1e-10)


def test_center_crop_gradcheck():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 7, 6)), requires_grad=True)
    assert gradcheck(lambda x: center_crop(x, 4, 3), [x])


def test_gradcheck_through_tiny_valid_unet():
    """float64 gradcheck through BatchNorm, the skips' center crop and the concat.

    gradcheck does two forwards per checked element, so it checks a 3x3 patch of the input
    (placed into a fixed image with `pad`) and a few small parameters, not all of them.
    """
    nn.manual_seed(1)
    model = UNet(1, 2, base=2, depth=2, padding="valid", batchnorm=True).double()
    rng = np.random.default_rng(1)
    image = Tensor(rng.standard_normal((2, 1, 44, 44)))
    patch = Tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)

    def with_patch(patch):  # the patch lands at rows/cols 20..22, inside the cropped region
        return model(image + ops.pad(patch, ((0, 0), (0, 0), (20, 21), (20, 21))))

    assert gradcheck(with_patch, [patch])

    # (conv biases before BatchNorm have zero gradient, so weights and BN parameters are checked)
    checked = [
        (model.encoder[0][0], "weight"),  # the first 3x3 conv: 18 numbers
        (model.ups[1], "weight"),  # the last up-convolution, whose output is concatenated
        (model.decoder[1][1], "weight"),  # a BatchNorm right after a concat and a conv
        (model.head, "weight"),
        (model.head, "bias"),
    ]
    for layer, name in checked:
        original = getattr(layer, name)

        def with_parameter(value, layer=layer, name=name):
            setattr(layer, name, value)
            return model(image)

        try:
            copy = Tensor(original.data.copy(), requires_grad=True)
            assert gradcheck(with_parameter, [copy])
        finally:
            setattr(layer, name, original)


def test_a_few_training_steps_lower_the_loss():
    from tinygrad_cnn import optim
    from tinygrad_cnn.data.shapes import make_shapes_seg

    images, masks = make_shapes_seg(8, size=32, seed=0, objects=(1, 2))
    x = Tensor((images[:, None] / 255.0).astype(np.float32))
    model = UNet(base=4, depth=2, seed=0)
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = ops.segmentation_loss(model(x), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_checkpoint_round_trip_and_predict_command(tmp_path):
    from tinygrad_cnn import checkpoint
    from tinygrad_cnn.cli import main

    model = UNet(base=2, depth=2, seed=0)
    model(zeros(2, 1, 16, 16))  # one training-mode call moves the BatchNorm statistics
    path = checkpoint.save(model, tmp_path / "model.safetensors", {"dataset": "shapes-seg"})
    loaded = checkpoint.load(path)
    assert isinstance(loaded, UNet) and loaded.config == model.config
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    out = tmp_path / "grid.png"
    assert main(["predict", str(path), "--count", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    classifier = checkpoint.save(checkpoint.build_model("lenet"), tmp_path / "cnn.safetensors",
                                 {"dataset": "mnist"})  # fmt: skip
    assert main(["predict", str(classifier)]) == 2  # a one-line error, not a traceback


def test_summary_lists_every_layer_with_its_formula():
    model = UNet(base=16, depth=3)
    table = nn.summary(model, (1, 64, 64))
    assert table.trainable_params == 483_153
    layers = [m for _, m in model.named_modules() if not list(m.children())]
    assert len(table.rows) == len(layers)  # every leaf layer, pooling included
