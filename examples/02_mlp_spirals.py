"""02 - A two-layer perceptron learns two interleaved spirals, with raw tensors.

No layers, no optimizer class: the weights are plain tensors with requires_grad=True, the
forward pass is matmul + relu + matmul, the loss is softmax cross-entropy, and one
gradient-descent step is `w.data -= lr * w.grad`. A straight line cannot separate the two
spirals; the hidden layer bends the decision boundary until it can.

Run:  python examples/02_mlp_spirals.py [--steps 3000] [--hidden 64]
"""

import argparse

import numpy as np

from tinygrad_cnn import Tensor, gradcheck, ops


def spirals(n_per_class: int, rng: np.random.Generator, noise: float = 0.2):
    """Two spirals in the plane, one per class: (2n, 2) points and (2n,) labels."""
    t = np.sqrt(rng.uniform(0, 1, n_per_class)) * 3 * np.pi  # angle along the spiral
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    points = np.concatenate([arm, -arm]) + rng.normal(0, noise / (3 * np.pi), (2 * n_per_class, 2))
    labels = np.repeat([0, 1], n_per_class)
    return points.astype(np.float32), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_np, labels = spirals(200, rng)
    x = Tensor(x_np)  # (400, 2)

    def layer(fan_in, fan_out):
        # weights and biases both uniform(+-1/sqrt(fan_in)), fan_in = the layer's inputs,
        # as PyTorch's Linear initialises them
        bound = 1 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, (1, fan_out)).astype(np.float32)
        return Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)

    w1, b1 = layer(2, args.hidden)
    w2, b2 = layer(args.hidden, 2)
    params = [w1, b1, w2, b2]

    def forward(x, w1, b1, w2, b2):
        return ((x @ w1 + b1).relu() @ w2) + b2  # (N, 2) logits

    for step in range(args.steps + 1):
        loss = ops.cross_entropy(forward(x, *params), labels)
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= args.lr * p.grad  # gradient descent, in place
        if step % max(args.steps // 10, 1) == 0:
            print(f"step {step:5d}   loss {loss.item():.4f}")

    predictions = forward(x, *params).data.argmax(axis=1)
    print(f"training accuracy: {np.mean(predictions == labels):.1%}")

    # Check this network's gradients against finite differences, in float64, on 8 points.
    x_small = Tensor(x_np[:8].astype(np.float64))
    params64 = [Tensor(p.data.astype(np.float64), requires_grad=True) for p in params]
    ok = gradcheck(lambda *ps: ops.cross_entropy(forward(x_small, *ps), labels[:8]), params64)
    print(f"gradcheck of the network's gradients: {'passed' if ok else 'failed'}")


if __name__ == "__main__":
    main()
