"""Tests of the compute-graph drawings (tinygrad_cnn.viz): read the DOT text, render with `dot`."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, ops
from tinygrad_cnn.viz import GraphvizMissingError, draw_graph, save_graph, to_dot
from tinygrad_cnn.viz.build import walk

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def node_ids(dot: str, prefix: str) -> list[str]:
    """Ids of the nodes of one kind (op, leaf, out, grad, mod) declared in the DOT text."""
    return re.findall(rf"^\s*({prefix}\d+) \[", dot, flags=re.MULTILINE)


def clusters(dot: str) -> dict[str, str | None]:
    """{cluster title: title of the cluster it sits in (None at the top)}, tags stripped."""
    parents: dict[str, str | None] = {}
    stack: list[str | None] = []
    for line in dot.splitlines():
        if re.match(r"\s*subgraph cluster_\d+ \{", line):
            stack.append(None)
        elif stack and stack[-1] is None and "label=<" in line and "subgraph" not in line:
            title = re.sub(r"<[^>]*>", "", re.search(r"label=<(.*)> labeljust", line).group(1))
            stack[-1] = title
            parents[title] = stack[-2] if len(stack) > 1 else None
        elif line.strip() == "}" and stack:
            stack.pop()
    return parents


class Net(nn.Module):
    """features (conv, relu) -> flatten -> head: nested modules for the cluster tests."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU())
        self.head = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.head(ops.flatten(self.features(x)))


def net_loss(seed: int = 0):
    nn.manual_seed(seed)
    model = Net()
    x = Tensor(np.random.default_rng(seed).standard_normal((2, 1, 6, 6)).astype(np.float32))
    x.name = "images"
    return model, ops.cross_entropy(model(x), np.array([0, 2]))


def expression():
    """relu(a * b + c).sum(): 4 ops, 3 leaves."""
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal((3, 4)))
    c = Tensor(rng.standard_normal(4), requires_grad=True)
    a.name = "a"
    return (a * b + c).relu().sum(), (a, b, c)


# --- forward view ----------------------------------------------------------------------


def test_one_node_per_op_and_per_leaf():
    loss, _ = expression()
    dot = to_dot(loss)
    assert len(node_ids(dot, "op")) == 4  # mul, add, relu, sum
    assert len(node_ids(dot, "leaf")) == 3
    assert len(node_ids(dot, "out")) == 1
    for name in ("mul", "add", "relu", "sum"):
        assert f"<B>{name}</B>" in dot


def test_leaf_kinds_and_legend():
    loss, (a, b, c) = expression()
    dot = to_dot(loss * 2.0)
    # a is named and requires grad (a parameter), c requires grad without a name, b is an input
    assert re.search(r"<B>a</B>.*fillcolor=\"#bfdbfe\"", dot)
    assert re.search(r"<B>tensor</B>.*style=\"filled,dashed\"", dot)
    assert re.search(r"<B>input</B>.*fillcolor=\"#fef3c7\"", dot)
    assert re.search(r"<B>2.0000</B>.*shape=ellipse", dot)  # the constant 2.0
    for text in ("parameter (named)", "tensor requiring grad", "input (no grad)", "constant"):
        assert text in dot


def test_edges_carry_shapes_and_dtype():
    loss, _ = expression()
    dot = to_dot(loss)
    assert re.search(r'op\d+ -> op\d+ \[label=" \(3, 4\) f64"\]', dot)
    assert '" (4,) f64"' in dot
    assert "(3, 4) f64" not in to_dot(loss, show_shapes=False)


def test_scalars_show_values_like_micrograd():
    x = Tensor(np.float64(3.0), requires_grad=True)
    y = x * x
    assert "data 9.0000" in to_dot(y)


def test_conv_label_names_the_layer_padding_and_stride():
    nn.manual_seed(0)
    layer = nn.Conv2d(1, 2, 3, stride=2, padding="same")
    dot = to_dot(layer(Tensor(np.zeros((1, 1, 8, 8), np.float32))))
    assert "3x3 stride 2 padding &#x27;same&#x27;" in dot


def test_parameter_names_and_nested_module_clusters():
    model, loss = net_loss()
    dot = to_dot(loss)
    for name in ("features.0.weight", "features.0.bias", "head.weight", "head.bias"):
        assert f"<B>{name}</B>" in dot
    tree = clusters(dot)
    assert tree["Net"] is None
    assert tree["features: Sequential"] == "Net"
    assert (
        tree["features.0: Conv2d(1 -&gt; 4, k=3, padding=&#x27;same&#x27;)"]
        == "features: Sequential"
    )
    assert tree["features.1: ReLU"] == "features: Sequential"
    assert tree["head: Linear(144 -&gt; 3)"] == "Net"


class Twice(nn.Module):
    """One block (a module with submodules) called twice: the same weights, two calls."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(3, 3), nn.ReLU())

    def forward(self, x):
        return self.block(self.block(x))


def test_a_module_called_twice_is_two_boxes_with_its_parameters_in_the_first():
    nn.manual_seed(0)
    out = Twice()(Tensor(np.ones((2, 3), dtype=np.float32))).sum()
    dot = to_dot(out)
    titles = re.findall(r"label=<<B>([^<]*)</B>", dot)
    assert titles.count("block") == 2 and titles.count("block.0") == 2
    assert dot.count("<B>block.0.weight</B>") == 1  # one leaf, used by both calls
    # the weight is declared inside the first block box: before the second box opens
    first, second = [m.start() for m in re.finditer(r"<B>block</B>", dot)]
    assert first < dot.index("<B>block.0.weight</B>") < second
    folded = to_dot(out, depth=1)
    assert len(node_ids(folded, "mod")) == 2  # one node per call of block
    assert folded.count("12 params") == 2  # each call is the whole block: 3 * (3 + 1)


def test_depth_folds_modules_into_nodes_with_parameter_counts():
    _, loss = net_loss()
    full, depth1, depth2 = (to_dot(loss, depth=d) for d in (None, 1, 2))
    count = [len(re.findall(r"^\s*\w+\d+ \[", dot, flags=re.MULTILINE)) for dot in
             (full, depth1, depth2, to_dot(loss, depth=0))]  # fmt: skip
    assert count[0] > count[2] > count[1] > count[3]
    assert len(node_ids(depth1, "mod")) == 2  # features, head
    assert "40 params" in depth2  # Conv2d(1 -> 4, k=3): 4 * (1*3*3 + 1)
    assert "435 params" in depth1 and "40 params" in depth1  # head: 3 * (144 + 1)
    assert "(2, 1, 6, 6) -&gt; (2, 4, 6, 6)" in depth1  # features: in -> out shapes
    assert "475 params" in to_dot(loss, depth=0)  # the whole model
    assert "features.0.weight" not in depth1


def test_max_nodes_suggests_depth():
    _, loss = net_loss()
    with pytest.raises(ValueError, match=r"more than max_nodes=5.*depth=1"):
        draw_graph(loss, max_nodes=5)
    draw_graph(loss, max_nodes=8, depth=0)  # fits once folded
    with pytest.raises(ValueError, match=r"more than max_nodes=5; pass a larger max_nodes=$"):
        draw_graph(loss, max_nodes=5, depth=0)


def test_bad_arguments():
    loss, _ = expression()
    with pytest.raises(TypeError, match="draw_graph: root must be a Tensor"):
        draw_graph(np.zeros(3))
    with pytest.raises(ValueError, match="direction must be one of"):
        draw_graph(loss, direction="up")
    with pytest.raises(ValueError, match="depth must be None or an int >= 0"):
        draw_graph(loss, depth=-1)


def test_several_roots():
    loss, (a, _, c) = expression()
    other = (a * 3.0).mean()
    dot = to_dot([loss, other])
    assert len(node_ids(dot, "out")) == 2
    assert dot.count("<B>a</B>") == 1  # a shared leaf is drawn once


# --- backward view and gradients -------------------------------------------------------


def test_backward_view_has_one_node_per_grad_function():
    _, loss = net_loss()
    functions = [t for t in walk([loss]) if t._ctx is not None]
    dot = to_dot(loss, backward=True)
    assert len(node_ids(dot, "grad")) == len(functions)
    assert "<B>conv2d backward</B>" in dot
    assert "<B>images</B>" not in dot  # no gradient flows to the input
    assert "features.0.weight" in dot
    folded = to_dot(loss, backward=True, depth=1)
    assert len(node_ids(folded, "grad")) < len(functions) and "435 params" in folded


def test_show_grads_after_backward_and_nan_highlight():
    loss, (a, b, c) = expression()
    loss.backward()
    dot = to_dot(loss, show_grads=True)
    norm = np.linalg.norm(a.grad)
    assert f"grad (3, 4) norm {norm:.4f}" in dot
    assert "grad [" in dot  # c (4 values) shows its gradient's values
    a.grad[0, 0] = np.nan
    c.grad[1] = np.inf
    dot = to_dot(loss, show_grads=True)
    assert "1 NaN/inf value" in dot and dot.count('color="#dc2626"') >= 2


def test_drawing_changes_no_value_or_gradient():
    model, loss = net_loss()
    loss.backward(retain_graph=True)
    before = {n: (p.data.copy(), p.grad.copy()) for n, p in model.named_parameters()}
    loss_value = loss.data.copy()
    for options in ({}, {"backward": True}, {"show_grads": True, "depth": 1}, {"depth": 0}):
        to_dot(loss, **options)
    assert np.array_equal(loss.data, loss_value)
    for name, parameter in model.named_parameters():
        assert np.array_equal(parameter.data, before[name][0])
        assert np.array_equal(parameter.grad, before[name][1])


# --- text: escaping, determinism -------------------------------------------------------


class Odd(nn.Module):
    def extra_repr(self):
        return "<&> \"quoted\" 'single' {braces}"

    def forward(self, x):
        return x * 2.0


def test_escaping_survives_odd_names():
    model = nn.Sequential(Odd())
    setattr(model, "<&>", nn.Identity())  # a child named <&>
    x = Tensor(np.ones(3), requires_grad=True)
    x.name = 'x<&>"{}'
    y = model(x)
    dot = to_dot(y)
    assert "&lt;&amp;&gt; &quot;quoted&quot; &#x27;single&#x27; {braces}" in dot
    assert "x&lt;&amp;&gt;&quot;{}" in dot
    assert "<&>" not in dot.replace("label=<", "").replace("> ", "")
    if shutil.which("dot"):
        svg = draw_graph(y).pipe(format="svg").decode()
        assert "&lt;&amp;&gt;" in svg and "{braces}" in svg


def test_dot_text_is_deterministic():
    _, loss = net_loss()
    assert to_dot(loss, depth=1) == to_dot(loss, depth=1)
    assert to_dot(net_loss()[1]) == to_dot(net_loss()[1])  # same model built twice


# --- rendering --------------------------------------------------------------------------


@needs_dot
def test_render_svg_contains_cluster_titles(tmp_path):
    _, loss = net_loss()
    path = save_graph(draw_graph(loss, title="Net"), tmp_path / "net.svg")
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text())]
    for title in ("Net", "features", ": Sequential", "features.0", "head", ": Linear(144 -> 3)"):
        assert title in texts
    assert ": Conv2d(1 -> 4, k=3, padding='same')" in texts
    assert "features.0.weight" in texts
    assert not (tmp_path / "net.gv").exists()  # the DOT source is cleaned up on success


def test_missing_dot_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    loss, _ = expression()
    assert to_dot(loss).startswith("digraph")  # still works without Graphviz
    with pytest.raises(GraphvizMissingError) as error:
        save_graph(draw_graph(loss), tmp_path / "out.svg")
    message = str(error.value)
    for hint in ("apt install graphviz", "brew install graphviz", "conda install graphviz"):
        assert hint in message
    assert str(tmp_path / "out.gv") in message and (tmp_path / "out.gv").exists()
    assert save_graph(draw_graph(loss), tmp_path / "out.dot").read_text().startswith("digraph")


def test_save_graph_rejects_unknown_suffix(tmp_path):
    loss, _ = expression()
    with pytest.raises(ValueError, match=r"save_graph: 'g.jpeg' should end in .svg"):
        save_graph(draw_graph(loss), tmp_path / "g.jpeg")


# --- the command line -------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tinygrad_cnn", "graph", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip


def test_cli_micrograd_example_shows_micrograd_numbers(tmp_path):
    result = run_cli("--example", "micrograd", "--out", str(tmp_path / "m.dot"))
    assert result.returncode == 0, result.stderr
    dot = (tmp_path / "m.dot").read_text()
    for number in ("24.7041", "138.8338", "645.5773"):  # g, dg/da, dg/db in micrograd's README
        assert number in dot


@needs_dot
def test_cli_draws_the_mnist_cnn(tmp_path):
    out = tmp_path / "cnn.svg"
    result = run_cli("--model", "mnist-cnn", "--depth", "1", "--grads", "--out", str(out))
    assert result.returncode == 0, result.stderr
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", out.read_text())]
    assert ": Conv2d(1 -> 8, k=3)" in texts and "80 params" in texts


def test_cli_reports_too_large_graphs(tmp_path):
    result = run_cli("--model", "mnist-cnn", "--max-nodes", "10", "--out", str(tmp_path / "x.dot"))
    assert result.returncode == 2
    assert "max_nodes=10" in result.stderr and "depth" in result.stderr


def test_runs_compared_are_named_in_the_legend_with_or_without_validation(monkeypatch, tmp_path):
    from tinygrad_cnn.viz import train_plots

    drawn = []
    monkeypatch.setattr(train_plots, "_save", lambda figure, path: drawn.append(figure) or path)
    with_val = [{"epoch": e, "loss": 1 / e, "accuracy": 0.9, "val_loss": 1 / e, "val_accuracy": 0.9}
                for e in (1, 2)]  # fmt: skip
    without_val = [{"epoch": e, "loss": 1 / e, "accuracy": 0.9} for e in (1, 2)]
    train_plots.plot_runs([with_val, without_val], ["lr=0.001", "lr=0.002"], tmp_path / "c.png")
    legend = drawn[0].axes[1].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["lr=0.001", "lr=0.002"]
