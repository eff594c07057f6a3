"""Tensor.register_hook (PyTorch semantics) and watch_backward, the engine's real order."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.tensor import watch_backward


def test_hook_on_a_leaf_sees_the_complete_gradient_once():
    b = Tensor([-3.0], requires_grad=True)
    seen = []
    b.register_hook(lambda grad: seen.append(grad.copy()))
    (Tensor([2.0]) * b + b**3).sum().backward()  # b is used twice
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [2.0 + 27.0])
    np.testing.assert_allclose(b.grad, [29.0])


def test_hook_on_an_intermediate_replaces_what_flows_on():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.register_hook(lambda grad: np.zeros_like(grad))
    (h * h).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    assert h.grad is None  # an intermediate keeps no .grad unless asked


def test_hook_replacing_a_leaf_gradient_changes_what_accumulates():
    w = Tensor([1.0], requires_grad=True)
    w.register_hook(lambda grad: grad * 10)
    (w * 2).sum().backward()
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, [40.0])


def test_hooks_run_in_registration_order_and_remove_works():
    x = Tensor([1.0], requires_grad=True)
    order = []
    first = x.register_hook(lambda grad: order.append("first"))
    x.register_hook(lambda grad: order.append("second"))
    (x * 1).sum().backward()
    first.remove()
    first.remove()  # removing twice is harmless
    x.grad = None
    (x * 1).sum().backward()
    assert order == ["first", "second", "second"]


def test_hook_returning_a_wrong_shape_is_refused():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda grad: np.ones(3))
    with pytest.raises(ValueError, match=r"hook returned a gradient of shape \(3,\)"):
        (x * 1).sum().backward()


def test_hook_on_a_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).register_hook(lambda grad: None)


def test_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    ours_x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    ref_x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    ours_h, ref_h = ours_x * ours_x, ref_x * ref_x
    ours_h.register_hook(lambda grad: grad * 2)
    ref_h.register_hook(lambda grad: grad * 2)
    (ours_h.relu() * 3).sum().backward()
    (ref_h.relu() * 3).sum().backward()
    np.testing.assert_allclose(ours_x.grad, ref_x.grad.numpy())


def test_watch_backward_visits_each_node_after_all_its_users():
    a, b = Tensor([2.0], requires_grad=True), Tensor([-3.0], requires_grad=True)
    loss = (a * b + b**3).sum()
    visits = []
    with watch_backward(lambda node, grad, sent: visits.append((node, grad.copy(), sent))):
        loss.backward()
    order = [node for node, _, _ in visits]
    position = {id(node): i for i, node in enumerate(order)}
    for node in order:
        if node._ctx is not None:
            for inp in node._ctx.inputs:
                if inp.requires_grad:
                    assert position[id(inp)] > position[id(node)]
    # b receives two contributions (from mul and from pow) that sum to its gradient
    sent_to_b = [g for _, _, sent in visits for t, g in sent if t is b]
    assert len(sent_to_b) == 2
    np.testing.assert_allclose(sum(sent_to_b), b.grad)
    last_b = [grad for node, grad, sent in visits if node is b]
    assert len(last_b) == 1 and last_b[0].item() == pytest.approx(2.0 + 27.0)


def test_watchers_are_removed_after_the_block():
    x = Tensor([1.0], requires_grad=True)
    calls = []
    with watch_backward(lambda *args: calls.append(1)):
        pass
    (x * 2).sum().backward()
    assert calls == []


def test_wrong_shaped_grad_set_by_hand_is_refused_not_broadcast():
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    w.grad = np.ones((1,), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\.grad has shape \(1,\) but the tensor has shape"):
        (w * 2).sum().backward()
