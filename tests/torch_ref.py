"""The PyTorch expression equivalent to each case of tests/test_ops_basic.py."""

import numpy as np


def _getitem(torch, x):
    # torch has no negative slice steps: flip, then step forward from the same first element
    return torch.flip(x[1:], dims=[1])[:, ::2, None, 0]


TORCH_EQUIVALENTS = {
    "add": lambda torch, x, y: x + y,
    "add_keepdim": lambda torch, x, y: x + y,
    "sub": lambda torch, x, y: x - y,
    "mul": lambda torch, x, y: x * y,
    "div": lambda torch, x, y: x / y,
    "pow_tensor": lambda torch, x, y: x**y,
    "pow_scalar": lambda torch, x: x**3,
    "pow_sqrt": lambda torch, x: x**0.5,
    "neg": lambda torch, x: -x,
    "exp": lambda torch, x: x.exp(),
    "log": lambda torch, x: x.log(),
    "relu": lambda torch, x: x.relu(),
    "sigmoid": lambda torch, x: x.sigmoid(),
    "tanh": lambda torch, x: x.tanh(),
    "sum_all": lambda torch, x: x.sum(),
    "sum_axis": lambda torch, x: x.sum(dim=(0, -1), keepdim=True),
    "mean": lambda torch, x: x.mean(dim=1),
    "max": lambda torch, x: x.amax(dim=-1),
    "max_all": lambda torch, x: x.amax(),
    "reshape": lambda torch, x: x.reshape(4, -1) * 1.5,
    "transpose": lambda torch, x: x.permute(2, 0, 1),
    "T": lambda torch, x: x.T,
    "flatten": lambda torch, x: x.flatten(1),
    "getitem": _getitem,
    "getitem_ellipsis": lambda torch, x: x[..., -1],
    "concat": lambda torch, x, y: torch.cat([x, y, x], dim=-1),
    "pad": lambda torch, x: torch.nn.functional.pad(x, (2, 1, 1, 0), value=5.0),
    "matmul": lambda torch, a, b: a @ b,
    "matmul_batched": lambda torch, a, b: a @ b,
    "matmul_vec_mat": lambda torch, a, b: a @ b,
    "matmul_mat_vec": lambda torch, a, b: a @ b,
    "matmul_vec_vec": lambda torch, a, b: a @ b,
    "softmax": lambda torch, x: x.softmax(dim=0),
    "log_softmax": lambda torch, x: x.log_softmax(dim=-1),
    "cross_entropy": lambda torch, x: torch.nn.functional.cross_entropy(
        x, torch.tensor(np.array([0, 3, 1]))
    ),
    "cross_entropy_2d": lambda torch, x: torch.nn.functional.cross_entropy(
        x, torch.tensor(np.array([[[0, 2], [1, 1]]]))
    ),
    "cross_entropy_sum": lambda torch, x: torch.nn.functional.cross_entropy(
        x, torch.tensor(np.array([2, 0])), reduction="sum"
    ),
    "bce_logits": lambda torch, x, t: torch.nn.functional.binary_cross_entropy_with_logits(x, t),
}
