"""Grad mode and the module scope are per thread, and no_grad nests like PyTorch's."""

import threading

import numpy as np
import pytest

from tinygrad_cnn import Tensor, enable_grad, is_grad_enabled, nn, no_grad
from tinygrad_cnn.tensor import thread_state


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, release = threading.Event(), threading.Event()

    def hold_no_grad():
        with no_grad():
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold_no_grad)
    holder.start()
    try:
        assert inside.wait(10)
        w = Tensor([1.0, 2.0], requires_grad=True)
        y = (w * w).sum()  # this thread still records while the other holds no_grad
        assert is_grad_enabled() and y.requires_grad
        y.backward()
        np.testing.assert_array_equal(w.grad, [2.0, 4.0])
    finally:
        release.set()
        holder.join()


def test_a_new_thread_starts_recording_whatever_the_spawning_thread_does():
    seen = []
    with no_grad():
        thread = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


def test_recursive_no_grad_decorator_restores_recording():
    @no_grad()
    def countdown(n):
        assert not is_grad_enabled()
        return 0 if n == 0 else countdown(n - 1)

    countdown(5)
    assert is_grad_enabled()
    assert (Tensor([1.0], requires_grad=True) * 2).requires_grad


def test_one_no_grad_instance_entered_twice_restores_recording():
    guard = no_grad()
    with guard:
        with guard:
            assert not is_grad_enabled()
        assert not is_grad_enabled()  # the outer block is still open
    assert is_grad_enabled()


def test_no_grad_restores_after_an_exception():
    with pytest.raises(ValueError), no_grad():
        raise ValueError("boom")
    assert is_grad_enabled()


def test_enable_grad_inside_no_grad_records_and_restores():
    w = Tensor([3.0], requires_grad=True)
    with no_grad():
        with enable_grad():
            assert (w * 2).requires_grad
        assert not (w * 2).requires_grad
    assert is_grad_enabled()


def test_module_scope_is_per_thread():
    """A model running in one thread does not label tensors made in another."""
    started, release = threading.Event(), threading.Event()

    class Waits(nn.Module):
        def forward(self, x):
            started.set()
            release.wait(10)
            return x * 2

    model = Waits()
    runner = threading.Thread(target=lambda: model(Tensor([1.0])))
    runner.start()
    try:
        assert started.wait(10)
        assert thread_state.scope == ()
        assert Tensor([1.0])._scope == ()
    finally:
        release.set()
        runner.join()
