"""The U-Net (Ronneberger, Fischer and Brox, 2015): a per-pixel classifier shaped like a U.

The left half (encoder) is an ordinary CNN: at each level two 3x3 convolutions and a ReLU,
then a 2x2 max pool halves the picture and the next level doubles the channels. It learns
*what* is in the image but loses *where*. The right half (decoder) climbs back: a 2x2
up-convolution doubles the size and halves the channels, the encoder's map of the same level
is joined on (the skip connection brings the *where* back), and two 3x3 convolutions mix them.
A final 1x1 convolution gives num_classes scores per pixel.

    input (1, 64, 64)                                                    logits (K, 64, 64)
      conv3x3 x2 -> 16 ------------------- skip -------------------> concat -> conv x2 -> 1x1
        pool  conv x2 -> 32 ------------- skip ------------> concat -> conv x2 -^ up
          pool  conv x2 -> 64 ------- skip -------> concat -> conv x2 -^ up
            pool  conv x2 -> 128 - skip -> concat -> conv x2 -^ up
              pool  bottleneck conv x2 -> 256 ------^ up         (base=16, depth=4)

padding="same" (the modern variant) pads each 3x3 convolution so the size stays; then any
input whose sides divide by 2^depth comes out the same size. padding="valid" is the paper:
each 3x3 convolution trims 2 pixels, so the decoder's maps are smaller than the encoder's,
and each skip map is *center-cropped* to fit before the concatenation (a slice, whose gradient
is the slice put back in zeros). The paper's network is UNet(1, 2, base=64, depth=4,
padding="valid", batchnorm=False): 572x572 in, 388x388 out, 31,030,658 parameters.

Read next: `examples/05_unet_shapes.py` (training it), `metrics.py` (judging its masks).
"""

from __future__ import annotations

from tinygrad_cnn import nn, ops
from tinygrad_cnn.tensor import Tensor


def double_conv(in_channels: int, out_channels: int, padding: str, batchnorm: bool):
    """Two 3x3 convolutions, each followed by BatchNorm (optional) and ReLU.

    Shapes:
        x: (N, in_channels, H, W) -> out: (N, out_channels, H, W) with padding 'same',
        (N, out_channels, H - 4, W - 4) with 'valid'.
    Example:
        >>> block = double_conv(1, 4, "valid", batchnorm=False)
        >>> [type(layer).__name__ for layer in block]
        ['Conv2d', 'ReLU', 'Conv2d', 'ReLU']
        >>> block(Tensor(np.zeros((1, 1, 8, 8), dtype=np.float32))).shape
        (1, 4, 4, 4)
    """
    layers = []
    for channels in (in_channels, out_channels):
        # NOTE: the convs keep their bias even before BatchNorm (where it is redundant), so
        # each one has the course's m(n*3*3 + 1) parameters
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=padding))
        if batchnorm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def up_conv(in_channels: int, out_channels: int, up: str):
    """Double the size and go from in_channels to out_channels channels.

    up is 'transpose' (a 2x2 transposed conv of stride 2) or anything else for nearest
    upsampling followed by a 1x1 conv.

    Shapes:
        x: (N, in_channels, H, W) -> out: (N, out_channels, 2H, 2W).
    Example:
        >>> up_conv(8, 4, "transpose")(Tensor(np.zeros((1, 8, 5, 5), dtype=np.float32))).shape
        (1, 4, 10, 10)
    """
    if up == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)  # 2x2, stride 2
    # nearest-neighbour copies each pixel 2x2, then a 1x1 conv mixes the channels
    return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(in_channels, out_channels, 1))


def center_crop(x: Tensor, height: int, width: int) -> Tensor:
    """The central height x width window of a (N, C, H, W) tensor, as a differentiable slice.

    Example:
        >>> center_crop(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2, 2).data[0, 0]
        array([[ 5.,  6.],
               [ 9., 10.]])
    """
    H, W = x.shape[2:]
    if height > H or width > W:
        raise ValueError(f"center_crop: cannot cut {height}x{width} out of {x.shape}")
    if (height, width) == (H, W):
        return x
    top, left = (H - height) // 2, (W - width) // 2
    return x[:, :, top : top + height, left : left + width]


class UNet(nn.Module):
    """U-Net for per-pixel classification.

    Args:
        in_channels: channels of the input image.
        num_classes: output channels: 1 for a one-class mask (use a sigmoid loss such as
            binary_cross_entropy_with_logits), K for K classes (use cross_entropy).
        base: channels of the first level; level l has base * 2^l, the bottleneck
            base * 2^depth.
        depth: number of poolings (encoder levels).
        padding: 'same' (sizes kept; sides must divide by 2^depth) or 'valid' (the paper:
            unpadded convs, center-cropped skips; see `valid_sizes`).
        batchnorm: BatchNorm2d after each 3x3 convolution.
        up: 'transpose' (2x2 stride-2 up-convolution, as the paper) or 'nearest'
            (nearest-neighbour upsampling + a 1x1 convolution).
        seed: when given, `nn.manual_seed(seed)` first, so the weights are reproducible.
    Shapes:
        x: (N, in_channels, H, W) -> (N, num_classes, OH, OW), with OH = H for 'same' and
        OH = `output_size(H)` for 'valid' (e.g. 572 -> 388 at depth 4).
    Raises:
        ValueError: a bad argument (at construction) or an input size the network cannot
            take (at call), naming the sizes that work.
    Example:
        >>> model = UNet(base=4, depth=2)
        >>> model(Tensor(np.zeros((2, 1, 8, 8), np.float32))).shape
        (2, 1, 8, 8)
        >>> UNet(base=4, depth=4, padding="valid").output_size(572)
        388
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 1,
        base: int = 16,
        depth: int = 4,
        padding: str = "same",
        batchnorm: bool = True,
        up: str = "transpose",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes),
                            ("base", base), ("depth", depth)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"UNet: {name} must be a positive int, got {value!r}")
        if padding not in ("same", "valid"):
            raise ValueError(f"UNet: padding must be 'same' or 'valid', got {padding!r}")
        if up not in ("transpose", "nearest"):
            raise ValueError(f"UNet: up must be 'transpose' or 'nearest', got {up!r}")
        self.in_channels, self.num_classes, self.base, self.depth = (
            in_channels, num_classes, base, depth)  # fmt: skip
        self.padding, self.batchnorm, self.up_mode = padding, batchnorm, up
        # what `checkpoint.save` records so `checkpoint.load` can build the same network again
        self.config = {"name": "unet", "kwargs": dict(
            in_channels=in_channels, num_classes=num_classes, base=base, depth=depth,
            padding=padding, batchnorm=batchnorm, up=up)}  # fmt: skip
        if seed is not None:
            nn.manual_seed(seed)
        widths = [base * 2**level for level in range(depth + 1)]  # the last: the bottleneck
        self.encoder = nn.ModuleList(
            [double_conv(c_in, c_out, padding, batchnorm)
             for c_in, c_out in zip([in_channels] + widths[:-2], widths[:-1])])  # fmt: skip
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = double_conv(widths[-2], widths[-1], padding, batchnorm)
        # the decoder climbs from the bottleneck: level depth-1, ..., 0
        self.ups = nn.ModuleList([up_conv(widths[level + 1], widths[level], up)
                                  for level in reversed(range(depth))])  # fmt: skip
        self.decoder = nn.ModuleList(
            [double_conv(2 * widths[level], widths[level], padding, batchnorm)
             for level in reversed(range(depth))])  # fmt: skip
        self.head = nn.Conv2d(base, num_classes, 1)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"base={self.base}, depth={self.depth}, padding={self.padding!r}, "
            f"batchnorm={self.batchnorm}, up={self.up_mode!r}"
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet: input must be (N, {self.in_channels}, H, W), got {x.shape}")
        for side in x.shape[2:]:
            self.output_size(side)  # raises, naming the sizes that work
        skips = []
        for block in self.encoder:
            x = block(x)  # (N, base*2^l, H_l, W_l)
            skips.append(x)
            x = self.pool(x)  # (N, base*2^l, H_l/2, W_l/2)
        x = self.bottleneck(x)  # (N, base*2^depth, ., .)
        for up, block, skip in zip(self.ups, self.decoder, reversed(skips)):
            x = up(x)  # twice the size, half the channels
            skip = center_crop(skip, *x.shape[2:])  # 'valid': the skip is larger; cut its middle
            x = block(ops.concat([skip, x], axis=1))  # (N, 2c, h, w) -> (N, c, h - ., w - .)
        return self.head(x)  # (N, num_classes, OH, OW)

    # --- which sizes go through ----------------------------------------------------------
    def _trace(self, size: int) -> int | None:
        """Follow one side length through the network; None if some step cannot take it."""
        if self.padding == "same":
            return size if size % 2**self.depth == 0 else None
        for _ in range(self.depth):  # each level: two valid 3x3 convs, then a 2x2 pool
            size -= 4
            if size < 2 or size % 2:
                return None
            size //= 2
        size -= 4  # the bottleneck
        if size < 1:
            return None
        for _ in range(self.depth):  # each level: double, then two valid 3x3 convs
            size = 2 * size - 4
            if size < 1:
                return None
        return size

    def valid_sizes(self, up_to: int = 600) -> list[tuple[int, int]]:
        """Every (input side, output side) pair up to `up_to` that the network takes.

        Example:
            >>> UNet(base=2, depth=2, padding="valid").valid_sizes(up_to=60)[:3]
            [(44, 4), (48, 8), (52, 12)]
        """
        pairs = [(size, self._trace(size)) for size in range(1, up_to + 1)]
        return [(size, out) for size, out in pairs if out is not None]

    def output_size(self, size: int) -> int:
        """The output side length for an input side length `size`.

        Raises:
            ValueError: the size does not fit; the message lists the nearest sizes that do.
        """
        out = self._trace(size)
        if out is not None:
            return out
        if self.padding == "same":
            step = 2**self.depth
            below = max(step, size // step * step)
            raise ValueError(
                f"UNet: with padding='same' and depth={self.depth}, input height "
                f"and width must be multiples of 2^{self.depth} = {step}; got "
                f"{size} (try {below} or {below + step})"
            )
        fits = self.valid_sizes(up_to=2 * size + 2 ** (self.depth + 5))
        near = sorted(fits, key=lambda pair: abs(pair[0] - size))[:3]
        listed = ", ".join(f"{a} -> {b}" for a, b in sorted(near))
        raise ValueError(
            f"UNet: with padding='valid' and depth={self.depth}, an input side of "
            f"{size} does not fit (each level needs an even size after its two "
            f"convs); the sizes that work are 2^{self.depth} * k - 4 from "
            f"{fits[0][0]} on; nearest (input -> output): {listed}"
        )
