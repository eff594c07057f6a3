"""A headless Chromium for looking at explorer pages: screenshots, and the browser tests.

    python -m tinygrad_cnn.viz.browser g.html shot.png --next 5 --hover leaf1

drives Debian's `chromium` and `chromium-driver` through selenium (the `dev` extra), with no
network and a fresh profile, presses the stepper's next button, hovers a node and saves a
PNG of the window. `tests/test_explorer_browser.py` opens its pages with `open_browser`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def missing() -> str | None:
    """Why no browser can be opened here (a sentence), or None when one can.

    Example:
        >>> missing() is None or "chromium" in missing() or "selenium" in missing()
        True
    """
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).exists() and shutil.which(Path(program).name) is None:
            return f"{program} not found (apt install chromium chromium-driver)"
    return None


def open_browser(width: int = 1400, height: int = 900) -> Any:
    """A headless Chromium (selenium WebDriver) with a fresh profile; `.quit()` it after.

    Its console messages are kept: `driver.get_log("browser")`.

    Raises:
        RuntimeError: no chromium, chromedriver or selenium (says which).
    Example:
        >>> callable(open_browser)  # needs chromium: see tests/test_explorer_browser.py
        True
    """
    reason = missing()
    if reason:
        raise RuntimeError(f"open_browser: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='tinygrad-cnn-chromium-')}")
    options.add_argument(f"--window-size={width},{height}")
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    return webdriver.Chrome(service=Service(driver_path), options=options)


def screenshot(
    page: str | Path,
    out: str | Path,
    steps: int = 0,
    hover: str | None = None,
    open_boxes: tuple[str, ...] = (),
    size: tuple[int, int] = (1400, 900),
) -> Path:
    """Open `page`, open the module boxes named, press next `steps` times, hover node
    `hover`, and save a PNG of the window to `out`.

    Raises:
        RuntimeError: no browser (see `missing`), or the page logged an error.
    Example:
        >>> callable(screenshot)  # needs chromium
        True
    """
    from selenium.webdriver import ActionChains

    driver = open_browser(*size)
    try:
        driver.get(Path(page).resolve().as_uri())
        for box in open_boxes:
            selector = f'.layout.active [data-box="{box}"], .layout.active [data-module="{box}"]'
            driver.execute_script(
                "document.querySelector(arguments[0]).dispatchEvent(new MouseEvent('click'))",
                selector,
            )
        for _ in range(steps):
            driver.find_element("id", "step-next").click()
        if hover:
            element = driver.find_element("css selector", f'.layout.active [data-node="{hover}"]')
            ActionChains(driver).move_to_element(element).perform()
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            raise RuntimeError(f"screenshot: the page logged errors: {errors}")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        return out
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    """`python -m tinygrad_cnn.viz.browser PAGE OUT.png [--next K] [--hover ID] [--open BOX]`.

    Example:
        >>> callable(main)  # needs chromium: see the module docstring
        True
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page")
    parser.add_argument("out")
    parser.add_argument("--next", type=int, default=0, help="press the next button K times")
    parser.add_argument("--hover", default=None, help="hover the node with this data-node id")
    parser.add_argument("--open", action="append", default=[], help="click this module box")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    path = screenshot(
        args.page, args.out, args.next, args.hover, tuple(args.open), (args.width, args.height)
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
