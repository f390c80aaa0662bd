"""The Interpolation and discriminator pages in a real Chromium at a projector's 1280x720.

Screenshots of what the projector shows (the first screen) and of each whole page go to
test-output/ for a person to look at.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from tests.browser_support import ROOT, chromium_page
from tests.test_browser import IMAGES, check_page, open_page, screenshot, settle

PROJECTOR = {"width": 1280, "height": 720}


@pytest.fixture(scope="module")
def projector_page(judged_server):
    with chromium_page(**PROJECTOR) as page:
        page.goto(judged_server)
        settle(page)
        yield page


def first_screen(page, name: str) -> None:
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(ROOT / "test-output" / f"projector-{name}.png"))


def test_interpolation_page_at_1280x720(projector_page):
    page = projector_page
    open_page(page, "Interpolation")
    check_page(page)
    strip = page.locator(IMAGES).first
    box = strip.bounding_box()
    natural = strip.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    # Seven steps side by side, each digit at least 4x its 28 pixels on screen, all in the window.
    assert box["width"] >= 7 * 28 * 4 and box["x"] + box["width"] <= PROJECTOR["width"]
    assert natural[0] >= 7 * 28 * 4
    assert "Digit 7, seed 42 → 43" in page.inner_text("body")
    assert "D: real 7?" in page.inner_text("body")  # D's verdict on every step
    first_screen(page, "interpolation")
    screenshot(page, "interpolation")

    # The digit morph, then the GIF download: every step, enlarged.
    page.locator("[data-testid='stButtonGroup'] button").filter(has_text=re.compile("^Digit$")).first.click()
    page.get_by_text("Digit 7 → 8").wait_for()
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download GIF").click()
    gif = Image.open(io.BytesIO(download.value.path().read_bytes()))
    assert gif.format == "GIF" and gif.n_frames == 7 + 5 and gif.size == (224, 224)
    first_screen(page, "interpolation-digits")


def test_discriminator_page_at_1280x720(projector_page):
    page = projector_page
    open_page(page, "The discriminator's verdict")
    check_page(page)
    page.get_by_test_id("stPlotlyChart").nth(2).wait_for()
    assert page.get_by_test_id("stPlotlyChart").count() == 3
    headline = page.get_by_role("heading", level=2).filter(has_text="% real").first.inner_text()
    assert 0 <= int(headline.removeprefix("D: ").split("%")[0]) <= 100
    first_screen(page, "discriminator")
    screenshot(page, "discriminator")
    # A run without discriminator weights: one line saying how to get them, nothing else broken.
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="cdcgan-small").click()
    page.get_by_text("has no discriminator weights").wait_for()
    check_page(page)
    assert page.get_by_test_id("stPlotlyChart").count() == 0
    first_screen(page, "discriminator-no-weights")
    assert np.asarray(Image.open(ROOT / "test-output" / "projector-discriminator.png")).shape[:2] == (720, 1280)
