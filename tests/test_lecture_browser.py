"""The lecture (../shared/LECTURE.md) walked in a real Chromium at 1280x720 and 1920x1080.

A real `streamlit run app/main.py` serves an 80-epoch CGAN (as cgan-report: weights kept at 20,
50, 75 and 80) and a small cDCGAN. Each step asserts on geometry, what a projector shows without
scrolling: the grid with its caption inside the window with the sidebar open and closed, the
jump buttons, the four Compare panels with their labels (one row, or two of two with the sidebar open),
no clipped control label; and
that the browser asks no host other than the app's own for anything. A screenshot of every step
at both sizes goes to test-output/lecture-<width>-<step>.png for a person to look at.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

from tests.browser_support import ROOT, chromium_page, nothing_clipped, set_sidebar, wait_for_app

SIZES = [(1280, 720), (1920, 1080)]
FIGURES = ".cgan-figure img"


def settle(page) -> None:
    wait_for_app(page)
    page.wait_for_function(
        f"""() => [...document.querySelectorAll("{FIGURES}")]
                 .every(img => img.complete && img.naturalWidth > 0)"""
    )
    page.wait_for_timeout(300)  # layout after the images have their sizes


def shot(page, width: int, step: str) -> Path:
    path = ROOT / "test-output" / f"lecture-{width}-{step}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path))  # the first screen only: what the hall sees
    return path


def box(locator) -> dict:
    return locator.evaluate(
        "e => { const r = e.getBoundingClientRect();"
        " return {left: r.left, top: r.top, right: r.right, bottom: r.bottom,"
        " width: r.width, height: r.height}; }"
    )


def inside(page, locator, what: str) -> dict:
    size = page.viewport_size
    rect = box(locator)
    assert rect["width"] > 0 and rect["height"] > 0, what
    assert rect["left"] >= -1 and rect["top"] >= -1, (what, rect)
    assert rect["right"] <= size["width"] + 1 and rect["bottom"] <= size["height"] + 1, (what, rect)
    return rect


def title_visible(page) -> None:
    """The page's title is not under Streamlit's top bar (opaque while the sidebar is closed)."""
    title = box(page.get_by_role("heading", level=1).first)
    bar = page.get_by_test_id("stHeader")
    colour = bar.evaluate("e => getComputedStyle(e).backgroundColor")
    assert title["top"] >= box(bar)["bottom"] or colour == "rgba(0, 0, 0, 0)", (title, colour)


def open_page(page, title: str, heading: str) -> None:
    page.get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", level=1).filter(has_text=heading).wait_for()
    settle(page)


def caption(page) -> str:
    return page.locator(".cgan-figure figcaption").first.inner_text().strip()


def grid_fits(page, what: str) -> dict:
    figure = page.locator(FIGURES).first
    rect = inside(page, figure, what)
    inside(page, page.locator(".cgan-figure figcaption").first, what + " caption")
    return rect


@pytest.mark.parametrize("width,height", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_lecture_on_a_projector(lecture_server, width, height, capsys):
    url = lecture_server
    hosts: set[str] = set()
    with chromium_page(width, height) as page:
        page.on("request", lambda request: hosts.add(urlparse(request.url).hostname or ""))

        # Step 1-2: the app opens on the evolution grid; jumps to the report's epochs.
        page.goto(url)
        page.get_by_role("heading", name="Training evolution").wait_for()
        settle(page)
        assert caption(page) == "Epoch 80"
        open_rect = grid_fits(page, "grid, sidebar open")
        rows = set()
        for epoch in ("1", "20", "50", "75", "80"):
            button = page.get_by_role("button", name=epoch, exact=True)
            rows.add(round(inside(page, button, f"jump button {epoch}")["top"]))
        assert len(rows) == 1, f"the jump buttons sit in one row: {rows}"
        for epoch in ("1", "20", "50", "75"):
            page.get_by_role("button", name=epoch, exact=True).click()
            page.locator(".cgan-figure figcaption").filter(has_text=f"Epoch {epoch}").wait_for()
            settle(page)
            shot(page, width, f"2-evolution-epoch{epoch}")
        nothing_clipped(page)
        set_sidebar(page, False)
        closed_rect = grid_fits(page, "grid, sidebar closed")
        title_visible(page)
        shot(page, width, "2-evolution-sidebar-closed")
        set_sidebar(page, True)
        print(f"{width}x{height}: grid {open_rect['width']:.0f}x{open_rect['height']:.0f} px "
              f"(sidebar open), {closed_rect['width']:.0f}x{closed_rect['height']:.0f} (closed)")

        # Fast scrubbing never shows a broken image: every image on screen has its pixels.
        slider = page.get_by_test_id("stSlider").get_by_role("slider")
        slider.focus()
        broken = 0
        for _ in range(12):
            slider.press("ArrowRight")
            broken += page.evaluate(
                f"""() => [...document.querySelectorAll("{FIGURES}")]
                         .filter(i => i.complete && i.naturalWidth === 0).length"""
            )
        settle(page)
        assert broken == 0

        # Step 3: one noise column outlined.
        page.locator(".st-key-evolution_column").get_by_text("3", exact=True).click()
        page.locator(".cgan-figure img").first.wait_for()
        settle(page)
        grid_fits(page, "grid with an outlined column")
        shot(page, width, "3-column-3")

        # Play at 4x for a moment, then stop. From epoch 1: 80 epochs at 0.1 s (Play from the
        # epoch the scrubbing ended on, 79 say, would end before Stop could be pressed).
        page.get_by_role("button", name="1", exact=True).click()
        page.locator(".cgan-figure figcaption").filter(has_text="Epoch 1").wait_for()
        page.get_by_role("radio", name="4x").click()
        settle(page)
        page.get_by_role("button", name="Play").click()
        page.get_by_role("button", name="Stop").wait_for()
        page.wait_for_timeout(800)
        page.get_by_role("button", name="Stop").click()
        page.get_by_role("button", name="Play").wait_for()
        settle(page)
        page.wait_for_timeout(1000)
        settle(page)

        # Export: the PNG of the labelled grid.
        with page.expect_download() as download:
            page.get_by_role("button", name="PNG of this grid").click()
        with Image.open(download.value.path()) as png:
            assert png.format == "PNG" and png.width > 1120

        # Step 4: Generate, digit 7, seeds 42 and 43.
        open_page(page, "Generate", "Generate digits")
        page.get_by_test_id("stMain").get_by_test_id("stButtonGroup").first.get_by_role("radio", name="7").click()
        seed = page.get_by_test_id("stNumberInputField").first
        for value in ("42", "43"):
            seed.fill(value)
            seed.press("Enter")
            page.locator(".cgan-figure figcaption").filter(has_text=f"seed {value}").wait_for()
            settle(page)
        inside(page, page.locator(FIGURES).first, "generated digits")
        nothing_clipped(page)
        shot(page, width, "4-generate")

        # Step 5: Compare, the report's figure: four panels (in one row or two, whichever makes
        # them larger), labels above, all on the first screen, for the grids and for one digit.
        open_page(page, "Compare epochs", "Compare epochs")
        for mode in ("Grids", "One digit"):
            if mode == "One digit":
                page.get_by_role("radio", name="One digit").click()
                settle(page)
            labels = page.locator(".cgan-figure figcaption")
            assert labels.all_inner_texts() == ["Epoch 20", "Epoch 50", "Epoch 75", "Epoch 80"]
            tops = set()
            for k in range(4):
                label = inside(page, labels.nth(k), f"{mode}: label {k}")
                panel = inside(page, page.locator(FIGURES).nth(k), f"{mode}: panel {k}")
                assert label["bottom"] <= panel["top"] + 1, "the label is above its panel"
                tops.add(round(panel["top"]))
            assert len(tops) in (1, 2), f"{mode}: the four panels are in one row or two"
            if mode == "Grids":
                assert panel["height"] >= 280 and panel["width"] >= 280, f"{mode}: panels {panel}"
            nothing_clipped(page)
            shot(page, width, f"5-compare-{mode.split()[0].lower()}")
        with page.expect_download() as download:
            page.get_by_role("button", name="PNG of this figure").click()
        with Image.open(download.value.path()) as png:
            assert png.format == "PNG" and png.width > 2 * png.height  # one row of four

        # Step 6: loss curves.
        open_page(page, "Loss curves", "Loss")
        page.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for()
        shot(page, width, "6-losses")

        # Step 7: Real vs CGAN vs cDCGAN for digit 5: the digits take the space they have.
        open_page(page, "Real vs CGAN vs cDCGAN", "Real vs")
        page.get_by_test_id("stMain").get_by_test_id("stButtonGroup").first.get_by_role("radio", name="5").click()
        settle(page)
        panels = page.locator(FIGURES)
        assert panels.count() == 3
        for k in range(3):
            rect = inside(page, panels.nth(k), f"real vs panel {k}")
            assert rect["width"] >= 4 * 28 * 2, "each digit at least twice its own size"
        nothing_clipped(page)
        shot(page, width, "7-real-vs")

        # Step 8 (the Train page itself is walked in test_browser_train.py) and step 9.
        open_page(page, "Train", "Train")
        inside(page, page.get_by_role("button", name="Start training"), "Start on the first screen")
        shot(page, width, "8-train")
        start = time.perf_counter()
        page.get_by_test_id("stSidebarNavLink").filter(has_text="Quality").click()
        page.get_by_role("heading", level=1).filter(has_text="Quality").wait_for()
        wait_for_app(page)
        print(f"{width}x{height}: Quality page on screen after "
              f"{time.perf_counter() - start:.1f} s (first visit on this server)")
        shot(page, width, "9-quality")

        # Presentation mode from the URL: the grid alone fills the window.
        page.goto(url + "/?present=1")
        settle(page)
        assert not page.get_by_test_id("stSidebar").is_visible()
        rect = grid_fits(page, "presentation grid")
        assert rect["height"] >= 0.8 * height - 120, rect
        shot(page, width, "10-presentation")

        assert page.get_by_test_id("stException").count() == 0
    assert hosts <= {"127.0.0.1"}, hosts
    with capsys.disabled():
        print()
