"""What makes conv.py and pool.py fast, shared by both: scratch memory and both cores.

Reusable scratch buffers for the large temporaries (padded inputs, im2col columns), one set
per thread; `parallel`, which splits memory-bound work over a few threads; and padding into
those buffers. The arithmetic of window arguments (sizes, strides, padding, output sizes) is
in `window_args.py`.

Read next: `benchmarks/README.md`, how the speed of all this is measured.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

import numpy as np

from tinygrad_cnn.ops.window_args import Padding

# ----------------------------------------------------------------------------------------
# Scratch buffers, per thread
# ----------------------------------------------------------------------------------------


# Per-thread state. NOTE: every buffer and setting that outlives a call lives here, one set
# per thread, so two threads running ops at once never share scratch memory.
_local = threading.local()


def _workspaces() -> dict:
    if not hasattr(_local, "workspaces"):
        _local.workspaces = {}
    return _local.workspaces


def _workspace(tag: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A scratch array of this thread, reused from call to call, for values dead when an op returns.

    im2col buffers are tens of MB. A fresh one each step costs a page fault per 4 KiB page,
    more than filling it, so one flat buffer per (tag, dtype) is kept, grown to the largest
    size asked for, and each call gets a view of its first prod(shape) elements. One buffer
    per tag (not one per shape) keeps the memory held between steps to the largest layer's.
    The next call with the same tag (in the same thread) overwrites it: never hand it out.
    """
    key = (tag, np.dtype(dtype).str)
    size = int(np.prod(shape))
    buffers = _workspaces()
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = buffers[key] = np.empty(size, dtype)
    return buffer[:size].reshape(shape)


# ----------------------------------------------------------------------------------------
# Both cores for memory-bound work: a small pool of threads per calling thread
# ----------------------------------------------------------------------------------------
#
# BLAS runs the matrix products on every core, but numpy runs copies, ufuncs and pooling on
# one. numpy releases the GIL inside those loops, so splitting one array operation into
# chunks (along the batch or the channels) and running the chunks on a few threads uses the
# other cores. Measured on the U-Net step (8,1,64,64), 2 threads: see benchmarks/README.md.


def _default_threads() -> int:
    """OMP_NUM_THREADS if set (as BLAS and PyTorch read it), else the cores this process may use."""
    try:
        return max(int(os.environ["OMP_NUM_THREADS"]), 1)
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def get_num_threads() -> int:
    """How many threads this thread's ops split memory-bound work over (see set_num_threads).

    Example:
        >>> get_num_threads() >= 1
        True
    """
    if not hasattr(_local, "threads"):
        _local.threads = _default_threads()
    return _local.threads


def set_num_threads(n: int) -> None:
    """Split the copies, elementwise and pooling work of ops over n threads (1: no splitting).

    Like PyTorch's `torch.set_num_threads`, but for the calling thread only (each thread has
    its own setting and its own pool of n - 1 helper threads, so two threads running ops at
    once never wait for each other's helpers). The default is OMP_NUM_THREADS, else the
    number of cores. Matrix products run in BLAS, which has its own thread count
    (OPENBLAS_NUM_THREADS, read when numpy loads).

    Raises:
        TypeError: n is not an int.  ValueError: n < 1.

    Example:
        >>> previous = get_num_threads()
        >>> set_num_threads(1)
        >>> get_num_threads()
        1
        >>> set_num_threads(previous)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: n must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be at least 1, got {n}")
    _local.threads = int(n)


class _Pool:
    """Helper threads that each run chunks from their own queue until the pool is dropped."""

    def __init__(self, helpers: int):
        self.pid = os.getpid()  # a forked child has none of these threads: it makes its own
        self.queues = [queue.SimpleQueue() for _ in range(helpers)]
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        for tasks in self.queues:
            threading.Thread(target=_helper, args=(tasks, self.done), daemon=True).start()

    def __del__(self):  # the owning thread ended or asked for another size: let helpers exit
        for tasks in self.queues:
            tasks.put(None)


def _helper(tasks: queue.SimpleQueue, done: queue.SimpleQueue) -> None:
    _local.threads = 1  # a chunk that calls parallel() itself runs it inline
    while (task := tasks.get()) is not None:
        fn, start, stop = task
        try:
            fn(start, stop)
            done.put(None)
        except Exception as error:  # handed to the caller, which raises it
            done.put(error)
        del task, fn


def _pool(helpers: int) -> _Pool:
    pool = getattr(_local, "pool", None)
    if pool is None or len(pool.queues) != helpers or pool.pid != os.getpid():
        pool = _local.pool = _Pool(helpers)
    return pool


# Below this many elements per chunk, handing a chunk to another thread (about 10-20 us)
# costs more than it saves: the work runs on the calling thread alone.
MIN_CHUNK = 1 << 15


def parallel(fn: Callable[[int, int], None], total: int, elements: int) -> None:
    """Run fn(start, stop) over chunks that cover range(total), on get_num_threads() threads.

    fn must write disjoint parts of its outputs for disjoint ranges (e.g. a slice of the batch
    or of the channels) and call BLAS only for products small enough that BLAS runs them on
    one thread (it has threads of its own). `elements` is about
    how many array elements the whole call touches: small calls run inline, undivided.
    The calling thread runs the last chunk itself; the first error of any chunk is raised.

    Example:
        >>> out = np.zeros(100_000)
        >>> def fill(start, stop):
        ...     out[start:stop] = np.arange(start, stop)
        >>> parallel(fill, out.size, out.size)
        >>> bool((out == np.arange(100_000)).all())
        True
    """
    chunks = min(get_num_threads(), total, max(elements // MIN_CHUNK, 1))
    if chunks <= 1:
        if total > 0:
            fn(0, total)
        return
    pool = _pool(get_num_threads() - 1)
    bounds = [total * i // chunks for i in range(chunks + 1)]
    for tasks, start, stop in zip(pool.queues, bounds[:-2], bounds[1:-1]):
        tasks.put((fn, start, stop))
    error, waiting = None, chunks - 1
    try:
        try:
            fn(bounds[-2], bounds[-1])
        except Exception as mine:
            error = mine
        while waiting:  # wait for every helper, even after an error
            theirs = pool.done.get()
            waiting -= 1
            error = error or theirs
    finally:
        if waiting:  # interrupted (Ctrl-C) while helpers still run: never reuse this pool
            _local.pool = None
    if error is not None:
        raise error


# An elementwise pass is done a block of this many elements of every array at a time, so a
# temporary between two steps (relu's mask, then its product with grad) stays in cache and
# memory is read and written once. NOTE: not smaller: every block costs a few us of Python
# under the GIL, and at 16K elements two threads ran relu's backward on (64, 32, 28, 28)
# slower than one (2.95 ms; at 128K: 1.18 ms on 2 threads, 2.26 on 1, numpy's
# grad * (out > 0) 2.23).
ELEMENTWISE_BLOCK = 1 << 17  # 512 KiB of float32 per array


def elementwise(fn: Callable[..., None], out: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
    """Run fn(out_part, *parts) over matching parts of out and arrays (all of out's shape).

    The parts are cache-sized blocks of the flattened arrays when all are C-contiguous (else
    slices of the first axis), spread over get_num_threads() threads. fn must write only its
    out_part. Returns out.

    Example:
        >>> x = np.arange(-3.0, 3.0)
        >>> elementwise(lambda o, a: np.maximum(a, 0, out=o), np.empty_like(x), x)
        array([0., 0., 0., 0., 1., 2.])
    """
    elements = out.size * (1 + len(arrays))
    if not all(a.flags.c_contiguous for a in (out, *arrays)) and out.ndim > 0:

        def run_rows(start: int, stop: int) -> None:  # slices start..stop of the first axis
            fn(out[start:stop], *[a[start:stop] for a in arrays])

        parallel(run_rows, out.shape[0], elements)
        return out
    flat = [a.reshape(-1) for a in (out, *arrays)]
    size, block = out.size, ELEMENTWISE_BLOCK

    def run_blocks(start: int, stop: int) -> None:  # blocks start..stop
        for low in range(start * block, min(stop * block, size), block):
            fn(*[a[low : low + block] for a in flat])

    parallel(run_blocks, -(-size // block), elements)
    return out


# ----------------------------------------------------------------------------------------
# Padding into scratch buffers
# ----------------------------------------------------------------------------------------


def _padded(x: np.ndarray, padding: Padding, value: float, tag: str) -> np.ndarray:
    """x with `value` around its last two axes, in this thread's scratch buffer `tag`.

    x itself when there is no padding. The result is overwritten by the next call with the
    same tag: it is for values that are dead when the op returns.

    Shapes:
        x: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)
    """
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    N, C, H, W = x.shape
    xp = _workspace(tag, (N, C, H + top + bottom, W + left + right), x.dtype)

    def fill(start: int, stop: int) -> None:  # images start..stop
        part = xp[start:stop]
        part[:, :, :top] = value  # only the border is written twice; the inside is copied once
        part[:, :, H + top :] = value
        part[:, :, :, :left] = value
        part[:, :, :, W + left :] = value
        part[:, :, top : top + H, left : left + W] = x[start:stop]

    parallel(fill, N, xp.size)
    return xp


def _pad_or_crop(x: np.ndarray, sides: Padding) -> np.ndarray:
    """Pad the last two axes with zeros where a side is positive, cut where it is negative.

    The result is in the scratch buffer "gp" (or a view of x when nothing is padded).

    Shapes:
        x: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)
    """
    (top, bottom), (left, right) = sides
    H, W = x.shape[2:]
    x = x[:, :, max(-top, 0) : H - max(-bottom, 0), max(-left, 0) : W - max(-right, 0)]
    return _padded(x, ((max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))), 0.0, "gp")
