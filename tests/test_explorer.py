"""The graph explorer's data contract, its recorder, and `tinygrad-cnn graph --out FILE.html`
(no browser here: see test_explorer_browser.py for the page itself)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, checkpoint, nn
from tinygrad_cnn.cli import main
from tinygrad_cnn.cli.graph import expression, micrograd_expression, model_loss
from tinygrad_cnn.models import mnist_cnn
from tinygrad_cnn.viz import explore
from tinygrad_cnn.viz.explore import Page
from tinygrad_cnn.viz.record import record_backward

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


def page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', text, re.S)
    return json.loads(match.group(1), parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def graph(capsys, *args: str) -> tuple[int, str]:
    """Run `tinygrad-cnn graph ARGS` in this process; (exit status, what it wrote to stderr)."""
    capsys.readouterr()
    try:
        status = main(["graph", *args])
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    return status, capsys.readouterr().err


@pytest.fixture(scope="module")
def micrograd(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore") / "micrograd.html"
    return explore(micrograd_expression(backward=False), path)


# --- the recorder ---------------------------------------------------------------------------


def test_recorder_sees_each_node_once_with_its_complete_gradient():
    a, b = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True)
    c = a * b
    out = c + c * b  # c is used twice, b three times
    visits = record_backward(out)
    assert len(visits) == len({id(v.node) for v in visits}) == 5
    grads = {id(v.node): float(v.grad) for v in visits}
    assert grads[id(c)] == pytest.approx(1 + b.item())
    assert grads[id(a)] == pytest.approx(float(a.grad)) and float(a.grad) == pytest.approx(6.0)
    assert grads[id(b)] == pytest.approx(float(b.grad))
    leaf = next(v for v in visits if v.node is a)
    assert leaf.sent == ()


def test_recorder_follows_the_engines_order():
    """The order is the engine's: each node after every node that uses it."""
    x = Tensor(np.arange(4.0), requires_grad=True)
    y = (x * 2).relu()
    z = (y.sum() + (y * x).sum()) * 3
    order = [v.node for v in record_backward(z)]
    position = {id(t): i for i, t in enumerate(order)}
    for node in order:
        for inp in node._ctx.inputs if node._ctx else ():
            if inp.requires_grad:
                assert position[id(inp)] > position[id(node)]


def test_recorded_order_is_the_order_the_engines_hooks_see():
    from tinygrad_cnn.viz.build import walk

    a, b = Tensor(-4.0, requires_grad=True), Tensor(2.0, requires_grad=True)
    c = a + b
    out = (c * c + (b - a).relu()) ** 2
    seen = []
    for tensor in walk([out]):
        if tensor.requires_grad:
            tensor.register_hook(lambda grad, t=tensor: seen.append(id(t)))
    assert [id(v.node) for v in record_backward(out)] == seen


# --- the page's data ------------------------------------------------------------------------


def test_micrograd_page_data_contract(micrograd):
    data = page_data(micrograd)
    assert set(data) >= {"title", "nodes", "edges", "steps", "modules", "folded", "layouts"}
    keys = {"id", "label", "op", "kind", "shape", "dtype", "value", "grad", "module", "source"}
    assert all(set(node) == keys for node in data["nodes"])
    by_label = {n["label"].split("\n")[0]: n for n in data["nodes"] if n["kind"] != "op"}
    assert by_label["a"]["grad"] == pytest.approx(138.8338, abs=1e-4)
    assert by_label["b"]["grad"] == pytest.approx(645.5773, abs=1e-4)
    assert by_label["a"]["value"] == -4.0 and by_label["a"]["shape"] == []
    ids = {n["id"] for n in data["nodes"]}
    assert all(src in ids and dst in ids for src, dst in data["edges"])
    # one step per node that backward visits: every op and both leaves, the output's op first
    ops = [n for n in data["nodes"] if n["kind"] == "op"]
    assert len(data["steps"]) == len(ops) + 2
    last_op = next(src for src, dst in data["edges"] if dst.startswith("out"))
    assert data["steps"][0]["node"] == last_op and data["steps"][0]["grad"] == 1.0
    for step in data["steps"]:
        assert step["node"] in ids and isinstance(step["text"], str)
        for sent in step["sent"]:
            assert sent["to"] in ids and isinstance(sent["text"], str)
    text = micrograd.read_text()
    for node_id in ids:
        assert f'data-node="{node_id}"' in text


def test_step_texts_show_the_chain_rule_with_numbers(micrograd):
    steps = page_data(micrograd)["steps"]
    sent = [s["text"] for step in steps for s in step["sent"]]
    assert "upstream 0.4958 × local d(pow)/d(x) = 2x = −14 → −6.942 to `sub`" in sent
    # a node used twice gets its contributions added up as they arrive
    assert any("second contribution:" in text and " + " in text for text in sent)
    assert any("has all 2 contributions" in step["text"] for step in steps)


def test_op_nodes_carry_their_source_lines(micrograd):
    nodes = page_data(micrograd)["nodes"]
    mul = next(n for n in nodes if n["op"] == "mul")
    source = mul["source"]
    assert source["file"] == "tinygrad_cnn/ops/elementwise.py" and source["class"] == "MulFn"
    lines = (ROOT / source["file"]).read_text().splitlines()
    assert lines[source["backward"]["line"] - 1].strip().startswith("def backward")
    assert "grad * self.y" in source["backward"]["code"]


def test_page_is_self_contained_and_small(tmp_path):
    path = explore(model_loss("mnist-cnn", 2, None), tmp_path / "cnn.html")
    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size <= 5 * 2**20
    # the only addresses are namespace names (XML and the script's createElementNS)
    without_namespaces = re.sub(r'"http://www\.w3\.org/[^"]*"', "", text)
    assert "http://" not in without_namespaces and "https://" not in without_namespaces
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(?!data:)", text)
    data = page_data(path)
    conv = next(n for n in data["nodes"] if n["op"] == "conv2d")
    heat = conv["value"]["heatmap"]
    assert conv["module"] == "0" and conv["shape"] == [2, 8, 26, 26]
    assert (heat["channels"], heat["of"], heat["h"], heat["w"]) == (4, 8, 26, 26)
    texts = [sent["text"] for step in data["steps"] for sent in step["sent"]]
    assert any(t.startswith("sends a (2, 8, 26, 26) array (mean ") for t in texts)
    weight = next(n for n in data["nodes"] if n["label"].startswith("0.weight"))
    assert weight["kind"] == "parameter" and isinstance(weight["grad"]["norm"], float)


def test_explore_starts_folded_at_the_depth_given(tmp_path):
    data = page_data(explore(model_loss("mnist-cnn", 1, 12), tmp_path / "g.html", depth=1))
    levels = {m["id"]: m["level"] for m in data["modules"]}
    assert data["folded"] and all(levels[box] == 2 for box in data["folded"])
    assert [layout["depth"] for layout in data["layouts"]] == [0, 1, 2]
    parents = {m["id"]: m["parent"] for m in data["modules"]}
    assert all(parents[box] is not None for box in data["folded"])


def test_explore_without_a_path_returns_a_page_for_jupyter():
    a = Tensor(2.0, requires_grad=True)
    page = explore(a * a)
    assert isinstance(page, Page) and page._repr_html_().startswith("<iframe srcdoc=")
    assert 'id="graph-data"' in str(page)


def test_explore_refuses_bad_input_before_running_backward():
    a = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="explore: root must be a Tensor"):
        explore(np.ones(1))
    with pytest.raises(ValueError, match=r"one element .* shape \(2,\)"):
        explore(a * 2)
    with pytest.raises(ValueError, match="depth"):
        explore((a * 2).sum(), depth=-1)
    with pytest.raises(ValueError, match="max_nodes"):
        explore((a * 2).sum(), max_nodes=1)
    assert a.grad is None  # nothing ran
    loss = (a * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed"):
        explore(loss)


def test_nonfinite_values_keep_the_json_strict(tmp_path):
    x = Tensor(np.array([1.0, np.inf, np.nan]), requires_grad=True)
    data = page_data(explore((x * 2).sum(), tmp_path / "nan.html"))
    leaf = next(n for n in data["nodes"] if n["kind"] != "op" and n["kind"] != "output")
    assert leaf["value"]["nonfinite"] == 2


# --- the command line -----------------------------------------------------------------------


def test_expression_reader_allows_only_arithmetic():
    out = expression("(a*b + b**3).relu() + 2 * -a", ["a=2", "b=-3"])
    assert out.item() == pytest.approx(-4.0)
    for bad, message in [
        ("__import__('os').system('true')", "call of system is not allowed"),
        ("a.data", "Attribute is not allowed"),
        ("[a, b]", "List is not allowed"),
        ("c * 2", "no value for c"),
        ("a +", "not an expression"),
        ("2 + 3", "uses no variable"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            expression(bad, ["a=2", "b=-3"])
    with pytest.raises(ValueError, match="should be a number"):
        expression("a", ["a=two"])


@needs_dot
def test_cli_writes_the_explorer_for_an_expression(tmp_path, capsys):
    out = str(tmp_path / "e.html")
    status, err = graph(capsys, "--expr", "(a*b + b**3).relu()", "a=2", "b=-3", "--out", out)
    assert status == 0, err
    data = page_data(tmp_path / "e.html")
    assert data["title"] == "(a*b + b**3).relu()"
    relu = data["steps"][0]
    assert relu["sent"][0]["text"].startswith("upstream 1 × local d(relu)/d(x) = 0 (x ≤ 0) = 0")


@needs_dot
def test_cli_explores_a_checkpoint_on_one_test_image(tmp_path, capsys):
    nn.manual_seed(0)
    model = mnist_cnn(image_size=28, seed=0)
    path = checkpoint.save(model, tmp_path / "model.safetensors", metadata={"dataset": "shapes"})
    status, err = graph(capsys, str(path), "--index", "7", "--out", str(tmp_path / "g.html"))
    assert status == 0, err
    data = page_data(tmp_path / "g.html")
    assert "test image 7" in data["title"]
    assert any(n["label"].startswith("test image 7") for n in data["nodes"])


@needs_dot
@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_graph_never_touches_a_file_beside_out(tmp_path, capsys, suffix):
    (tmp_path / "net.gv").write_text("the user's own notes")
    before = sorted(p.name for p in tmp_path.iterdir())
    status, err = graph(capsys, "--example", "micrograd", "--out", str(tmp_path / f"net.{suffix}"))
    assert status == 0, err
    assert (tmp_path / "net.gv").read_text() == "the user's own notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before + [f"net.{suffix}"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "mnist-cnn", "--size", "100000"], "--size must be between 8 and 256"),
        (["--model", "mnist-cnn", "--batch", "0"], "--batch must be between 1 and 64"),
        (["--model", "unet", "--batch", "1000000"], "--batch must be between 1 and 64"),
        (["--model", "unet", "--max-nodes", "0"], "--max-nodes must be between"),
        (["--model", "unet", "--depth", "-1"], "--depth must be between 0 and 32"),
        (["x.safetensors", "--index", "-1"], "--index must be >= 0"),
        (["--model", "unet", "--example", "micrograd"], "give one of --model"),
        ([], "give one of --model"),
        (["--model", "unet", "a=2"], "NAME=VALUE arguments go with --expr"),
        (["--example", "micrograd", "--backward"], "drop --backward"),
        (["--example", "micrograd", "--screenshot-step", "2"], "give --out FILE.png"),
    ],
)
def test_graph_bounds_its_arguments(tmp_path, capsys, args, message):
    out = tmp_path / ("g.html" if "--backward" in args else "g.svg")
    status, err = graph(capsys, *args, "--out", str(out))
    assert status == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_model_loss_is_the_same_every_time():
    assert model_loss("unet", 2, 16).item() == model_loss("unet", 2, 16).item()


# --- the animated GIF -----------------------------------------------------------------------


@needs_dot
def test_animate_backward_writes_one_frame_per_step(tmp_path):
    from PIL import Image

    from tinygrad_cnn.viz.animate import animate_backward

    a, b = Tensor(2.0, requires_grad=True), Tensor(-3.0, requires_grad=True)
    path = animate_backward((a * b + b**3).relu(), tmp_path / "b.gif")
    with Image.open(path) as image:
        assert image.format == "GIF" and image.n_frames == 1 + 6  # the start, then 6 nodes
    with pytest.raises(ValueError, match="should end in .gif"):
        animate_backward(a * b, tmp_path / "b.png")


@needs_dot
def test_explain_backward_animate(tmp_path, capsys):
    out = tmp_path / "backward.gif"
    assert main(["explain", "backward", "--animate", str(out)]) == 0
    assert f"animation written to {out}" in capsys.readouterr().out
    assert out.stat().st_size > 1000
    assert main(["explain", "conv", "--animate", str(tmp_path / "c.gif")]) == 2
    assert "--animate goes with `explain backward`" in capsys.readouterr().err
    assert not (tmp_path / "c.gif").exists()


@needs_dot
def test_graph_out_gif_animates_backward(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "b.gif"
    status, err = graph(
        capsys, "--expr", "(a*b + c)*f", "a=2", "b=-3", "c=10", "f=-2", "--out", str(out)
    )
    assert status == 0, err
    with Image.open(out) as image:
        assert image.n_frames == 1 + 7
