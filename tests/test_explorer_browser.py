"""The graph explorer page in a real browser: headless Chromium driven by selenium.

Skipped, with the reason, where chromium, chromedriver or selenium is missing (CI has all
three: `.ci/run` installs them).
"""

from __future__ import annotations

import json

import pytest

from tinygrad_cnn.cli.graph import micrograd_expression, model_loss
from tinygrad_cnn.viz import explore
from tinygrad_cnn.viz.browser import missing, open_browser

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"no browser: {missing()}")

VISIBLE = """
return Array.from(document.querySelectorAll(
    '.layout.active [data-node], .layout.active [data-box]'))
  .filter((e) => !e.classList.contains('hidden')).length;
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer")
    return {
        "micrograd": explore(micrograd_expression(backward=False), folder / "micrograd.html"),
        "cnn": explore(model_loss("mnist-cnn", 1, 12), folder / "cnn.html"),
        "cnn-folded": explore(model_loss("mnist-cnn", 1, 12), folder / "folded.html", depth=0),
    }


@pytest.fixture(scope="module")
def browser():
    driver = open_browser()
    yield driver
    driver.quit()


def load(browser, path):
    browser.get(path.resolve().as_uri())
    browser.get_log("browser")  # start each test with an empty console
    return json.loads(browser.find_element("id", "graph-data").get_attribute("textContent"))


def current_nodes(browser) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('.layout.active .current'))"
        ".map((e) => e.dataset.node || e.dataset.box || e.dataset.module);"
    )


def press(browser, button: str, times: int = 1) -> None:
    for _ in range(times):
        browser.find_element("id", button).click()


def hover(browser, node_id: str) -> str:
    from selenium.webdriver import ActionChains

    element = browser.find_element("css selector", f'.layout.active [data-node="{node_id}"]')
    ActionChains(browser).move_to_element(element).perform()
    return browser.find_element("id", "details").text


@pytest.mark.parametrize("name", ["micrograd", "cnn", "cnn-folded"])
def test_page_loads_without_console_errors(browser, pages, name):
    browser.get(pages[name].resolve().as_uri())
    press(browser, "step-next", 3)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert browser.find_element("id", "details").is_displayed()


def test_next_k_times_makes_the_kth_recorded_step_current(browser, pages):
    data = load(browser, pages["micrograd"])
    assert current_nodes(browser) == []
    for k in range(1, len(data["steps"]) + 1):
        press(browser, "step-next")
        assert current_nodes(browser) == [data["steps"][k - 1]["node"]], k
    done = browser.execute_script("return document.querySelectorAll('.layout.active .done')")
    assert len(done) == len(data["steps"]) - 1
    press(browser, "step-next")  # past the end: stays on the last step
    assert current_nodes(browser) == [data["steps"][-1]["node"]]


def test_prev_goes_back_and_keys_step(browser, pages):
    from selenium.webdriver.common.keys import Keys

    data = load(browser, pages["micrograd"])
    press(browser, "step-next", 4)
    press(browser, "step-prev")
    assert current_nodes(browser) == [data["steps"][2]["node"]]
    text = browser.find_element("id", "step-text").text
    assert "step 3 of" in text
    body = browser.find_element("tag name", "body")
    body.send_keys(Keys.ARROW_RIGHT)
    assert current_nodes(browser) == [data["steps"][3]["node"]]
    body.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert current_nodes(browser) == [data["steps"][1]["node"]]
    body.send_keys(Keys.HOME)
    assert current_nodes(browser) == []
    press(browser, "step-next")
    press(browser, "step-reset")
    assert current_nodes(browser) == []


def test_step_text_explains_with_numbers(browser, pages):
    data = load(browser, pages["micrograd"])
    pow_step = next(i for i, s in enumerate(data["steps"]) if "d(pow)/d(x) = 2x" in str(s))
    press(browser, "step-next", pow_step + 1)
    text = browser.find_element("id", "step-text").text
    assert "upstream" in text and "× local d(pow)/d(x) = 2x = −14" in text
    assert "→ −6.942 to sub" in text


def test_play_runs_the_steps(browser, pages):
    load(browser, pages["micrograd"])
    press(browser, "step-play")
    assert browser.find_element("id", "step-play").text.startswith("⏸")
    browser.implicitly_wait(0)
    import time

    time.sleep(1.2)
    press(browser, "step-play")  # pause
    assert len(current_nodes(browser)) == 1


def test_recorded_order_is_a_reverse_topological_order_of_the_edges(browser, pages):
    for name in ("micrograd", "cnn"):
        data = load(browser, pages[name])
        position = {step["node"]: i for i, step in enumerate(data["steps"])}
        for src, dst in data["edges"]:
            if src in position and dst in position:
                assert position[dst] < position[src], (name, src, dst)  # users first
        visited = {n["id"] for n in data["nodes"] if n["id"] in position}
        assert len(visited) == len(data["steps"])  # each node visited once


def test_hovering_a_node_shows_its_shape(browser, pages):
    data = load(browser, pages["cnn"])
    conv = next(n for n in data["nodes"] if n["op"] == "conv2d")
    text = hover(browser, conv["id"])
    assert "conv2d" in text
    assert "(" + ", ".join(str(n) for n in conv["shape"]) + ")" in text
    assert "ops/conv.py:" in text  # the forward/backward source, with file:line
    heatmaps = browser.execute_script("return document.querySelectorAll('#details canvas').length")
    assert heatmaps >= 2  # the feature maps and their gradient


def test_micrograds_leaves_show_their_gradients(browser, pages):
    data = load(browser, pages["micrograd"])
    leaves = {n["label"].split("\n")[0]: n["id"] for n in data["nodes"] if n["kind"] != "op"}
    assert "138.8338" in hover(browser, leaves["a"])
    assert "645.5773" in hover(browser, leaves["b"])


def test_folding_a_module_changes_the_visible_nodes(browser, pages):
    data = load(browser, pages["cnn"])
    before = browser.execute_script(VISIBLE)
    box = next(m for m in data["modules"] if m["level"] == 2 and len(m["nodes"]) > 2)
    frame = f'.layout.active [data-module="{box["id"]}"] text'
    browser.find_element("css selector", frame).click()
    folded = browser.execute_script(VISIBLE)
    assert folded == before - len(box["nodes"])
    browser.find_element("css selector", frame).click()  # open it again
    assert browser.execute_script(VISIBLE) == before


def test_a_page_folded_at_depth_0_opens_by_click(browser, pages):
    data = load(browser, pages["cnn-folded"])
    depth = "return document.querySelector('.layout.active').dataset.depth"
    assert browser.execute_script(depth) == "0"
    before = browser.execute_script(VISIBLE)
    model = next(m for m in data["modules"] if m["level"] == 1)
    browser.find_element("css selector", f'.layout.active [data-box="{model["id"]}"]').click()
    assert browser.execute_script(depth) == "1"
    assert browser.execute_script(VISIBLE) > before
    press(browser, "step-next", 3)  # the current step lands on a folded layer's node
    assert len(current_nodes(browser)) == 1


def test_graph_screenshot_step_photographs_the_explorer(tmp_path, capsys):
    from PIL import Image

    from tinygrad_cnn.cli import main

    out = tmp_path / "shot.png"
    assert (
        main(["graph", "--example", "micrograd", "--screenshot-step", "3", "--out", str(out)]) == 0
    )
    with Image.open(out) as image:
        width, height = image.size
    assert width == 1300 and height > 500  # the window less its frame
