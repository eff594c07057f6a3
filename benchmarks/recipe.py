"""The course's recipe trained to the end, in both frameworks, over several seeds.

    python -m benchmarks.recipe [--dataset mnist|fashion-mnist] [--seeds 0-11] [--jobs 2]
                                [--epochs 16] [--limit N] [--json PATH]

The recipe: `mnist_cnn` (Glorot-uniform weights and zero biases, as Keras initialises the
course's model), Adam with learning rate 1e-3, batch 512, 16 epochs, pixels / 255, then the
test accuracy after the last epoch. Ours runs what `tinygrad-cnn train --model mnist-cnn
--dataset D --seed S` runs (same weights, dropout masks and batch order, so the same accuracy).
PyTorch runs the same network initialised the same way from `torch.manual_seed(S)`, with a
fresh numpy permutation of the training set every epoch; `--frameworks torch-default-init`
adds PyTorch with its own default initialisation (kaiming-uniform weights, uniform biases) to
show what the Keras initialisation is worth.

One run's test accuracy moves by about 0.1 point from seed to seed (the initial weights, the
dropout masks and the batch order all change), which is as large as any difference worth
looking for, so this compares the two frameworks over many seeds: per-run lines, then the
mean, standard deviation and range of each, how many runs reach the course's 98.69% (MNIST),
and Welch's t for the difference of the means (|t| < 2: no difference this sample can see).

Each run is its own process with one BLAS/OpenMP thread; `--jobs 2` runs two at a time on the
two cores (accuracy does not depend on timing, and the wall time halves). About 100 s per run
here, so the default 12 seeds in both frameworks take about 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import harness  # noqa: E402  (first: it pins the BLAS threads before numpy loads)

COURSE_MNIST_ACCURACY = 0.9869  # the course's Keras run of this recipe
BATCH, LR = 512, 1e-3  # the course's recipe (and 16 epochs, the --epochs default)
FRAMEWORKS = ("tinygrad_cnn", "torch", "torch-default-init")


def train_once(framework: str, dataset: str, seed: int, epochs: int, limit: int | None) -> dict:
    """Train the recipe once in this process; returns test accuracy, loss and training time."""
    from tinygrad_cnn.data import get_dataset

    train_images, train_labels = get_dataset(dataset, "train", limit=limit)
    test_images, test_labels = get_dataset(dataset, "test", limit=limit)
    splits = (train_images, train_labels), (test_images, test_labels)
    start = time.perf_counter()
    if framework == "tinygrad_cnn":
        accuracy, loss = _train_ours(*splits, seed, epochs)
    else:
        accuracy, loss = _train_torch(*splits, seed, epochs, framework == "torch")
    seconds = time.perf_counter() - start
    return {
        "framework": framework,
        "dataset": dataset,
        "seed": seed,
        "epochs": epochs,
        "test_accuracy": accuracy,
        "test_loss": loss,
        "seconds": round(seconds, 1),  # training and the final evaluation
    }


def _train_ours(train_set, test_set, seed: int, epochs: int) -> tuple[float, float]:
    from tinygrad_cnn import data, optim
    from tinygrad_cnn.models import mnist_cnn
    from tinygrad_cnn.train import evaluate, fit

    model = mnist_cnn(seed=seed)  # as the CLI builds it: weights, then dropout, from `seed`
    loader = data.DataLoader(*train_set, BATCH, shuffle=True, seed=seed)
    fit(model, loader, optim.Adam(model.parameters(), lr=LR), epochs=epochs, verbose=False)
    logs = evaluate(model, data.DataLoader(*test_set, BATCH, shuffle=False))
    return logs["accuracy"], logs["loss"]


def _train_torch(train_set, test_set, seed: int, epochs: int, glorot: bool) -> tuple:
    import numpy as np
    import torch

    from benchmarks.steps import mnist_cnn_torch

    torch.manual_seed(seed)
    model = mnist_cnn_torch()
    for layer in model if glorot else ():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)

    def tensors(images, labels):
        x = torch.from_numpy((images[:, None] / 255.0).astype(np.float32))
        return x, torch.from_numpy(labels.astype(np.int64))

    (x, y), (x_test, y_test) = tensors(*train_set), tensors(*test_set)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), BATCH):
            batch = order[start : start + BATCH]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        loss = torch.nn.functional.cross_entropy(logits, y_test).item()
        accuracy = (logits.argmax(1) == y_test).double().mean().item()
    return accuracy, loss


def _run_in_child(framework: str, args: argparse.Namespace, seed: int) -> dict:
    env = dict(os.environ, BENCH_THREADS="1")
    command = [sys.executable, "-m", "benchmarks.recipe", "--child", framework, "--seeds",
               str(seed), "--dataset", args.dataset, "--epochs", str(args.epochs)]  # fmt: skip
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    done = subprocess.run(command, env=env, cwd=harness.REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} seed {seed} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{framework:>18}  seed {seed:>3}  test accuracy {result['test_accuracy']:.2%}  "
        f"loss {result['test_loss']:.4f}  {result['seconds']:.0f} s",
        flush=True,
    )
    return result


def summarise(results: list[dict], dataset: str) -> dict:
    """Mean, standard deviation, range per framework, and Welch's t for the difference.

    Example:
        >>> runs = [{"framework": f, "test_accuracy": a} for f, a in
        ...         [("tinygrad_cnn", 0.985), ("tinygrad_cnn", 0.987), ("torch", 0.986)]]
        >>> summarise(runs, "fashion-mnist")["tinygrad_cnn"]["mean"]
        0.986
    """
    summary: dict = {}
    for framework in FRAMEWORKS:
        values = [r["test_accuracy"] for r in results if r["framework"] == framework]
        if not values:
            continue
        entry = {
            "runs": len(values),
            "mean": round(statistics.fmean(values), 6),
            "std": round(statistics.stdev(values), 6) if len(values) > 1 else None,
            "min": min(values),
            "max": max(values),
        }
        if dataset == "mnist":
            entry["reach_course"] = sum(v >= COURSE_MNIST_ACCURACY - 5e-7 for v in values)
        summary[framework] = entry
    ours, theirs = summary.get("tinygrad_cnn"), summary.get("torch")
    if ours and theirs and ours["std"] is not None and theirs["std"] is not None:
        spread = (ours["std"] ** 2 / ours["runs"] + theirs["std"] ** 2 / theirs["runs"]) ** 0.5
        summary["welch_t"] = round((ours["mean"] - theirs["mean"]) / spread, 2) if spread else None
    return summary


def _print_summary(summary: dict, dataset: str) -> None:
    print(f"\n{dataset}: test accuracy after the recipe, over seeds")
    for framework in FRAMEWORKS:
        if framework not in summary:
            continue
        s = summary[framework]
        std = f"{s['std']:.2%}" if s["std"] is not None else "-"
        line = (
            f"  {framework:>18}: mean {s['mean']:.2%}  std {std}  range {s['min']:.2%} to "
            f"{s['max']:.2%}  ({s['runs']} runs)"
        )
        if "reach_course" in s:
            line += f"; {s['reach_course']} reach the course's {COURSE_MNIST_ACCURACY:.2%}"
        print(line)
    if summary.get("welch_t") is not None:
        print(
            f"  tinygrad_cnn - torch: Welch's t = {summary['welch_t']} "
            "(|t| < 2: no difference seen)"
        )


def _parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7].

    Example:
        >>> _parse_seeds("0-3,7")
        [0, 1, 2, 3, 7]
    """
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.recipe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    parser.add_argument("--seeds", default="0-11", help="e.g. 0-11 or 0,3,5 (default 0-11)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--limit", type=int, help="use only N images of each split (quick runs)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument(
        "--frameworks",
        default="tinygrad_cnn,torch",
        help=f"some of {','.join(FRAMEWORKS)} (default tinygrad_cnn,torch)",
    )
    parser.add_argument("--json", help="also write the runs and the summary here")
    parser.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    harness.default_data_folder()
    seeds = _parse_seeds(args.seeds)
    if args.child:
        result = train_once(args.child, args.dataset, seeds[0], args.epochs, args.limit)
        print(json.dumps(result))
        return 0

    frameworks = [f for f in args.frameworks.split(",") if f]
    jobs = [(f, seed) for seed in seeds for f in frameworks]
    print(f"{args.dataset}: {len(seeds)} seeds x {frameworks}, {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda job: _run_in_child(job[0], args, job[1]), jobs))
    summary = summarise(results, args.dataset)
    _print_summary(summary, args.dataset)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
