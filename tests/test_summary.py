"""nn.summary: output shapes, parameter counts, the course's formulas, totals, rendering."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn


def course_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 100), nn.ReLU(), nn.Linear(100, 10),
    )  # fmt: skip


def test_course_cnn_rows_formulas_and_total():
    summary = nn.summary(course_cnn(), (1, 28, 28))
    rows = {row.name: row for row in summary.rows}
    assert [row.name for row in summary.rows] == [str(i) for i in range(10)]
    assert rows["0"].output_shape == (None, 8, 26, 26)
    assert rows["0"].formula == "8·(1·3·3+1) = 80" and rows["0"].params == 80
    assert rows["2"].output_shape == (None, 8, 13, 13) and rows["2"].formula == ""
    assert rows["3"].formula == "16·(8·3·3+1) = 1,168"
    assert rows["6"].output_shape == (None, 400)
    assert rows["7"].formula == "100·(400+1) = 40,100" and rows["7"].params == 40_100
    assert rows["9"].formula == "10·(100+1) = 1,010"
    assert summary.total_params == summary.trainable_params == 42_358
    assert summary.non_trainable_params == 0
    text = str(summary)
    assert "Total params: 42,358" in text and "8·(1·3·3+1) = 80" in text
    assert "(None, 16, 5, 5)" in text


def test_linear_784_1000():
    summary = nn.Linear(784, 1000).summary((784,))
    assert summary.total_params == 785_000
    assert summary.rows[0].formula == "1000·(784+1) = 785,000"


def test_formulas_for_groups_no_bias_transpose_and_batchnorm():
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding="same", groups=2), nn.BatchNorm2d(8),
        nn.ConvTranspose2d(8, 2, 2, stride=2, bias=False), nn.Flatten(),
        nn.Linear(2 * 8 * 8, 3, bias=False),
    )  # fmt: skip
    summary = nn.summary(model, (4, 4, 4))
    formulas = [row.formula for row in summary.rows]
    assert formulas == [
        "8·(4/2·3·3+1) = 152",
        "2·8 = 16 (+2·8 = 16 non-trainable)",
        "2·(8·2·2) = 64",
        "",
        "3·128 = 384",
    ]
    assert summary.rows[2].output_shape == (None, 2, 8, 8)
    assert summary.trainable_params == 152 + 16 + 64 + 384
    assert summary.non_trainable_params == 16  # running mean and variance
    assert summary.rows[1].non_trainable == 16


def test_nested_modules_get_dotted_names_and_containers_no_rows():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.gain = nn.Parameter(np.ones(2, dtype=np.float32))  # a parameter of its own

        def forward(self, x):
            return self.conv(x) * self.gain.reshape(1, 2, 1, 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.pool = nn.MaxPool2d(2)
            self.unused = nn.Linear(3, 3)

        def forward(self, x):
            return self.pool(self.block(x))

    summary = nn.summary(Net(), (1, 4, 4))
    names = [row.name for row in summary.rows]
    assert names == ["block.conv", "block", "pool", "unused"]  # call order, unused last
    assert summary.rows[1].params == 2 and summary.rows[1].formula == "2 = 2"
    assert summary.rows[3].output_shape is None and "-" in str(summary)
    assert summary.total_params == 20 + 2 + 12


def test_summary_leaves_modes_and_statistics_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    model[2].eval()
    before = model.state_dict()
    nn.summary(model, (1, 5, 5))
    assert model.training and model[1].training and not model[2].training
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    out = model(Tensor(np.ones((2, 1, 5, 5), dtype=np.float32)))  # hooks are gone
    assert out.shape == (2, 2, 3, 3)


def test_summary_errors():
    with pytest.raises(
        ValueError,
        match=r"summary: input_shape must be a tuple of positive "
        r"ints, got \(1, -28\)",
    ):
        nn.summary(course_cnn(), (1, -28))
    with pytest.raises(
        ValueError,
        match=r"summary: the forward pass on zeros of shape "
        r"\(1, 1, 1, 28, 28\) failed .*without the batch axis",
    ):
        nn.summary(course_cnn(), (1, 1, 28, 28))


def test_print_summary_plain_and_rich():
    rich_console = pytest.importorskip("rich.console")
    from tinygrad_cnn.console import print_summary

    summary = nn.summary(course_cnn(), (1, 28, 28))
    plain = io.StringIO()
    print_summary(summary, rich_console.Console(file=plain, width=200))
    assert plain.getvalue().rstrip("\n") == str(summary)
    fancy = io.StringIO()
    print_summary(
        summary, rich_console.Console(file=fancy, force_terminal=True, width=200, color_system=None)
    )
    text = fancy.getvalue()
    assert "┃" in text and "100·(400+1) = 40,100" in text and "Total params: 42,358" in text
