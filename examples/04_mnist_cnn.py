"""04 - The course's CNN learns to read handwritten digits.

Two blocks of (3x3 convolution, ReLU, 2x2 max pooling, dropout), then two dense layers:
42,358 parameters for MNIST's 10 classes (the table below shows where each comes from).
Convolutions share each filter over the whole image, so a layer of 8 filters of 3x3 has only
8·(1·3·3+1) = 80 parameters, where a dense layer of 100 neurons on the 784 pixels would have
78,500.

The data are MNIST when the files are on this machine (TINYGRAD_CNN_DATA, or the cache at
~/.cache/tinygrad_cnn); otherwise the synthetic 28x28 shapes, made from a seed, so the example
always runs offline. The shapes have 5 classes, not 10, so the last dense layer has
5·(100+1) = 505 parameters instead of 10·(100+1) = 1,010, and the table says 41,853 in all.
Three epochs on all 60,000 MNIST images reach 98.4% test accuracy.

Run:  python examples/04_mnist_cnn.py                       # about 10 minutes on 2 cores
      python examples/04_mnist_cnn.py --epochs 1 --limit 512  # a few seconds
"""

import argparse
from pathlib import Path

from tinygrad_cnn import nn, optim
from tinygrad_cnn.data import DataLoader, dataset_info, get_dataset
from tinygrad_cnn.models import mnist_cnn
from tinygrad_cnn.train import evaluate, fit
from tinygrad_cnn.viz.plots import plot_filters, plot_history


def load(limit, test_limit):
    """MNIST if its files are here (no download is tried), else the synthetic shapes."""
    try:
        train = get_dataset("mnist", "train", limit=limit, download=False)
        test = get_dataset("mnist", "test", limit=test_limit, download=False)
        return "mnist", train, test
    except FileNotFoundError:
        train = get_dataset("shapes", "train", limit=limit or 5000)
        test = get_dataset("shapes", "test", limit=test_limit or 1000)
        return "shapes", train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="training images at most")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, default=Path("runs/04_mnist_cnn"))
    args = parser.parse_args()

    test_limit = None if args.limit is None else max(args.limit // 4, 1)
    name, (train_images, train_labels), (test_images, test_labels) = load(args.limit, test_limit)
    classes = dataset_info(name)["num_classes"]
    print(f"data: {name}, {len(train_images):,} training and {len(test_images):,} test images")
    print(f"{classes} classes: the last layer has {classes}·(100+1) = {classes * 101:,} parameters")

    model = mnist_cnn(num_classes=classes, seed=0)
    print(nn.summary(model, (1, 28, 28)))  # each layer's parameters, with the formula

    train_loader = DataLoader(train_images, train_labels, batch_size=args.batch_size, seed=0)
    test_loader = DataLoader(test_images, test_labels, batch_size=256, shuffle=False)
    # Adam, as the course compiles its Keras model; the softmax lives in cross_entropy
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    history = fit(model, train_loader, optimizer, epochs=args.epochs, val_loader=test_loader)
    final = evaluate(model, test_loader)
    print(f"test loss {final['loss']:.4f}, test accuracy {final['accuracy']:.2%}")

    args.out.mkdir(parents=True, exist_ok=True)
    for path in (plot_history(history, args.out / "history.png", title=f"mnist_cnn on {name}"),
                 plot_filters(model, args.out / "filters.png")):  # fmt: skip
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
