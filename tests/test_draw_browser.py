"""Draw a digit on the discriminator page, with the mouse, in a real Chromium at 1280x720 and
1920x1080: the canvas is served by the local Streamlit server, and a stroke brings back D's verdict
under every label and the classifier's reading. Screenshots go to test-output/."""

from __future__ import annotations

import re

import base64
import io
import time
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from tests.browser_support import ROOT, chromium_page
from tests.test_browser import check_page, open_page, screenshot, settle

PROJECTOR = {"width": 1280, "height": 720}
WIDE = {"width": 1920, "height": 1080}
CANVAS = "canvas.upper-canvas"  # Fabric.js draws on the lower canvas and listens on this one


@pytest.fixture(scope="module")
def draw_page(judged_server):
    with chromium_page(**PROJECTOR) as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(judged_server)
        settle(page)
        yield judged_server, page, requests


def stroke(page, points) -> None:
    """Press, move through `points` (fractions of the canvas) and release, as a hand would."""
    canvas = page.locator(CANVAS).first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(at, at[1:], strict=False):
        page.mouse.move(x1, y1, steps=max(2, int(max(abs(x1 - x0), abs(y1 - y0)) // 8)))
    page.mouse.up()


def viewport_shot(page, name: str) -> np.ndarray:
    path = ROOT / "test-output" / f"{name}.png"
    page.screenshot(path=str(path))
    return np.asarray(Image.open(path))


def test_draw_a_one_and_read_the_verdict(draw_page):
    url, page, requests = draw_page
    open_page(page, "The discriminator's verdict")
    check_page(page)
    page.get_by_role("heading", name="Draw a digit").wait_for()
    canvas = page.locator(CANVAS).first
    canvas.wait_for()
    box = canvas.bounding_box()
    # The whole canvas shows at its full 280 px: its column is wide enough (the component
    # scrolls a canvas wider than its column) and inside the projector's width.
    column = page.get_by_test_id("stColumn").filter(has=canvas).last.bounding_box()
    assert round(box["width"]) == 280 and column["width"] >= 280
    assert box["x"] + box["width"] <= PROJECTOR["width"]
    assert page.locator(".st-key-discriminator_draw_labels").count() == 0  # nothing drawn yet

    stroke(page, [(0.5, 0.15), (0.5, 0.5), (0.5, 0.85)])  # a vertical bar: a 1
    reading = page.get_by_role("heading", level=3).filter(has_text="Reads ")
    reading.wait_for()
    settle(page)
    check_page(page)
    assert reading.inner_text() == "Reads 1"
    assert page.get_by_text("The classifier reads a 1, ").count() == 1
    bars = page.locator(".st-key-discriminator_draw_labels text.bartext")
    bars.nth(9).wait_for()
    shares = bars.all_text_contents()  # % real, under labels 0-9, as app.numbers writes them
    assert len(shares) == 10 and all(re.fullmatch(r"<1|[1-9][0-9]?|99\+", s) for s in shares), shares
    ticks = page.locator(".st-key-discriminator_draw_labels .xtick text").all_text_contents()
    assert ticks == [str(d) for d in range(10)]
    sizes = bars.evaluate_all("texts => texts.map(t => parseFloat(getComputedStyle(t).fontSize))")
    assert min(sizes) >= 16
    # The 28x28 the networks see, enlarged 8x with crisp pixels (check_page checks the rendering).
    seen = page.locator("[data-testid='stImage']").filter(has_text="What the networks see").locator("img")
    assert seen.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [224, 224]
    assert page.get_by_test_id("stPlotlyChart").count() == 4  # the three before, and the drawing's

    reading.scroll_into_view_if_needed()
    canvas.scroll_into_view_if_needed()
    assert viewport_shot(page, "projector-draw").shape[:2] == (720, 1280)
    screenshot(page, "discriminator-draw")

    page.set_viewport_size(WIDE)
    settle(page)
    page.locator(CANVAS).first.scroll_into_view_if_needed()
    assert page.get_by_role("heading", level=3).filter(has_text="Reads 1").count() == 1
    assert viewport_shot(page, "draw-1920x1080").shape[:2] == (1080, 1920)
    page.set_viewport_size(PROJECTOR)

    # Everything the page loaded, the canvas's JS and CSS included, came from the local server.
    local = urlparse(url).netloc
    remote = [u for u in requests if urlparse(u).scheme not in ("data", "blob") and urlparse(u).netloc != local]
    assert remote == []
    component = [urlparse(u).path for u in requests if "drawable" in u.lower()]
    print("canvas component files:", component)
    assert any(p.endswith(".js") for p in component) and any(p.endswith(".css") for p in component), component


def test_a_seven_drawn_in_a_corner_is_centred_and_read(draw_page):
    url, page, requests = draw_page
    page.goto(url)  # a new session: an empty canvas
    settle(page)
    open_page(page, "The discriminator's verdict")
    page.locator(CANVAS).first.wait_for()
    start = time.perf_counter()
    # A 7 in the canvas's top-left quarter, smaller than the box: centring and scaling fix both.
    stroke(page, [(0.08, 0.1), (0.5, 0.1), (0.25, 0.55)])
    reading = page.get_by_role("heading", level=3).filter(has_text="Reads ")
    reading.wait_for()
    print(f"stroke to reading: {time.perf_counter() - start:.1f} s")
    settle(page)
    check_page(page)
    assert reading.inner_text() == "Reads 7"
    seen = page.locator("[data-testid='stImage']").filter(has_text="What the networks see").locator("img")
    png = seen.evaluate("""img => { const c = document.createElement('canvas'); c.width = 224; c.height = 224;
                                    c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL(); }""")
    digit = np.asarray(Image.open(io.BytesIO(base64.b64decode(png.split(",", 1)[1]))).convert("L"))[::8, ::8]
    rows, columns = np.indices(digit.shape) + 0.5
    mass = digit.astype(np.float64).sum()
    # Centred by its centre of mass (within a pixel), and the taller side filling the 20-pixel box.
    assert abs((rows * digit).sum() / mass - 14) <= 1 and abs((columns * digit).sum() / mass - 14) <= 1
    assert max(len(np.flatnonzero(digit.any(axis=0))), len(np.flatnonzero(digit.any(axis=1)))) == 20
    viewport_shot(page, "projector-draw-seven")
