"""03 - A convolution by hand: the course's 5x5 image and 3x3 kernel, checked against conv2d.

A convolution layer slides its kernel over the image. At each position it multiplies the
window under the kernel by the kernel, element by element, and adds the products up: one
number of the output map. Here that is written as plain Python loops, the way you would do it
on paper, and then compared with `ops.conv2d`, which does the same with one matrix product
(im2col, see tinygrad_cnn/ops/conv.py). Then the same with padding='same' (the output keeps
the input's size) and with stride 2 (the window jumps two pixels).

Run:  python examples/03_conv_by_hand.py
      (or `tinygrad-cnn explain conv` for the same, step by step)
"""

import math

import numpy as np

from tinygrad_cnn import Tensor, ops

image = np.array(
    [[5, 2, 1, 3, 5],
     [4, 3, 2, 3, 4],
     [0, 2, 1, 2, 2],
     [3, 3, 2, 3, 2],
     [2, 1, 3, 2, 2]], dtype=np.float64)  # fmt: skip
kernel = np.array(
    [[1, 0, 1],
     [0, 1, 0],
     [1, 0, 1]], dtype=np.float64)  # fmt: skip


def conv_by_hand(image, kernel, stride=1, pad=((0, 0), (0, 0))):
    """Slide `kernel` over `image` (zero-padded by pad = ((top, bottom), (left, right)))."""
    padded = np.pad(image, pad)
    KH, KW = kernel.shape
    OH = (padded.shape[0] - KH) // stride + 1  # how many times the window fits, down
    OW = (padded.shape[1] - KW) // stride + 1  # and across
    out = np.zeros((OH, OW))
    for i in range(OH):  # loops over pixels: fine for teaching, far too slow for training
        for j in range(OW):
            window = padded[i * stride : i * stride + KH, j * stride : j * stride + KW]
            out[i, j] = np.sum(window * kernel)  # the Hadamard product, summed
    return out


def with_conv2d(image, kernel, **options):
    """The library's conv2d on the same numbers: it wants (N, C, H, W) and (O, C, KH, KW)."""
    x = Tensor(image.reshape(1, 1, *image.shape))
    w = Tensor(kernel.reshape(1, 1, *kernel.shape))
    return ops.conv2d(x, w, **options).data[0, 0]


# 1. The first window, step by step
window = image[:3, :3]
products = window * kernel
print("first window:\n", window)
print("window * kernel (element by element):\n", products)
terms = products[kernel != 0]
print(" + ".join(f"{t:g}" for t in terms), "=", f"{products.sum():g}")  # 5 + 1 + 3 + 0 + 1 = 10

# 2. The whole map, 'valid' (no padding): a 5x5 image and a 3x3 kernel give (5 - 3) + 1 = 3
ours = conv_by_hand(image, kernel)
theirs = with_conv2d(image, kernel)
print("\nvalid, stride 1 -> 3x3:\n", ours)
assert np.array_equal(ours, theirs), (ours, theirs)
assert ours[0, 0] == 10

# 3. padding='same': pad so that the output keeps the input's size, ceil(5 / 1) = 5.
#    A 3x3 kernel needs (3 - 1) = 2 extra rows and columns: 1 on each side.
same = conv_by_hand(image, kernel, pad=((1, 1), (1, 1)))
print("\nsame, stride 1 -> 5x5:\n", same)
assert np.array_equal(same, with_conv2d(image, kernel, padding="same"))

# 4. stride 2: the window jumps two pixels, floor((5 - 3) / 2) + 1 = 2 positions per axis
strided = conv_by_hand(image, kernel, stride=2)
print("\nvalid, stride 2 -> 2x2:\n", strided)
assert np.array_equal(strided, with_conv2d(image, kernel, stride=2))

# 5. 'same' with stride 2 (Keras' rule): out = ceil(5 / 2) = 3, total padding
#    (3 - 1) * 2 + 3 - 5 = 2, split 1 / 1 (an odd one would go to the bottom/right)
out = math.ceil(5 / 2)
total = max((out - 1) * 2 + 3 - 5, 0)
same2 = conv_by_hand(image, kernel, stride=2, pad=((total // 2, total - total // 2),) * 2)
print("\nsame, stride 2 -> 3x3:\n", same2)
assert np.array_equal(same2, with_conv2d(image, kernel, stride=2, padding="same"))
print("\nevery map matches ops.conv2d")
