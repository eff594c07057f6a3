"""05 - A U-Net learns to outline shapes, pixel by pixel.

Until now every network gave one answer per image ("this is a 7"). A segmentation network
gives one answer per *pixel* ("this pixel belongs to a shape"). The U-Net does it by going
down (convolutions and pooling: what is there?) and back up (up-convolutions joined with the
skip connections: where exactly is it?), ending with one logit per pixel.

The data are synthetic: 64x64 images with one to four shapes on a noisy background, made from
a seed (no download). The loss is binary cross-entropy per pixel plus the soft Dice loss; the
score is the IoU (intersection over union) of the predicted and the true foreground.

Run:  python examples/05_unet_shapes.py                  # a few minutes on 2 idle cores
      python examples/05_unet_shapes.py --quick          # a smoke test: runs in seconds,
                                                         # too small to learn (IoU near 0)
      python examples/05_unet_shapes.py --steps 20       # stop each epoch after 20 batches
"""

import argparse
from pathlib import Path

from tinygrad_cnn import ops, optim
from tinygrad_cnn.data import DataLoader, get_dataset
from tinygrad_cnn.metrics import confusion_matrix, predict_classes, segmentation_report
from tinygrad_cnn.models import UNet
from tinygrad_cnn.train import fit, predict
from tinygrad_cnn.viz.seg_plots import plot_mask_grid, plot_segmentation_history


class FirstBatches:
    """The first `steps` batches of a loader each epoch (for quick runs)."""

    def __init__(self, loader, steps):
        self.loader, self.steps = loader, steps

    def __len__(self):
        return min(len(self.loader), self.steps)

    def __iter__(self):
        for step, batch in enumerate(self.loader):
            if step == self.steps:
                break
            yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=800)
    parser.add_argument("--test-size", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--base", type=int, default=16, help="channels of the first level")
    parser.add_argument("--depth", type=int, default=4, help="number of poolings")
    parser.add_argument("--steps", type=int, default=None, help="batches per epoch at most")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: tiny data and network, every step runs, nothing is learnt",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/05_unet_shapes"))
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.train_size, args.test_size = 1, 32, 8
        args.base, args.depth, args.batch_size = 4, 2, 8

    # 1. Data: images (N, 64, 64) uint8 and masks (N, 64, 64) with 1 on a shape, 0 elsewhere.
    #    The two splits are drawn from different seeds, so the test shapes are new.
    train_images, train_masks = get_dataset("shapes-seg", "train", limit=args.train_size)
    test_images, test_masks = get_dataset("shapes-seg", "test", limit=args.test_size)
    train_loader = DataLoader(train_images, train_masks, args.batch_size, shuffle=True, seed=0)
    test_loader = DataLoader(test_images, test_masks, args.batch_size, shuffle=False)
    if args.steps:
        train_loader = FirstBatches(train_loader, args.steps)

    # 2. The model: one output channel = one logit per pixel for "foreground".
    #    padding='same' keeps 64x64 all the way through (64 divides by 2^depth).
    model = UNet(in_channels=1, num_classes=1, base=args.base, depth=args.depth, seed=0)
    print(
        f"UNet(base={args.base}, depth={args.depth}): "
        f"{sum(p.size for p in model.parameters()):,} parameters"
    )

    # 3. Train. segmentation_loss = binary cross-entropy per pixel + soft Dice; the metrics
    #    are looked up by name, like 'accuracy' for a classifier.
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    history = fit(
        model,
        train_loader,
        optimizer,
        loss=ops.segmentation_loss,
        epochs=args.epochs,
        val_loader=test_loader,
        metrics=("mean_iou", "pixel_accuracy"),
    )

    # 4. Judge the test set as a whole: one confusion matrix over every test pixel.
    logits, masks = predict(model, test_loader)  # (N, 1, 64, 64), (N, 64, 64)
    predicted = predict_classes(logits)  # logit > 0 -> foreground
    report = segmentation_report(confusion_matrix(predicted, masks, num_classes=2))
    print(
        f"test: foreground IoU {report['iou'][1]:.3f}, Dice {report['dice'][1]:.3f}, "
        f"pixel accuracy {report['pixel_accuracy']:.3f}"
    )
    if args.quick:
        print("(--quick is a smoke test: too little data and training to learn the shapes)")

    # 5. Look at it: input | true mask | predicted mask, and the learning curves.
    grid = plot_mask_grid(
        test_images[:6, None],
        masks[:6],
        predicted[:6],
        num_classes=2,
        path=args.out / "masks.png",
        class_names=("background", "shape"),
        title=f"U-Net on shapes: test IoU {report['iou'][1]:.3f}",
    )
    curves = plot_segmentation_history(history, args.out / "curves.png")
    print(f"wrote {grid} and {curves}")


if __name__ == "__main__":
    main()
