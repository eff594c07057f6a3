"""Ops under threads: two threads training their own CNNs get exactly what each gets alone.

Every scratch buffer of the ops (padded inputs, im2col columns, col2im sums, the held columns
of the last conv) and every setting (the thread count, the pool of helper threads) is per
thread, so a thread's numbers cannot depend on what another thread runs at the same time.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, ops, optim
from tinygrad_cnn.ops.windows import _default_threads, get_num_threads, parallel, set_num_threads

STEPS = 4


def _model(kind: str) -> nn.Sequential:
    """Two different CNNs: conv2d, padded max pooling and conv_transpose2d in each."""
    nn.manual_seed(1 if kind == "a" else 2)
    if kind == "a":
        return nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
            nn.ConvTranspose2d(6, 4, 2, stride=2), nn.ReLU(), nn.Conv2d(4, 3, 3, padding="same"),
            nn.Flatten(), nn.Linear(3 * 12 * 12, 5),
        )  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool2d(2, padding=1),
        nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1),
        nn.Flatten(), nn.Linear(2 * 7 * 7, 5),
    )  # fmt: skip


def _train(kind: str, model, barrier: threading.Barrier | None = None) -> list[np.ndarray]:
    """STEPS SGD steps; returns every step's output and every gradient, as copies."""
    set_num_threads(2)  # each thread also splits its work over its own helper threads
    opt = optim.SGD(model.parameters(), lr=0.05)
    rng = np.random.default_rng(0 if kind == "a" else 1)
    x = rng.standard_normal((16, 1, 12, 12) if kind == "a" else (16, 1, 13, 13))
    labels = rng.integers(0, 5, 16)
    seen = []
    for _ in range(STEPS):
        if barrier is not None:
            barrier.wait()  # both threads run their steps at the same time
        opt.zero_grad()
        out = model(Tensor(x.astype(np.float32)))
        ops.cross_entropy(out, labels).backward()
        opt.step()
        seen.append(out.data.copy())
        seen += [p.grad.copy() for p in model.parameters()]
    return seen


def test_two_threads_training_get_bit_for_bit_what_each_gets_alone():
    alone = {kind: _train(kind, _model(kind)) for kind in "ab"}
    models = {kind: _model(kind) for kind in "ab"}  # built here: the init RNG is seeded
    barrier, together, errors = threading.Barrier(2), {}, []

    def run(kind):
        try:
            together[kind] = _train(kind, models[kind], barrier)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(kind,)) for kind in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for kind in "ab":
        assert len(together[kind]) == len(alone[kind])
        for got, expected in zip(together[kind], alone[kind]):
            np.testing.assert_array_equal(got, expected)


def test_thread_count_is_per_thread():
    previous = get_num_threads()
    set_num_threads(3)
    seen = []
    other = threading.Thread(target=lambda: seen.append(get_num_threads()))
    other.start()
    other.join()
    set_num_threads(previous)
    assert seen == [_default_threads()]  # the other thread kept the default


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_set_num_threads_refuses_bad_counts(bad, error):
    with pytest.raises(error, match="set_num_threads"):
        set_num_threads(bad)


def test_parallel_covers_the_range_once_and_raises_a_helpers_error():
    previous = get_num_threads()
    set_num_threads(3)
    try:
        out = np.zeros(200_000)

        def fill(start, stop):
            out[start:stop] += 1

        parallel(fill, out.size, out.size)
        assert (out == 1).all()

        def fail(start, stop):
            if start == 0:  # the first chunk runs on a helper thread
                raise ValueError("chunk 0 failed")

        with pytest.raises(ValueError, match="chunk 0 failed"):
            parallel(fail, out.size, out.size)
        parallel(fill, out.size, out.size)  # the pool still works afterwards
        assert (out == 2).all()
    finally:
        set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_do_not_depend_on_the_thread_count(threads):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 11, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    wt = rng.standard_normal((4, 2, 2, 2)).astype(np.float32)

    def run():
        xt, wt_, wtt = (Tensor(a, requires_grad=True) for a in (x, w, wt))
        y = ops.conv2d(xt, wt_, padding=1).relu()
        y = ops.maxpool2d(y, 3, stride=2, padding=1)
        y = ops.conv_transpose2d(y, wtt, stride=2)
        (y * y).sum().backward()
        return [y.data, xt.grad, wt_.grad, wtt.grad]

    previous = get_num_threads()
    try:
        set_num_threads(1)
        expected = run()
        set_num_threads(threads)
        for got, want in zip(run(), expected):
            np.testing.assert_array_equal(got, want)
    finally:
        set_num_threads(previous)
