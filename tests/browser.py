"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for the
site tests. Absent binaries fail the tests: `make test` installs them."""
from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# As root in a container, and with no network but loopback (the machines' notes).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


@contextmanager
def chromium(tmp: Path) -> Iterator[Any]:
    """A fresh headless Chromium with its own profile under `tmp`."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: install Debian's chromium and chromium-driver "
                        "(make test does, as root).")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=str(tmp / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def set_width(driver: Any, width: int, height: int = 900) -> None:
    """Emulate a viewport `width` CSS px wide (a phone at 390, mobile viewport rules on)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def open_page(driver: Any, url: str) -> list[dict[str, Any]]:
    """Load `url` and return the console messages it caused."""
    driver.get_log("browser")          # drop what earlier pages logged
    driver.get(url)
    driver.execute_script("return document.fonts.ready.then(() => true)")
    return driver.get_log("browser")


def screenshot(driver: Any, path: Path) -> Path:
    """The whole page (beyond the viewport) as a PNG."""
    data = driver.execute_cdp_cmd("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(data["data"]))
    return path


def overflow(driver: Any) -> int:
    """How many CSS px the page is wider than its viewport (0: no sideways scrolling)."""
    return driver.execute_script(
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth")


def links(driver: Any) -> list[str]:
    """Absolute URLs of every link, image, stylesheet and web font the page uses."""
    return driver.execute_script("""
        const urls = [...document.querySelectorAll('a[href]')].map(a => a.href)
          .concat([...document.querySelectorAll('img[src]')].map(i => i.src))
          .concat([...document.querySelectorAll('link[href]')].map(l => l.href));
        for (const sheet of document.styleSheets) {
          const visit = rules => { for (const r of rules) {
            if (r.type === CSSRule.FONT_FACE_RULE) {
              const m = r.style.getPropertyValue('src').match(/url\\("?([^")]+)"?\\)/);
              if (m) urls.push(new URL(m[1], sheet.href || document.baseURI).href);
            } else if (r.cssRules) { visit(r.cssRules); }
          } };
          visit(sheet.cssRules);
        }
        return urls;""")


def broken_images(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.src)")


def fonts(driver: Any) -> list[tuple[str, str]]:
    """(family, status) of each @font-face the page declared: 'loaded' when fetched."""
    return [tuple(f) for f in driver.execute_script(
        "return [...document.fonts].map(f => [f.family + ' ' + f.weight, f.status])")]
