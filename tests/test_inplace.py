"""In-place edits of what backward needs raise; they never bend a gradient silently."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim


def test_writing_into_a_saved_input_raises_at_the_write():
    x = Tensor([1.0, 2.0, 3.0])
    w = Tensor([1.0, 1.0, 1.0], requires_grad=True)
    y = (x * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.data[...] = 100
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])  # the values forward saw
    x.data[...] = 100  # backward released the graph: writable again
    np.testing.assert_array_equal(x.data, [100.0, 100.0, 100.0])


def test_writing_into_a_saved_output_raises():
    x = Tensor([0.0, 1.0], requires_grad=True)
    y = x.exp()  # exp's backward reads its output
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 5.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.exp([0.0, 1.0]), rtol=1e-6)


def test_optimizer_step_between_forward_and_backward_is_refused_by_backward():
    w = nn.Parameter(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    loss = (w * w).sum()
    w.grad = np.ones(3, dtype=np.float32)  # a gradient from some earlier step
    opt = optim.SGD([w], lr=0.1)
    opt.step()  # allowed: w gets a fresh array, the pending graph keeps the old one
    np.testing.assert_allclose(w.data, [0.9, 1.9, 2.9], rtol=1e-6)
    with pytest.raises(RuntimeError, match=r"mul saved input 0 .*modified in place.*0 -> 1"):
        loss.backward()


@pytest.mark.parametrize("edit", ["assign", "augmented"])
def test_replacing_data_before_backward_is_refused(edit):
    x = Tensor([1.0, 2.0])
    w = Tensor([1.0, 1.0], requires_grad=True)
    y = (x * w).sum()
    if edit == "assign":
        x.data = np.array([100.0, 100.0], dtype=np.float32)
    else:
        with pytest.raises(ValueError, match="read-only"):  # numpy refuses the in-place add
            x.data += 1
        x.data = x.data + 1
    with pytest.raises(RuntimeError, match="mul saved input 0 .*a leaf of shape \\(2,\\)"):
        y.backward()


def test_the_error_names_an_intermediate_and_a_named_tensor():
    w = Tensor([1.0, 2.0], requires_grad=True)
    w.name = "w"
    h = w.relu()
    y = (h * w).sum()
    w.data = np.zeros(2, dtype=np.float32)
    with pytest.raises(RuntimeError, match="mul saved input 1 \\('w', a leaf"):
        y.backward()


def test_load_state_dict_between_forward_and_backward_is_refused():
    layer = nn.Linear(2, 1)
    loss = layer(Tensor([[1.0, 2.0]])).sum()
    layer.load_state_dict({"weight": np.ones((1, 2)), "bias": np.zeros(1)})
    np.testing.assert_array_equal(layer.weight.data, [[1.0, 1.0]])
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_a_dropped_graph_unfreezes_its_arrays():
    x = Tensor([1.0, 2.0])
    w = Tensor([1.0, 1.0], requires_grad=True)
    y = (x * w).sum()
    assert not x.data.flags.writeable
    del y  # nothing can run backward through it any more
    assert x.data.flags.writeable
    x.data[0] = 7.0


def test_an_array_saved_by_two_pending_graphs_stays_frozen_until_both_are_done():
    x = Tensor([1.0, 2.0], requires_grad=True)
    first, second = (x * 2).sum(), (x * 3).sum()
    first.backward()
    assert not x.data.flags.writeable  # the second graph still needs it
    second.backward()
    assert x.data.flags.writeable
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])


def test_retain_graph_keeps_arrays_frozen_and_a_later_step_is_caught():
    w = nn.Parameter(np.array([2.0], dtype=np.float32))
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_the_ordinary_training_loop_updates_parameters_in_place():
    layer = nn.Linear(3, 2)
    weight = layer.weight.data
    opt = optim.Adam(layer.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        layer(Tensor(np.ones((4, 3)))).sum().backward()
        opt.step()
    assert layer.weight.data is weight  # no copies when no graph is pending
    assert weight.flags.writeable


def test_a_user_array_given_to_a_tensor_is_protected_while_saved():
    array = np.array([1.0, 2.0])
    w = Tensor([1.0, 1.0], requires_grad=True)
    y = (Tensor(array) * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 9.0  # the very array the graph saved
    y.backward()
    array[0] = 9.0
    np.testing.assert_array_equal(w.grad, [1.0, 2.0])


def test_a_graph_freed_during_a_release_does_not_deadlock():
    """Freeing memory can run other code at any point: a finalizer, or the cyclic garbage
    collector finalizing another graph's node, whose release takes the pin lock too. Here the
    old array of `w` is freed inside the lock `y`'s release holds, and its finalizer drops
    another graph: that must not wait forever for the lock its own thread holds."""
    import threading
    import weakref

    def work():
        w = Tensor(np.ones(3), requires_grad=True)
        y = w + 1  # pins w's array (add keeps no array of its own)
        others = [Tensor(np.ones(3), requires_grad=True) * 3]  # another pending graph
        w.data = np.zeros(3)  # replaced: the pinned old array lives on only for y's graph
        weakref.finalize(w._frozen, others.clear)  # when it is freed, drop the other graph
        del y  # y's node releases w: frees the old array inside the lock

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "a release deadlocked on its own lock"
