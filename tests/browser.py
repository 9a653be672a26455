"""Headless Chromium for the browser tests: the system's chromium driven by Playwright, software WebGL, no network.

Playwright never downloads a browser here: it drives ``CHROMIUM`` (Debian: apt-get install -y chromium).
Tests that need it are marked with ``needs_browser``: marker ``browser``, skipped when either is missing.
"""
import contextlib
import io
import shutil

import numpy as np
import pytest
from PIL import Image

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the browser tests skip without it
    sync_playwright = None

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
FLAGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def needs_browser(test):
    """Mark ``test`` ``browser`` (``pytest -m "not browser"`` leaves it out) and skip it where chromium or
    playwright is missing."""
    missing = pytest.mark.skipif(CHROMIUM is None or sync_playwright is None,
                                 reason="needs chromium (apt-get install -y chromium) and playwright (pip)")
    return pytest.mark.browser(missing(test))


@contextlib.contextmanager
def browser_page(width=1280, height=1000):
    """A Playwright page in a fresh headless Chromium profile; console errors are collected in page.errors."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
            yield page
        finally:
            browser.close()


def screenshot_array(locator):
    """The element's pixels as an (H, W, 3) float array in [0, 1]."""
    with Image.open(io.BytesIO(locator.screenshot())) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0
