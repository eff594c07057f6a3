"""The course's MNIST CNN: its exact layers, parameter count, Keras initialisation, torch keys."""

import math

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.models import lenet, mnist_cnn


def test_mnist_cnn_has_the_courses_layers_and_42358_parameters():
    model = mnist_cnn(seed=0)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == [
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Dropout",
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Dropout",
        "Flatten",
        "Linear",
        "ReLU",
        "Dropout",
        "Linear",
    ]
    assert [model[i].p for i in (3, 7, 11)] == [0.2, 0.2, 0.5]
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes == {
        "0.weight": (8, 1, 3, 3),
        "0.bias": (8,),
        "4.weight": (16, 8, 3, 3),
        "4.bias": (16,),
        "9.weight": (100, 400),
        "9.bias": (100,),
        "12.weight": (10, 100),
        "12.bias": (10,),
    }
    # the course's formulas: conv m(n*kx*ky + 1), dense n(m + 1)
    assert 8 * (1 * 9 + 1) + 16 * (8 * 9 + 1) + 100 * (400 + 1) + 10 * (100 + 1) == 42358
    assert sum(p.size for p in model.parameters()) == 42358


def test_mnist_cnn_output_shapes_and_summary_formulas():
    model = mnist_cnn(seed=0)
    assert model(Tensor(np.zeros((3, 1, 28, 28), dtype=np.float32))).shape == (3, 10)
    text = str(nn.summary(model, (1, 28, 28)))
    assert "42,358" in text and "100·(400+1) = 40,100" in text and "(None, 16, 5, 5)" in text


def test_mnist_cnn_adapts_to_channels_classes_and_image_size():
    model = mnist_cnn(in_channels=3, num_classes=5, image_size=32, seed=0)
    assert model[9].weight.shape == (100, 16 * 6 * 6)  # 32 -> 30 -> 15 -> 13 -> 6
    assert model(Tensor(np.zeros((2, 3, 32, 32), dtype=np.float32))).shape == (2, 5)
    assert model.config == {
        "name": "mnist-cnn",
        "kwargs": {"in_channels": 3, "num_classes": 5, "image_size": 32},
    }
    with pytest.raises(ValueError, match="mnist_cnn: image_size 8 is too small"):
        mnist_cnn(image_size=8)


def test_mnist_cnn_is_initialised_as_keras_does():
    """Glorot-uniform weights in +-sqrt(6 / (fan_in + fan_out)), zero biases."""
    model = mnist_cnn(seed=0)
    fans = {
        "0.weight": (9, 72),
        "4.weight": (72, 144),
        "9.weight": (400, 100),
        "12.weight": (100, 10),
    }
    params = dict(model.named_parameters())
    for name, (fan_in, fan_out) in fans.items():
        w = params[name].data
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert w.dtype == np.float32
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.8 * bound  # uses the whole range, not PyTorch's 1/sqrt(fan_in)
        if w.size > 1000:  # U(-a, a) has variance a^2 / 3
            np.testing.assert_allclose(w.var(), bound**2 / 3, rtol=0.1)
        assert not params[name.replace("weight", "bias")].data.any()


def test_mnist_cnn_seed_makes_it_reproducible():
    first, second, other = mnist_cnn(seed=3), mnist_cnn(seed=3), mnist_cnn(seed=4)
    for a, b in zip(first.parameters(), second.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(first[0].weight.data, other[0].weight.data)


def test_dropout_is_active_in_training_and_off_in_eval():
    model = mnist_cnn(seed=0)
    x = Tensor(np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32))
    model.eval()
    np.testing.assert_array_equal(model(x).data, model(x).data)
    model.train()
    assert not np.array_equal(model(x).data, model(x).data)


def test_lenet_variant():
    model = lenet(seed=0)
    assert sum(p.size for p in model.parameters()) == 421642
    assert model(Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))).shape == (2, 10)
    assert model.config["name"] == "lenet"


def test_state_dict_keys_are_those_of_the_same_torch_sequential():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    reference = tnn.Sequential(
        tnn.Conv2d(1, 8, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Conv2d(8, 16, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Flatten(), tnn.Linear(400, 100), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(100, 10),
    )  # fmt: skip
    ours = mnist_cnn(seed=0).state_dict()
    assert list(ours) == list(reference.state_dict())
    assert all(ours[k].shape == tuple(v.shape) for k, v in reference.state_dict().items())
