"""Whole training steps against PyTorch: LeNet, U-Net, the course's MNIST CNN, one MNIST epoch.

    python -m benchmarks.steps [--quick] [--json PATH] [--only TEXT]

A step is what a training loop does per batch: zero_grad, forward, loss, backward, optimizer
step. Both frameworks start from the same weights (ours copied into PyTorch by state_dict key)
and the same batch. Before timing, `check` copies our current weights into PyTorch, takes one
step on each side and compares the two losses and the updated weights (so the gradients agree
too). Dropout layers are put in eval mode for that one step (their masks differ by design).

Cases:
  lenet step b64       Conv(1,32,3,p1) ReLU Pool2, Conv(32,64,3,p1) ReLU Pool2, Linear(3136,128)
                       ReLU, Linear(128,10); cross-entropy; SGD lr 0.01         (target 1.3x)
  unet step (8,1,64,64) depth 3, base 16, 'same' 3x3 convs, no batchnorm, 2x2 transposed
                       convs; BCE with logits against a random binary mask; SGD  (target 1.6x)
  mnist-cnn step b512  the course's model (`models.mnist_cnn`), Adam 1e-3, dropout on
  mnist-epoch          one epoch of real MNIST at batch 512 with that recipe (needs the data,
                       see TINYGRAD_CNN_DATA; not in --quick)                     (target 1.3x)
  matmul 1024^3        BLAS sanity line (numpy against torch.mm)
  scaling              the LeNet step at batch 8..128, the U-Net step at 32, 64, 128 pixels
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)
from benchmarks.harness import Case  # noqa: E402

# isort: split
import numpy as np  # noqa: E402

from tinygrad_cnn import Tensor, nn, ops, optim  # noqa: E402
from tinygrad_cnn.models import mnist_cnn  # noqa: E402
from tinygrad_cnn.models.unet import UNet  # noqa: E402

torch = harness.torch
LENET_TARGET, UNET_TARGET, EPOCH_TARGET = 1.30, 1.60, 1.30

# ----------------------------------------------------------------------------------------
# The models, ours and PyTorch's, with the same state_dict keys
# ----------------------------------------------------------------------------------------


def lenet_ours() -> nn.Sequential:
    nn.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def lenet_torch():
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(3136, 128), tnn.ReLU(), tnn.Linear(128, 10),
    )  # fmt: skip


def mnist_cnn_torch():
    tnn = torch.nn
    return tnn.Sequential(
        tnn.Conv2d(1, 8, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Conv2d(8, 16, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.2),
        tnn.Flatten(), tnn.Linear(400, 100), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(100, 10),
    )  # fmt: skip


def unet_ours() -> UNet:
    return UNet(1, 1, base=16, depth=3, padding="same", batchnorm=False, seed=0)


def unet_torch(base: int = 16, depth: int = 3):
    """The same U-Net in PyTorch, module names matching `models.UNet`'s state_dict keys."""
    tnn = torch.nn

    def double(c_in, c_out):
        return tnn.Sequential(
            tnn.Conv2d(c_in, c_out, 3, padding="same"), tnn.ReLU(),
            tnn.Conv2d(c_out, c_out, 3, padding="same"), tnn.ReLU(),
        )  # fmt: skip

    class TorchUNet(tnn.Module):
        def __init__(self):
            super().__init__()
            widths = [base * 2**level for level in range(depth + 1)]
            self.encoder = tnn.ModuleList(
                [double(a, b) for a, b in zip([1] + widths[:-2], widths[:-1])]
            )
            self.pool = tnn.MaxPool2d(2)
            self.bottleneck = double(widths[-2], widths[-1])
            levels = list(reversed(range(depth)))
            self.ups = tnn.ModuleList(
                [tnn.ConvTranspose2d(widths[lv + 1], widths[lv], 2, stride=2) for lv in levels]
            )
            self.decoder = tnn.ModuleList([double(2 * widths[lv], widths[lv]) for lv in levels])
            self.head = tnn.Conv2d(base, 1, 1)

        def forward(self, x):
            skips = []
            for block in self.encoder:
                x = block(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottleneck(x)
            for up, block, skip in zip(self.ups, self.decoder, reversed(skips)):
                x = block(torch.cat([skip, up(x)], dim=1))
            return self.head(x)

    return TorchUNet()


def copy_weights(ours: nn.Module, theirs) -> None:
    """Load our current weights into the PyTorch model (same keys, same layouts)."""
    state = {k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


# ----------------------------------------------------------------------------------------
# A training step on both sides, and the check that they compute the same thing
# ----------------------------------------------------------------------------------------


def step_case(
    name: str,
    ours_model: nn.Module,
    torch_model,
    loss: str,
    make_opt,
    make_torch_opt,
    x: np.ndarray,
    y: np.ndarray,
    target: float | None,
    info: dict,
) -> Case:
    """A Case timing one training step (zero_grad, forward, loss, backward, step)."""
    opt = make_opt(ours_model.parameters())
    our_loss = {"ce": ops.cross_entropy, "bce": ops.binary_cross_entropy_with_logits}[loss]
    xt, yt = Tensor(x), y if loss == "ce" else Tensor(y)

    def ours():
        opt.zero_grad()
        value = our_loss(ours_model(xt), yt)
        value.backward()
        opt.step()
        return value.item()

    theirs = check = None
    if torch is not None:
        copy_weights(ours_model, torch_model)
        topt = make_torch_opt(torch_model.parameters())
        tloss = {
            "ce": torch.nn.functional.cross_entropy,
            "bce": torch.nn.functional.binary_cross_entropy_with_logits,
        }[loss]
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def theirs():
            topt.zero_grad()
            value = tloss(torch_model(tx), ty)
            value.backward()
            topt.step()
            return value.item()

        def check():
            copy_weights(ours_model, torch_model)
            state = [dict(s) for s in opt.state]  # e.g. Adam's moments: one fresh step each
            opt.state = [{} for _ in opt.state]
            saved = topt.state_dict()
            topt.state.clear()
            ours_model.eval(), torch_model.eval()  # dropout off: the same function on both sides
            a, b = ours(), theirs()
            ours_model.train(), torch_model.train()
            opt.state = state
            topt.load_state_dict(saved)
            assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), f"{name}: first-step loss {a} vs {b}"
            for key, value in torch_model.state_dict().items():
                mine = ours_model.state_dict()[key]
                scale = float(np.abs(value.numpy()).max()) or 1.0
                np.testing.assert_allclose(
                    mine, value.numpy(), rtol=1e-3, atol=1e-4 * scale, err_msg=f"{name}: {key}"
                )
            info["first_step_loss"] = {"ours": a, "torch": b}

    return Case(name, ours, theirs, check, target, info)


def sgd(lr: float = 0.01):
    return (
        lambda params: optim.SGD(params, lr=lr),
        lambda params: torch.optim.SGD(params, lr=lr),
    )


def adam(lr: float = 1e-3):
    return (
        lambda params: optim.Adam(params, lr=lr),
        lambda params: torch.optim.Adam(params, lr=lr),
    )


def lenet_case(batch: int = 64, target: float | None = LENET_TARGET, tag: str = "") -> Case:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    model = lenet_ours()
    return step_case(
        f"lenet step b{batch}{tag}", model, lenet_torch() if torch else None, "ce", *sgd(),
        x, y, target, {"batch": batch, "images": batch},
    )  # fmt: skip


def unet_case(size: int = 64, batch: int = 8, target: float | None = UNET_TARGET, tag="") -> Case:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, size, size)).astype(np.float32)
    mask = (rng.random((batch, 1, size, size)) < 0.5).astype(np.float32)
    return step_case(
        f"unet step ({batch},1,{size},{size}){tag}", unet_ours(),
        unet_torch() if torch else None, "bce", *sgd(), x, mask, target,
        {"batch": batch, "size": size, "images": batch},
    )  # fmt: skip


def mnist_cnn_case(batch: int = 512) -> Case:
    rng = np.random.default_rng(0)
    x = rng.random((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return step_case(
        f"mnist-cnn step b{batch} adam", mnist_cnn(seed=0),
        mnist_cnn_torch() if torch else None, "ce", *adam(), x, y, None,
        {"batch": batch, "images": batch},
    )  # fmt: skip


def mnist_epoch_case(batch: int = 512) -> Case | None:
    """One epoch of the course recipe on real MNIST; None when the files are not found."""
    from tinygrad_cnn.data import get_dataset

    try:
        images, labels = get_dataset("mnist", "train")
    except Exception as error:  # no data here: skip the case, say why
        print(f"mnist-epoch skipped: {error}", file=sys.stderr)
        return None
    x_all = (images.astype(np.float32) / 255.0)[:, None]  # (60000, 1, 28, 28)
    labels = labels.astype(np.int64)  # a writable copy (torch.from_numpy wants one)
    batches = [(x_all[i : i + batch], labels[i : i + batch]) for i in range(0, len(x_all), batch)]
    step = mnist_cnn_case(batch)
    ours_model = mnist_cnn(seed=0)
    opt = optim.Adam(ours_model.parameters(), lr=1e-3)

    def ours():
        for xb, yb in batches:
            opt.zero_grad()
            ops.cross_entropy(ours_model(Tensor(xb)), yb).backward()
            opt.step()

    theirs = None
    if torch is not None:
        torch_model = mnist_cnn_torch()
        copy_weights(ours_model, torch_model)
        topt = torch.optim.Adam(torch_model.parameters(), lr=1e-3)
        tbatches = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in batches]

        def theirs():
            for xb, yb in tbatches:
                topt.zero_grad()
                torch.nn.functional.cross_entropy(torch_model(xb), yb).backward()
                topt.step()

    info = {"batch": batch, "images": len(x_all), "steps": len(batches)}
    return Case("mnist-epoch b512 adam", ours, theirs, step.check, EPOCH_TARGET, info, rounds=3,
                warmup=0)  # fmt: skip


def matmul_case(n: int = 1024) -> Case:
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    ta = torch.from_numpy(a) if torch else None
    info = {"gflop": 2 * n**3 / 1e9}
    return Case(f"matmul {n}^3 (BLAS sanity)", lambda: a @ a,
                (lambda: ta @ ta) if torch else None, None, None, info)  # fmt: skip


# ----------------------------------------------------------------------------------------


def step_cases(quick: bool = False, only: str | None = None) -> list[Case]:
    """The step cases (those whose name contains `only`; built only when wanted)."""
    named = [
        ("matmul 1024^3", matmul_case),
        ("lenet step b64", lenet_case),
        ("unet step (8,1,64,64)", unet_case),
        ("mnist-cnn step b512 adam", mnist_cnn_case),
    ]
    if not quick:
        named.append(("mnist-epoch b512 adam", mnist_epoch_case))
    cases = [make() for name, make in named if not only or only in name]
    return [case for case in cases if case is not None]


def scaling_cases(quick: bool = False, only: str | None = None) -> list[Case]:
    batches, sizes = ((8, 32), (32, 64)) if quick else ((8, 16, 32, 64, 128), (32, 64, 128))
    tag = " (scaling)"
    named = [(f"lenet step b{b}{tag}", lambda b=b: lenet_case(b, None, tag)) for b in batches]
    named += [(f"unet step (8,1,{s},{s}){tag}", lambda s=s: unet_case(s, 8, None, tag))
              for s in sizes]  # fmt: skip
    return [make() for name, make in named if not only or only in name]


def main(argv: list[str] | None = None) -> int:
    def make_cases(quick: bool, only: str | None) -> list[Case]:
        return step_cases(quick, only) + scaling_cases(quick, only)

    return harness.section_main(argv, __doc__, make_cases, rounds=15, benchmark="steps")


if __name__ == "__main__":
    harness.default_data_folder()
    sys.exit(main())
