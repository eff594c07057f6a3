"""tinygrad_cnn: a small deep-learning framework on numpy, for reading and for training CNNs.

    from tinygrad_cnn import Tensor, ops, gradcheck, no_grad

Read `tensor.py` first (the autograd engine), then `ops/` in the order its docstring gives.
"""

from tinygrad_cnn import nn, ops, optim
from tinygrad_cnn.anomaly import detect_anomaly
from tinygrad_cnn.gradcheck import gradcheck
from tinygrad_cnn.nn.init import manual_seed
from tinygrad_cnn.ops.windows import get_num_threads, set_num_threads
from tinygrad_cnn.tensor import (
    Function,
    Tensor,
    enable_grad,
    is_grad_enabled,
    no_grad,
    unbroadcast,
)

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "Function",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "detect_anomaly",
    "unbroadcast",
    "ops",
    "gradcheck",
    "nn",
    "optim",
    "manual_seed",
    "set_num_threads",
    "get_num_threads",
]
