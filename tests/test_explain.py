"""`tinygrad-cnn explain` and `gradcheck`: the course's numbers, computed by the ops."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, explain, ops
from tinygrad_cnn.cli import main
from tinygrad_cnn.cli.explain import TOPICS, build_page, params_page
from tinygrad_cnn.cli.gradcheck_cmd import ops_without_cases, run_checks
from tinygrad_cnn.cli.render import render_plain, render_rich

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def correlate(image: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """A direct sliding-window reference, independent of conv2d."""
    KH, KW = kernel.shape
    OH, OW = (image.shape[0] - KH) // stride + 1, (image.shape[1] - KW) // stride + 1
    return np.array([[np.sum(image[i * stride : i * stride + KH, j * stride : j * stride + KW]
                             * kernel) for j in range(OW)] for i in range(OH)])  # fmt: skip


# ----------------------------------------------------------------------------------------
# explain conv
# ----------------------------------------------------------------------------------------


def test_explain_conv_shows_the_course_example(capsys):
    code, out, _ = run_cli(capsys, "explain", "conv")
    assert code == 0
    assert "5 + 1 + 3 + 0 + 1 = 10" in out
    expected = correlate(np.array(explain.COURSE_IMAGE, float), np.array(explain.COURSE_KERNEL), 1)
    assert expected[0, 0] == 10
    assert re.search(r"^\s*10\*\s+11\s+12$", out, re.MULTILINE)  # the output map's first row
    assert "padding 'same'" in out and "ceil(in / s) = ceil(5 / 1) = 5" in out
    assert "stride 2" in out and "floor((5 - 3) / 2) + 1 = 2" in out
    assert "1 row(s) on top, 1 at the bottom" in out


def test_explain_conv_values_come_from_conv2d():
    e = explain.explain_conv()
    image, kernel = np.array(explain.COURSE_IMAGE, float), np.array(explain.COURSE_KERNEL, float)
    np.testing.assert_array_equal(e.output, correlate(image, kernel, 1))
    np.testing.assert_array_equal(e.products, image[:3, :3] * kernel)
    assert e.first == 10.0
    same = explain.explain_conv(padding="same")
    np.testing.assert_array_equal(same.output, correlate(np.pad(image, 1), kernel, 1))
    strided = explain.explain_conv(stride=2)
    np.testing.assert_array_equal(strided.output, correlate(image, kernel, 2))


@pytest.mark.parametrize("stride, padding", [(2, "same"), (2, "valid"), (1, "same"), (3, 1)])
def test_explain_conv_options(capsys, stride, padding):
    image = np.arange(1.0, 31.0).reshape(5, 6) % 7
    kernel = np.array([[1.0, -1.0], [2.0, 0.5]])
    args = ["explain", "conv", "--image", str(image.tolist()), "--kernel", str(kernel.tolist()),
            "--stride", str(stride), "--padding", str(padding)]  # fmt: skip
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    e = explain.explain_conv(image, kernel, stride=stride, padding=padding)
    (top, bottom), (left, right) = e.pads
    padded = np.pad(image, ((top, bottom), (left, right)))
    np.testing.assert_array_equal(e.output, correlate(padded, kernel, stride))
    if padding == "same":  # Keras: ceil(in / s), the odd padding pixel at the bottom/right
        assert e.output.shape == (-(-5 // stride), -(-6 // stride))
        assert bottom >= top and right >= left
    assert f"output {e.output.shape[0]}x{e.output.shape[1]}" in out
    assert f"= {e.first:g}" in out


def test_explain_conv_bad_options_exit_2(capsys):
    code, _, err = run_cli(capsys, "explain", "conv", "--image", "[[1, 2]")
    assert code == 2 and "--image must be JSON" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "explain", "conv", "--kernel", "[[1, 2, 3, 4, 5, 6]]")
    assert code == 2 and "conv2d" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it before running
        main(["explain", "conv", "--padding", "full"])
    assert exit_info.value.code == 2


# ----------------------------------------------------------------------------------------
# explain pool, backward, conv-backward
# ----------------------------------------------------------------------------------------


def test_explain_pool_arg_max_mask(capsys):
    e = explain.explain_pool()
    image = np.array(explain.POOL_MAP, float)
    windows = image.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    np.testing.assert_array_equal(e.output, windows.max(axis=2))
    assert e.stride == 2  # defaults to the window
    assert e.mask.sum() == 4 and np.isclose(e.grad.sum(), e.upstream.sum())
    np.testing.assert_array_equal(np.sort(image[e.mask == 1]), np.sort(e.output.ravel()))
    np.testing.assert_allclose(e.average_grad, np.kron(e.upstream, np.ones((2, 2))) / 4)
    code, out, _ = run_cli(capsys, "explain", "pool")
    assert code == 0 and "arg-max mask" in out and "stride defaults to the window" in out


@pytest.mark.parametrize("padding", ["same", 1, "valid"])
def test_explain_pool_honours_padding(capsys, padding):
    image = [[1, 9, 2], [8, 3, 7], [4, 6, 5]]
    e = explain.explain_pool(image, 2, padding=padding)
    x = np.array(image, float)[None, None]
    expected = ops.maxpool2d(Tensor(x), 2, padding=padding).data[0, 0]
    np.testing.assert_array_equal(e.output, expected)
    assert e.output.shape == {"same": (2, 2), 1: (2, 2), "valid": (1, 1)}[padding]
    code, out, _ = run_cli(
        capsys, "explain", "pool", "--image", str(image), "--padding", str(padding)
    )
    assert code == 0
    if padding != "valid":
        assert f"padding {padding!r}" in out and "-inf" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["conv", "--stride", "0"], "explain conv: stride must be a positive int, got 0"),
        (["pool", "--kernel", "0"], "explain pool: kernel_size must be a positive int, got 0"),
        (["pool", "--stride", "0"], "explain pool: stride must be a positive int, got 0"),
        (["pool", "--kernel", "-1"], "explain pool: kernel_size must be a positive int, got -1"),
    ],
)
def test_explain_refuses_zero_sizes_instead_of_defaulting(capsys, argv, message):
    code, out, err = run_cli(capsys, "explain", *argv)
    assert code == 2 and out == ""
    assert err == f"tinygrad-cnn explain: error: {message}\n"


def test_explain_backward_default_uses_a_node_twice_and_sums_its_contributions(capsys):
    e = explain.explain_backward()  # L = a*b + b**3 at a = 2, b = -3
    steps = {s.name: s for s in e.steps}
    assert steps["L"].value == -33 and steps["a"].grad == -3
    b = steps["b"]
    assert [c.value for c in b.contributions] == [2.0, 27.0] and b.grad == 29.0  # a + 3b^2
    for step in e.steps:  # every gradient is the sum of what the node's uses sent back
        if step.name != "L":
            assert step.grad == pytest.approx(sum(c.value for c in step.contributions))
    code, out, _ = run_cli(capsys, "explain", "backward")
    assert code == 0
    assert "dL/db = dL/d(a*b) · ∂(a*b)/∂b + dL/d(b**3) · ∂(b**3)/∂b = 1·2 + 1·27 = 29" in out
    assert "b is used twice: the contributions add up" in out


def test_explain_backward_order_is_the_engines():
    """The table's order is the order in which the engine completed each node's gradient,
    seen here through tensor hooks (which fire as each gradient is complete)."""
    loss, names = explain.parse_expression("e = a*b; d = e + c; (d * e).tanh() + d", {
        "a": 0.5, "b": -0.3, "c": 0.2})  # fmt: skip
    seen = []
    for tensor, name in names.items():
        tensor.register_hook(lambda grad, name=name: seen.append(name))
    steps = explain.backward_steps(loss, names)
    assert [s.name for s in steps] == seen
    assert steps[0].name == "L" and len(steps) == len(names)


@pytest.mark.parametrize(
    "text, values",
    [
        ("a*b + b**3", {"a": 2.0, "b": -3.0}),
        ("(a - b) / (a + b) * a.exp()", {"a": 0.7, "b": -0.2}),
        ("e = a*b; d = e + c; d * e", {"a": 2.0, "b": -3.0, "c": 10.0}),
        ("(x*x).sigmoid() - x.tanh() + (2 - x).relu() + x.log() + -x", {"x": 0.6}),
    ],
)
def test_explain_backward_any_expression_matches_finite_differences(text, values):
    steps = {s.name: s for s in explain.explain_backward(text, values).steps}
    for name, value in values.items():
        eps = 1e-6
        up = explain.parse_expression(text, {**values, name: value + eps})[0].item()
        down = explain.parse_expression(text, {**values, name: value - eps})[0].item()
        assert steps[name].grad == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-8)


def test_explain_backward_expr_on_the_command_line(capsys):
    code, out, _ = run_cli(capsys, "explain", "backward", "--expr", "e = a*b; (e + c) * e",
                           "a=2", "b=-3", "c=10")  # fmt: skip
    assert code == 0 and "e is used twice: the contributions add up" in out
    assert "dL/de = dL/dL · ∂L/∂e + dL/d(e + c) · ∂(e + c)/∂e = 1·4 + (-6)·1 = -2" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--expr", "__import__('os').system('ls')"], "a call of system is not allowed"),
        (["--expr", "open('x')"], "a call of open is not allowed"),
        (["--expr", "a.__class__", "a=1"], "Attribute is not allowed"),
        (["--expr", "[a][0]", "a=1"], "Subscript is not allowed"),
        (["--expr", "lambda: a", "a=1"], "Lambda is not allowed"),
        (["--expr", "a*b", "a=2"], "no value for b; give b=NUMBER"),
        (["--expr", "a +", "a=2"], "not an expression"),
        (["--expr", "2 * 3"], "uses no variable"),
        (["--expr", "a", "a=x"], "'a=x' should read NAME=NUMBER"),
    ],
)
def test_explain_backward_refuses_what_is_not_on_the_list(capsys, argv, message):
    code, out, err = run_cli(capsys, "explain", "backward", *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_explain_backward_graph_has_the_tables_names(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "explain", "backward", "--graph", str(tmp_path / "g.dot"))
    assert code == 0
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph")
    for label in ("<B>a</B>", "<B>b</B>", "<B>a*b = mul</B>", "<B>b**3 = pow</B>", "<B>L</B>"):
        assert label in dot, label
    assert "grad 29" in dot  # the gradients the table shows


def test_explain_conv_backward(capsys):
    e = explain.explain_conv_backward()
    np.testing.assert_array_equal(e.dx, e.dx_transposed)
    np.testing.assert_array_equal(e.dx, e.dx_full)
    np.testing.assert_array_equal(e.dw, e.dw_correlation)
    np.testing.assert_array_equal(e.dw, correlate(e.x, e.upstream, 1))
    code, out, _ = run_cli(capsys, "explain", "conv-backward")
    assert code == 0 and "gradcheck on conv2d: passed" in out


# ----------------------------------------------------------------------------------------
# explain params
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("words, number", [
    (["dense", "784", "1000"], "785,000"),
    (["dense", "72000000", "1000"], "72,000,001,000"),
    (["conv", "3", "1000", "3", "3"], "28,000"),
    (["mnist-cnn"], "42,358"),
])  # fmt: skip
def test_explain_params(capsys, words, number):
    code, out, _ = run_cli(capsys, "explain", "params", *words)
    assert code == 0 and number in out


def test_explain_params_takes_inputs_then_outputs_and_says_what_m_and_n_are(capsys):
    # dense IN OUT and conv IN OUT KX KY, the order of nn.Linear and nn.Conv2d
    code, out, _ = run_cli(capsys, "explain", "params", "dense", "784", "1000")
    assert code == 0 and "m = 784 inputs, n = 1,000 neurons: n(m+1) = 785,000" in out
    code, out, _ = run_cli(capsys, "explain", "params", "conv", "1", "8", "3", "3")
    assert code == 0 and "n = 1 input channels, m = 8 filters of 3x3: m(n·kx·ky+1) = 80" in out
    from tinygrad_cnn import nn

    assert explain.conv_count(1, 8, 3, 3).count == nn.Conv2d(1, 8, 3).weight.size + 8
    assert explain.dense_count(784, 10).count == sum(
        p.size for p in nn.Linear(784, 10).parameters()
    )


def test_explain_params_counts_built_layers():
    assert explain.dense_count(784, 1000).built and explain.dense_count(784, 1000).count == 785000
    huge = explain.dense_count(72_000_000, 1000)
    assert not huge.built and huge.count == 1000 * (72_000_000 + 1)
    assert explain.conv_count(3, 1000, 3, 3).count == 1000 * (3 * 3 * 3 + 1)
    text = render_plain(params_page([]))
    assert all(n in text for n in ("785,000", "72,000,001,000", "28,000"))


def test_explain_params_unet_matches_the_model(capsys):
    from tinygrad_cnn.models import UNet

    code, out, _ = run_cli(capsys, "explain", "params", "unet")
    total = sum(p.size for p in UNet().parameters())
    assert code == 0 and f"Trainable params: {total:,}" in out


@pytest.mark.parametrize(
    "words",
    [
        ["resnet"],
        ["dense", "784"],
        ["conv", "a", "b", "c", "d"],
        ["dense", "0", "10"],
        ["mnist-cnn", "3"],
    ],
)
def test_explain_params_bad_model_exit_2(capsys, words):
    code, _, err = run_cli(capsys, "explain", "params", *words)
    assert code == 2 and err.startswith("tinygrad-cnn explain: error: explain params")


def test_every_topic_renders_with_rich(capsys):
    for topic in TOPICS:
        words = ["mnist-cnn"] if topic == "params" else []
        args = ["explain", topic, *words]
        from tinygrad_cnn.cli import build_parser

        render_rich(build_page(build_parser().parse_args(args)))
    out = capsys.readouterr().out
    assert "42,358" in out and "10" in out


def test_explain_runs_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "tinygrad_cnn", "explain", "conv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "= 10" in result.stdout and "\x1b[" not in result.stdout  # plain text in a pipe


# ----------------------------------------------------------------------------------------
# gradcheck command
# ----------------------------------------------------------------------------------------


def test_gradcheck_passes_on_every_op(capsys):
    code, out, _ = run_cli(capsys, "gradcheck")
    results = run_checks()
    assert code == 0 and all(r.passed for r in results)
    assert {"conv2d", "conv_transpose2d", "concat", "pad", "cross_entropy"} <= {
        r.name for r in results}  # fmt: skip
    assert all(r.worst < 1e-6 for r in results)
    assert f"{len(results)} of {len(results)} ops pass" in out


def test_every_public_op_has_a_gradcheck_case():
    assert ops_without_cases() == [], "add a case to _cases in tinygrad_cnn/cli/gradcheck_cmd.py"


def test_gradcheck_fails_on_a_broken_backward(capsys, monkeypatch):
    from tinygrad_cnn.ops.elementwise import MulFn

    right = MulFn.backward
    monkeypatch.setattr(MulFn, "backward", lambda self, grad: tuple(
        None if d is None else 1.5 * d for d in right(self, grad)))  # fmt: skip
    code, out, _ = run_cli(capsys, "gradcheck", "mul", "add")
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("mul") and "FAIL" in line for line in lines)
    assert any(line.startswith("add") and "pass" in line for line in lines)
    assert "mul: (3, 4) * (1, 4): GradcheckError" in out and "1 of 2 ops pass" in out


def test_gradcheck_reports_a_crashing_backward(capsys, monkeypatch):
    from tinygrad_cnn.ops.conv import Conv2dFn

    def wrong_shape(self, grad):
        return np.zeros(1), None

    monkeypatch.setattr(Conv2dFn, "backward", wrong_shape)
    code, out, _ = run_cli(capsys, "gradcheck", "conv2d")
    assert code == 1 and "FAIL" in out and "conv2d" in out


def test_gradcheck_unknown_op_exit_2(capsys):
    code, out, err = run_cli(capsys, "gradcheck", "conv2d", "conv3d")
    assert code == 2 and out == ""
    assert "unknown op 'conv3d'" in err and "conv2d" in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------
# Labels and summaries that teach: every name true, nothing cut off
# ----------------------------------------------------------------------------------------


def test_dropout_masks_are_drawn_by_name():
    from tinygrad_cnn.models import mnist_cnn
    from tinygrad_cnn.viz import to_dot

    model = mnist_cnn(seed=0)  # training mode: the two dropouts draw masks
    loss = ops.cross_entropy(model(Tensor(np.zeros((2, 1, 28, 28), np.float32))), [1, 2])
    dot = to_dot(loss)
    assert dot.count("<B>dropout mask</B>") == 3
    assert "<B>constant</B>" not in dot


def test_unet_drawing_title_is_whole():
    from tinygrad_cnn.models import UNet
    from tinygrad_cnn.viz import to_dot

    model = UNet()
    loss = model(Tensor(np.zeros((2, 1, 16, 16), np.float32))).mean()
    dot = to_dot(loss, depth=1)
    assert "up=&#x27;transpose&#x27;)" in dot and "..." not in dot


def test_summary_says_the_shared_pool_runs_four_times(capsys):
    code, out, _ = run_cli(capsys, "explain", "params", "unet")
    assert code == 0
    assert "pool (x4)" in out
    assert "pool runs 4 times (one layer, shared): its output shape is the first call's" in out
