"""The numerical gradient check: does backward agree with finite differences?

For a function f of the inputs, pick a random upstream gradient g of f's output shape and
look at the scalar L = sum(f(inputs) * g). Backward gives dL/dx analytically. Nudging one
input element by +-eps and re-evaluating gives it numerically:

    dL/dx[i]  ~=  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)       (central difference)

The error of the central difference is O(eps^2), so in float64 with eps = 1e-6 the two agree
to about 1e-8 unless backward is wrong. A random g (not ones) matters: with ones, a backward
that forgets to transpose passes on square inputs.

Read next: `nn/module.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tinygrad_cnn.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with the numerical one.

    An AssertionError, so a failed check reads as a failed test in pytest.

    Example:
        >>> issubclass(GradcheckError, AssertionError)
        True
    """


def compare_gradients(
    fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6, seed: int = 0
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The analytic and the numerical gradient of each input that requires grad, in float64.

    Returns:
        one (input index, analytic, numeric) triple per checked input, both arrays in that
        input's shape. The inputs themselves are left as they were (float64 copies are used).
    Example:
        >>> x = Tensor(np.array([3.0, -1.0]), requires_grad=True)
        >>> [(i, a, n.round(6)) for i, a, n in compare_gradients(lambda x: (x * x).sum(), [x])]
        [(0, array([ 6., -2.]), array([ 6., -2.]))]
    """
    copies = [
        Tensor(np.array(t.data, dtype=np.float64), requires_grad=t.requires_grad) for t in inputs
    ]
    checked = [i for i, t in enumerate(copies) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")

    out = fn(*copies)
    # a scalar output is checked as it is; any other is reduced with a random g (not ones)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    if out.size == 1:
        upstream = np.ones(out.shape)

    def objective() -> float:  # L = sum(fn(inputs) * g)
        with no_grad():
            return float(np.sum(fn(*copies).data * upstream))

    if out.requires_grad:
        out.backward(upstream)

    results = []
    for i in checked:
        x = copies[i]
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        numeric = np.empty_like(x.data)
        flat, flat_numeric = x.data.reshape(-1), numeric.reshape(-1)  # views: nudging flat nudges x
        for j in range(flat.size):
            original = flat[j]
            flat[j] = original + eps
            plus = objective()
            flat[j] = original - eps
            minus = objective()
            flat[j] = original
            flat_numeric[j] = (plus - minus) / (2 * eps)
        results.append((i, analytic, numeric))
    return results


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Compare `fn`'s backward with central differences, in float64, for each input that
    requires grad.

    The inputs are copied to float64, so their values and `.grad` are left as they were.

    Args:
        fn: maps the input tensors to one output tensor (any shape).
        inputs: the tensors passed to `fn`; those with requires_grad=True are checked.
        eps: the finite-difference step.
        atol, rtol: an element passes when |analytic - numeric| <= atol + rtol * |numeric|.
        seed: seeds the random upstream gradient.
    Returns:
        True when every element passes.
    Raises:
        GradcheckError (an AssertionError): naming the input, the element, and the numeric and
            analytic values of the worst mismatch.
    Example:
        >>> x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
        >>> gradcheck(lambda x: x * x, [x])
        True
    """
    assert_gradients_close(compare_gradients(fn, inputs, eps, seed), atol, rtol)
    return True


def assert_gradients_close(
    pairs: list[tuple[int, np.ndarray, np.ndarray]], atol: float = 1e-5, rtol: float = 1e-3
) -> None:
    """Raise GradcheckError naming the worst element of `compare_gradients`' pairs that is off
    by more than atol + rtol * |numeric| (a nan gradient always counts as off).

    Raises:
        GradcheckError: some element is off; the message names the input, index and values.
    Example:
        >>> assert_gradients_close([(0, np.array([2.0]), np.array([2.0 + 1e-9]))])  # passes
        >>> try:
        ...     assert_gradients_close([(0, np.array([1.0, 2.0]), np.array([1.0, 3.0]))])
        ... except GradcheckError as error:
        ...     print(str(error).split(" (atol")[0])
        gradcheck: gradient of input 0 (shape (2,)) is wrong at index (1,): numeric 3, analytic 2
    """
    worst = None  # (excess error, input index, element index, numeric, analytic)
    for i, analytic, numeric in pairs:
        excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        excess = np.where(np.isnan(excess), np.inf, excess)
        j = np.unravel_index(np.argmax(excess), excess.shape)
        if excess[j] > 0 and (worst is None or excess[j] > worst[0]):
            worst = (excess[j], i, j, numeric[j], analytic[j], analytic.shape)
    if worst is not None:
        _, i, index, numeric, got, shape = worst
        raise GradcheckError(
            f"gradcheck: gradient of input {i} (shape {shape}) is wrong at index "
            f"{tuple(int(k) for k in index)}: numeric {numeric:.8g}, analytic {got:.8g} "
            f"(atol {atol}, rtol {rtol})"
        )
