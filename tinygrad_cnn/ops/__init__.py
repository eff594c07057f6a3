"""Every differentiable op, and a one-page card of their derivatives.

Each op is a `...Fn(Function)` class in one of the files below, holding its forward and
backward side by side, plus the public lowercase function exported here that checks its
arguments and calls `Fn.apply`. Read the files in this order:
elementwise -> reduce -> movement -> matmul -> conv -> pool -> loss.

grad = dL/d(out); `unbroadcast` sums a gradient back to a broadcast input's shape.

    op                     forward                         backward (dL/d input)
    ---------------------  ------------------------------  ------------------------------------
    add(x, y)              x + y                           dx = grad, dy = grad
    sub(x, y)              x - y                           dx = grad, dy = -grad
    mul(x, y)              x * y                           dx = grad * y, dy = grad * x
    div(x, y)              x / y                           dx = grad / y, dy = -grad * x / y^2
    pow(x, y)              x ** y                          dx = grad * y x^(y-1), dy = grad out ln x
    neg(x)                 -x                              dx = -grad
    exp(x)                 e^x                             dx = grad * out
    log(x)                 ln x                            dx = grad / x
    relu(x)                max(x, 0)                       dx = grad * (x > 0)
    sigmoid(x)             1 / (1 + e^-x)                  dx = grad * out * (1 - out)
    tanh(x)                tanh x                          dx = grad * (1 - out^2)
    sum(x, axis)           sum over axis                   dx = grad broadcast back over axis
    mean(x, axis)          sum / count                     (from sum and div)
    max(x, axis)           max over axis                   dx = grad at the max (ties share)
    reshape(x, shape)      same data, new shape            dx = grad reshaped back
    transpose(x, axes)     permuted axes                   dx = grad, inverse permutation
    getitem(x, index)      x[index]                        dx = zeros; dx[index] = grad
    concat(xs, axis)       xs joined on axis               dx_k = grad's slice for x_k
    pad(x, widths)         x surrounded by a constant      dx = grad with the border cut off
    matmul(a, b)           a @ b                           da = grad @ b^T, db = a^T @ grad
    conv2d(x, w)           w @ im2col(x)                   dw = grad @ im2col(x)^T,
                                                           dx = col2im(w^T @ grad)
    conv_transpose2d(y, w) col2im(w^T @ y)                 dy = conv2d(grad, w),
                                                           dw = y @ im2col(grad)^T
    maxpool2d(x, k, s)     max of each window              dx = grad at each window's arg-max
    avgpool2d(x, k, s)     mean of each window             dx = grad / count, to every tap
    upsample2d(x, f)       each pixel repeated f x f       dx = sum of grad over each block
    batch_norm2d(x, w, b)  w (x - mean) / std + b          dx = w/std (grad - mean(grad)
                           (per channel, over N, H, W)          - xhat mean(grad xhat)) in training
    softmax(x)             e^x / sum e^x                   dx = out * (grad - sum(grad * out))
    log_softmax(x)         x - log sum e^x                 dx = grad - softmax * sum(grad)
    cross_entropy(x, y)    mean -log_softmax(x)[y]         dx = (softmax - onehot(y)) / count
    bce_with_logits(x, t)  -t ln s(x) - (1-t) ln(1-s(x))   dx = grad * (sigmoid(x) - t)
    dice_loss(x, t)        1 - mean_c (2 sum p t + s) /    (composed: sigmoid/softmax, mul,
                             (sum p + sum t + s)             sum, add, div)
"""

from tinygrad_cnn.ops.conv import conv2d
from tinygrad_cnn.ops.conv_transpose import conv_transpose2d
from tinygrad_cnn.ops.elementwise import (
    add,
    div,
    exp,
    log,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sub,
    tanh,
)
from tinygrad_cnn.ops.kernels import get_kernels, use_kernels  # noqa: F401  (the switch, not an op)
from tinygrad_cnn.ops.loss import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    log_softmax,
    softmax,
)
from tinygrad_cnn.ops.matmul import matmul
from tinygrad_cnn.ops.movement import concat, flatten, getitem, pad, reshape, transpose
from tinygrad_cnn.ops.norm import batch_norm2d
from tinygrad_cnn.ops.pool import avgpool2d, maxpool2d, upsample2d
from tinygrad_cnn.ops.reduce import max, mean, sum
from tinygrad_cnn.ops.segmentation import dice_loss, segmentation_loss

__all__ = [
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "relu", "sigmoid", "tanh",
    "sum", "mean", "max",
    "reshape", "transpose", "flatten", "getitem", "concat", "pad",
    "matmul", "conv2d", "conv_transpose2d",
    "maxpool2d", "avgpool2d", "upsample2d", "batch_norm2d",
    "softmax", "log_softmax", "cross_entropy", "binary_cross_entropy_with_logits",
    "dice_loss", "segmentation_loss",
]  # fmt: skip
