"""What a notebook shows: the HTML of a Tensor, a Module and a History; plain repr unchanged."""

import io
import shutil

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, ops, viz
from tinygrad_cnn.display import history_html, image_grid, png_bytes
from tinygrad_cnn.models import UNet, mnist_cnn
from tinygrad_cnn.train import History

HISTORY = History(
    [
        {"epoch": 1, "loss": 0.9, "accuracy": 0.6, "val_loss": 0.8, "val_accuracy": 0.7, "time": 1},
        {
            "epoch": 2,
            "loss": 0.5,
            "accuracy": 0.8,
            "val_loss": 0.6,
            "val_accuracy": 0.75,
            "time": 1,
        },
    ]
)


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3)])
def test_the_png_encoder_writes_what_a_decoder_reads_back(shape):
    image_module = pytest.importorskip("PIL.Image")
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = np.asarray(image_module.open(io.BytesIO(png_bytes(pixels))))
    np.testing.assert_array_equal(decoded, pixels)


def test_image_grid_lays_out_image_shaped_arrays_only():
    assert image_grid(np.zeros((3, 1, 10, 10)), min_side=10).shape == (10, 3 * 10 + 2 * 2)
    assert image_grid(np.zeros((2, 3, 8, 8)), min_side=8).shape == (8, 18, 3)  # colour
    assert image_grid(np.zeros((16, 16))).shape == (48, 48)  # scaled up 3x to be seen
    for shape in [(10,), (2, 5, 8, 8), (4, 3), (2, 1, 2, 2)]:
        assert image_grid(np.zeros(shape)) is None


def test_a_tensor_shows_its_shape_dtype_grad_values_and_images():
    x = Tensor(np.random.default_rng(0).random((2, 1, 12, 12)), requires_grad=True)
    text = repr(x)
    before = x._repr_html_()
    assert "(2, 1, 12, 12)" in before and "float64" in before and "requires_grad" in before
    assert '<td style="padding: 1px 8px; text-align: left">None</td>' in before  # no grad
    assert before.count('<img src="data:image/png;base64,') == 1
    y = (x * x).sum()
    y.backward()
    after = x._repr_html_()
    assert "(2, 1, 12, 12): min " in after  # the gradient's summary
    assert "made by</th><td" in y._repr_html_() and ">sum<" in y._repr_html_()
    assert repr(x) == text and text.startswith("Tensor([[[[")  # plain repr as it was
    assert "<img" not in Tensor([1.0, 2.0])._repr_html_()


def test_a_module_shows_the_summary_with_the_formulas_and_the_total():
    model = mnist_cnn(seed=0)
    page = model._repr_html_()
    assert "Total params: 42,358" in page and "100·(400+1) = 40,100" in page
    assert "(None, 16, 5, 5)" in page  # output shapes: the model ran on a guessed input
    assert repr(model).startswith("Sequential(\n  (0): Conv2d(1, 8")
    unet = UNet(base=4, depth=2)._repr_html_()
    assert "Total params: 7,717" in unet and "ConvTranspose2d" in unet
    convs = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())  # no size to guess: no shapes
    assert "4·(3·3·3+1) = 112" in convs._repr_html_() and "112" in convs._repr_html_()


def test_a_history_shows_its_curves():
    page = HISTORY._repr_html_()
    assert page.count("<svg") == 2 and page.count("<polyline") == 4  # loss, accuracy x 2
    assert ">loss<" in page and ">accuracy<" in page and "— validation" in page
    assert "time" not in page.split("last epoch")[0]  # time is no curve
    assert "no finished epoch" in history_html([])


def _explorer_page():
    model = mnist_cnn(seed=0)
    x = Tensor(np.zeros((2, 1, 28, 28), np.float32))
    return viz.explore(ops.cross_entropy(model(x), np.array([1, 2])), depth=1)


def test_the_explorer_page_shows_inline():
    inline = _explorer_page()._repr_html_()
    assert inline.startswith("<iframe srcdoc=") and "graph-data" in inline


def test_the_html_renders_in_a_real_browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        pytest.skip("no chromium")
    x = Tensor(np.random.default_rng(0).random((3, 1, 12, 12)))
    page = tmp_path / "cells.html"
    cells = [x._repr_html_(), mnist_cnn(seed=0)._repr_html_(), HISTORY._repr_html_(),
             _explorer_page()._repr_html_()]  # fmt: skip
    page.write_text("<html><body>" + "<hr>".join(cells) + "</body></html>")
    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(page.as_uri())
        image = driver.find_element("css selector", "img")
        assert driver.execute_script("return arguments[0].naturalWidth", image) == 3 * 48 + 4
        lines = driver.find_elements("css selector", "polyline")
        assert len(lines) == 4 and all(line.size["width"] > 50 for line in lines)
        assert "Total params: 42,358" in driver.find_element("tag name", "body").text
        driver.switch_to.frame(driver.find_element("tag name", "iframe"))  # the explorer
        nodes = driver.find_elements("css selector", ".layout.active [data-node]")
        assert len(nodes) > 5 and any(node.is_displayed() for node in nodes)
    finally:
        driver.quit()
