"""06 - Drawing compute graphs: an expression, a CNN's loss, a U-Net at two depths.

Every tensor remembers the op that made it (`t._ctx`) and the modules whose forward was
running (`t._scope`), so `viz.draw_graph(loss)` can draw the whole computation: one node per
op, a node per input, constant and parameter (named by its module path), edges labelled with
shapes, each module a box titled with its path. `depth=n` folds the modules below level n into
single nodes, which is how a U-Net fits on a page; `backward=True` draws the backward pass.

Run:  python examples/06_draw_graphs.py [--out DIR] [--format svg|png|pdf|dot]
(the pictures go next to this file by default; without Graphviz's `dot` program, use
--format dot and render later with `dot -Tsvg file.dot -o file.svg`)
"""

import argparse
from pathlib import Path

import numpy as np

from tinygrad_cnn import Tensor, ops
from tinygrad_cnn.models import UNet, mnist_cnn
from tinygrad_cnn.viz import draw_graph, save_graph

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
parser.add_argument("--format", default="svg", choices=("svg", "png", "pdf", "dot"))
args = parser.parse_args()
rng = np.random.default_rng(0)


def save(graph, name: str) -> None:
    path = save_graph(graph, args.out / f"06_{name}.{args.format}")
    print(f"wrote {path}")


# 1. An expression: a neuron with two inputs, values and gradients on every node.
x = Tensor(np.array([2.0, 0.0]))  # an input: no gradient wanted
w = Tensor(np.array([-3.0, 1.0]), requires_grad=True)
b = Tensor(np.float64(6.8813735870195432), requires_grad=True)
x.name, w.name, b.name = "x", "w", "b"
n = (x * w).sum() + b
n.retain_grad()  # intermediate tensors keep their gradient only when asked
out = n.tanh()
out.name = "out"
out.backward()
print(f"neuron: out = {out.item():.4f}, dout/dw = {w.grad}, dout/db = {b.grad.item():.4f}")
save(draw_graph(out, show_grads=True, direction="LR", title="tanh(x . w + b)"), "neuron")

# 2. The course's CNN on a batch of two images: the loss, every op, parameters by name.
model = mnist_cnn(seed=0)
model.eval()  # no Dropout masks in the drawing
images = Tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
images.name = "images"
loss = ops.cross_entropy(model(images), np.array([3, 7]))
loss.name = "loss"
save(draw_graph(loss, title="mnist_cnn: cross-entropy loss"), "cnn_loss")
loss.backward()
save(draw_graph(loss, backward=True, show_grads=True, depth=1, title="its backward pass"),
     "cnn_backward")  # fmt: skip

# 3. A U-Net: every op would be hundreds of nodes; depth 1 and 2 fit on a page.
unet = UNet(base=4, depth=2)
images = Tensor(rng.standard_normal((1, 1, 16, 16)).astype(np.float32))
masks = Tensor((rng.random((1, 1, 16, 16)) > 0.5).astype(np.float32))
images.name, masks.name = "images", "masks"
unet_loss = ops.binary_cross_entropy_with_logits(unet(images), masks)
unet_loss.name = "loss"
for depth in (1, 2):
    save(draw_graph(unet_loss, depth=depth, title=f"UNet, depth={depth}"), f"unet_depth{depth}")
