"""The course's MNIST CNN, layer for layer, and a slightly larger LeNet-style variant.

    image (1, 28, 28)
      Conv2d(1, 8, 3)    -> (8, 26, 26)     8 filters of 3x3x1:     8*(1*3*3+1)  =     80 params
      ReLU, MaxPool 2    -> (8, 13, 13)
      Dropout 0.2
      Conv2d(8, 16, 3)   -> (16, 11, 11)    16 filters of 3x3x8:   16*(8*3*3+1)  =  1,168
      ReLU, MaxPool 2    -> (16, 5, 5)      (11 // 2 = 5: the last row and column are dropped)
      Dropout 0.2
      Flatten            -> (400,)
      Linear(400, 100)   ReLU, Dropout 0.5                         100*(400+1)   = 40,100
      Linear(100, 10)    -> 10 logits                               10*(100+1)   =  1,010
                                                                          total    = 42,358

The softmax of the course's last layer is folded into `ops.cross_entropy`, which takes logits
(more stable, and the same function). Both builders return an `nn.Sequential`, so the
state_dict keys ('0.weight', '4.weight', '9.weight', '12.weight') are those of the same
`torch.nn.Sequential`, and `model.config` records how to build it again (checkpoints use it).

Read next: `models/unet.py`, then `train.py`.
"""

from __future__ import annotations

from tinygrad_cnn import nn


def _keras_init(model: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, as Keras initialises Conv2D and Dense layers.

    Glorot (Xavier) uniform draws w ~ U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); for a conv
    fan_in = in_channels*kh*kw and fan_out = out_channels*kh*kw. PyTorch's default instead
    draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)) and a
    non-zero bias. On the course's recipe the two end up equally good (98.62% and 98.60% mean
    MNIST test accuracy over seeds, measured in PyTorch; `benchmarks/recipe.py`): Glorot is
    used here because it is what the course's model had.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _flat_size(channels: int, image_size: int, convs: int) -> int:
    """Features left after `convs` blocks of (3x3 valid conv, 2x2 max pool) on a square image."""
    size = image_size
    for _ in range(convs):
        size = (size - 2) // 2
    if size < 1:
        raise ValueError(
            f"mnist_cnn: image_size {image_size} is too small for {convs} blocks of "
            f"3x3 conv + 2x2 pool (needs at least {2 ** (convs + 1) + 2})"
        )
    return channels * size * size


def mnist_cnn(
    in_channels: int = 1, num_classes: int = 10, image_size: int = 28, seed: int | None = None
) -> nn.Sequential:
    """The course's MNIST CNN (42,358 parameters for 1x28x28 inputs and 10 classes).

    Conv2d(1, 8, 3) ReLU MaxPool2 Dropout(0.2), Conv2d(8, 16, 3) ReLU MaxPool2 Dropout(0.2),
    Flatten (400), Linear(400, 100) ReLU Dropout(0.5), Linear(100, 10); the module docstring
    counts each layer's parameters. Initialised as Keras initialises the course's model:
    Glorot-uniform weights and zero biases (the `nn` layers on their own keep PyTorch's
    defaults). Returns logits; the softmax lives in the loss.

    Args:
        in_channels: channels of the input images (1 for grayscale).
        num_classes: number of logits out.
        image_size: side of the square input images; sets the Flatten size (16 * 5 * 5 for 28).
        seed: when given, `nn.manual_seed(seed)` first, so the weights (and later Dropout
            masks) are reproducible; None keeps nn's generator as it is.
    Shapes:
        input (N, in_channels, image_size, image_size) -> logits (N, num_classes).
    Raises:
        ValueError: an image too small for the two conv + pool blocks.
    Example:
        >>> model = mnist_cnn(seed=0)
        >>> sum(p.size for p in model.parameters())
        42358
        >>> model(Tensor(np.zeros((2, 1, 28, 28), dtype=np.float32))).shape
        (2, 10)
    """
    flat = _flat_size(16, image_size, convs=2)
    if seed is not None:
        nn.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(in_channels, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2),
        nn.Flatten(),
        nn.Linear(flat, 100), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(100, num_classes),
    )  # fmt: skip
    _keras_init(model)
    model.config = {
        "name": "mnist-cnn",
        "kwargs": {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "image_size": image_size,
        },
    }
    return model


def lenet(
    in_channels: int = 1, num_classes: int = 10, image_size: int = 28, seed: int | None = None
) -> nn.Sequential:
    """A wider LeNet-style CNN: 3x3 convs of 32 and 64 filters, 'same' padding, dense 128.

    Conv2d(C, 32, 3, 'same') ReLU MaxPool2, Conv2d(32, 64, 3, 'same') ReLU MaxPool2,
    Flatten (64 * 7 * 7 = 3136 for 28x28), Linear(3136, 128) ReLU Dropout(0.5), Linear(128, 10):
    421,642 parameters for MNIST. Initialised like `mnist_cnn` (Glorot-uniform, zero biases).

    Example:
        >>> sum(p.size for p in lenet(seed=0).parameters())
        421642
    """
    side = image_size // 4
    if side < 1:
        raise ValueError(f"lenet: image_size {image_size} is too small (needs at least 4)")
    if seed is not None:
        nn.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * side * side, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, num_classes),
    )  # fmt: skip
    _keras_init(model)
    model.config = {
        "name": "lenet",
        "kwargs": {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "image_size": image_size,
        },
    }
    return model
