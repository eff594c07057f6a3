"""Ops under threads: two threads training their own CNNs get exactly what each gets alone.

Every scratch buffer of the ops (padded inputs, im2col columns, col2im sums, the held columns
of the last conv) and every setting (the thread count, the pool of helper threads) is per
thread, so a thread's numbers cannot depend on what another thread runs at the same time.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tinygrad_cnn import Tensor, ops
from tinygrad_cnn.ops.windows import _default_threads, get_num_threads, parallel, set_num_threads

STEPS = 4


def _params(kind: str) -> dict[str, Tensor]:
    """Two different CNNs' weights: conv2d, padded max pooling, conv_transpose2d, dense."""
    rng = np.random.default_rng(1 if kind == "a" else 2)
    shapes = {  # a: 12x12 images, b: 13x13
        "a": dict(w1=(6, 1, 3, 3), wt=(6, 4, 2, 2), w2=(3, 4, 3, 3), fc=(3 * 12 * 12, 5)),
        "b": dict(w1=(8, 1, 5, 5), wt=(8, 8, 3, 3), w2=(2, 8, 1, 1), fc=(2 * 12 * 12, 5)),
    }[kind]
    weights = {k: rng.standard_normal(s) / np.sqrt(np.prod(s[1:])) for k, s in shapes.items()}
    return {k: Tensor(w.astype(np.float32), requires_grad=True) for k, w in weights.items()}


def _forward(kind: str, p: dict[str, Tensor], x: Tensor) -> Tensor:
    if kind == "a":
        h = ops.conv2d(x, p["w1"], padding=1).relu()  # (N, 6, 12, 12)
        h = ops.maxpool2d(h, 3, stride=2, padding=1)  # (N, 6, 6, 6)
        h = ops.conv_transpose2d(h, p["wt"], stride=2).relu()  # (N, 4, 12, 12)
        h = ops.conv2d(h, p["w2"], padding="same")  # (N, 3, 12, 12)
    else:
        h = ops.conv2d(x, p["w1"], stride=2, padding=2).relu()  # (N, 8, 7, 7)
        h = ops.maxpool2d(h, 2, padding=1)  # (N, 8, 4, 4)
        h = ops.conv_transpose2d(h, p["wt"], stride=3).relu()  # (N, 8, 12, 12)
        h = ops.conv2d(h, p["w2"])  # (N, 2, 12, 12)
    return ops.matmul(h.reshape(h.shape[0], -1), p["fc"])


def _train(kind: str, barrier: threading.Barrier | None = None) -> list[np.ndarray]:
    """STEPS SGD steps; returns every step's output and every gradient, as copies."""
    set_num_threads(2)  # each thread also splits its work over its own helper threads
    params = _params(kind)
    rng = np.random.default_rng(0 if kind == "a" else 1)
    x = rng.standard_normal((16, 1, 12, 12) if kind == "a" else (16, 1, 13, 13))
    x = Tensor(x.astype(np.float32))
    labels = rng.integers(0, 5, 16)
    seen = []
    for _ in range(STEPS):
        if barrier is not None:
            barrier.wait()  # both threads run their steps at the same time
        out = _forward(kind, params, x)
        ops.cross_entropy(out, labels).backward()
        seen.append(out.data.copy())
        for t in params.values():
            seen.append(t.grad.copy())
            t.data = t.data - 0.05 * t.grad  # plain SGD, no optimizer state
            t.grad = None
    return seen


def test_two_threads_training_get_bit_for_bit_what_each_gets_alone():
    alone = {kind: _train(kind) for kind in "ab"}
    barrier, together, errors = threading.Barrier(2), {}, []

    def run(kind):
        try:
            together[kind] = _train(kind, barrier)
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


def test_a_forked_child_makes_its_own_helper_threads():
    import multiprocessing
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    previous = get_num_threads()
    set_num_threads(2)
    try:
        out = np.zeros(100_000)
        parallel(lambda a, b: out.__setitem__(slice(a, b), 1.0), out.size, out.size)  # a pool
        context = multiprocessing.get_context("fork")
        with context.Pool(1) as pool:  # the child would wait forever on its parent's helpers
            assert pool.apply_async(_sum_in_parallel).get(timeout=30) == 100_000
    finally:
        set_num_threads(previous)


def _sum_in_parallel() -> float:
    out = np.zeros(100_000)

    def fill(start, stop):
        out[start:stop] = 1.0

    parallel(fill, out.size, out.size)
    return float(out.sum())
