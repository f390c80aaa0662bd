"""The app in a real browser: `streamlit run app/main.py` and Debian's Chromium, on runs made here.

Every page is opened, the controls a lecturer uses are moved, the images and the Plotly chart are
checked on screen, the round trip from a control to the new image is timed (printed), and a
full-page screenshot of every page goes to test-output/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import as_its_trainer
from tests.browser_support import ROOT, browser_missing, chromium_page, streamlit_server, wait_for_app
from cgan.runs import Run, write_bytes_atomic


MISSING = browser_missing()
if MISSING and not os.environ.get("CI"):
    pytest.skip(f"browser test skipped: {MISSING}", allow_module_level=True)

IMAGES = "[data-testid='stImage'] img"
SETTINGS = tomllib.loads((ROOT / "streamlit_config.toml").read_text())


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory, cgan_run, cdcgan_run):
    if MISSING:  # in CI a missing browser is a failure, never a silent skip
        pytest.fail(f"browser test cannot run in CI: {MISSING}")
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(cgan_run.path, root / "cgan-report")
    shutil.copytree(cdcgan_run.path, root / "cdcgan-report")
    # A run a trainer is writing: two epochs done so far, and a live process named as its trainer.
    growing = Run(root / "growing")
    shutil.copytree(cgan_run.path, growing.path)
    lines = growing.history_path.read_text().splitlines(keepends=True)
    write_bytes_atomic(growing.history_path, "".join(lines[:2]).encode())
    with as_its_trainer(growing, epochs_total=4), streamlit_server(checkpoints=root) as url, \
            chromium_page() as page:
        yield url, page, growing, lines


def settle(page) -> None:
    wait_for_app(page)
    page.wait_for_function(
        f"""() => [...document.querySelectorAll("{IMAGES}")]
                 .every(img => img.complete && img.naturalWidth > 0
                               && img.getBoundingClientRect().width > 0)"""
    )


def open_page(page, title: str) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
    page.get_by_role("heading", level=1).filter(has_text=title.split()[0]).wait_for()
    settle(page)


def round_trip_ms(page, action, index: int = 0) -> float:
    """Milliseconds from a control's change to the new image `index` being on screen."""
    before = page.locator(IMAGES).nth(index).get_attribute("src")
    start = time.perf_counter()
    action()
    page.wait_for_function(
        f"""([i, old]) => {{
            const img = document.querySelectorAll("{IMAGES}")[i];
            return img && img.src !== old && img.complete && img.naturalWidth > 0;
        }}""",
        arg=[index, before],
        polling="raf",
    )
    elapsed = (time.perf_counter() - start) * 1000
    settle(page)
    return elapsed


def check_page(page) -> None:
    """No exception box, no traceback, and every image drawn crisp (no smoothing)."""
    assert page.get_by_test_id("stException").count() == 0
    assert "Traceback" not in page.inner_text("body")
    settle(page)
    images = page.evaluate(
        f"""() => [...document.querySelectorAll("{IMAGES}")]
                 .map(e => [getComputedStyle(e).imageRendering, e.naturalWidth,
                            e.getBoundingClientRect().width])"""
    )
    # Crisp: enlarged only with nearest neighbour (pixelated), or drawn at least as large as it
    # is shown, so the browser only shrinks it.
    assert all(natural > 0 and (rendering == "pixelated" or shown <= natural + 1)
               for rendering, natural, shown in images), images


def screenshot(page, name: str) -> Path:
    """A full-page PNG: the window is made as tall as the page's scrolling content first."""
    size = page.viewport_size
    height = page.evaluate(
        """() => Math.max(document.documentElement.scrollHeight,
              ...[...document.querySelectorAll('main, section, div')]
                 .filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))
                 .map(e => e.scrollHeight + e.getBoundingClientRect().top))"""
    )
    tall = int(min(max(height, size["height"]), 5000))
    page.set_viewport_size({"width": size["width"], "height": tall})
    page.wait_for_timeout(400)
    path = ROOT / "test-output" / f"page-{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def test_every_page_in_chromium(browser_page):
    url, page, growing, growing_history = browser_page
    timings: dict[str, list[float]] = {}

    # The first request after the start asks for a page's own URL (a tab left open on it).
    page.goto(url + "/generate")
    page.get_by_role("heading", name="Generate digits").wait_for()
    settle(page)
    nav = page.get_by_test_id("stSidebarNavLink").all_inner_texts()
    assert any("Training evolution" in t for t in nav) and any("Loss curves" in t for t in nav)

    # streamlit_config.toml is in force (the test passes no theme flags): large black type.
    root_font = page.evaluate("getComputedStyle(document.documentElement).fontSize")
    assert root_font == f"{SETTINGS['theme']['baseFontSize']}px"
    title_colour = page.get_by_role("heading", level=1).evaluate("e => getComputedStyle(e).color")
    assert title_colour == "rgb(0, 0, 0)"  # theme.textColor, not Streamlit's grey default
    assert page.get_by_test_id("stMainMenu").count() == 0  # client.toolbarMode = "minimal"

    # Generate: digit and seed.
    picker = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Run")
    assert picker.input_value() == "cgan-report"
    digits = page.get_by_test_id("stMain").get_by_test_id("stButtonGroup").first
    samples = page.locator(IMAGES).first
    shown_width = samples.evaluate("e => e.getBoundingClientRect().width")
    assert shown_width >= 28 * 4, "digits are shown large"
    round_trip_ms(page, lambda: digits.get_by_role("radio", name="3").click())  # warm-up
    timings["digit"] = [
        round_trip_ms(page, lambda d=d: digits.get_by_role("radio", name=d).click())
        for d in ("7", "1", "5")
    ]
    seed = page.get_by_test_id("stNumberInputField").first

    def new_seed(value: str):
        seed.fill(value)
        seed.press("Enter")

    timings["seed"] = [round_trip_ms(page, lambda v=v: new_seed(v)) for v in ("43", "44", "45")]
    timings["random seed"] = [round_trip_ms(
        page, lambda: page.locator(".st-key-generate_seed_random button").first.click()
    )]
    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG").click()
    with Image.open(download.value.path()) as png:
        assert png.format == "PNG" and png.width == samples.evaluate("e => e.naturalWidth")
    check_page(page)
    screenshot(page, "generate")

    # Training evolution: the slider picks the epoch's grid.
    open_page(page, "Training evolution")
    caption = page.get_by_test_id("stImageCaption").first
    assert caption.inner_text().strip() == "Epoch 4"
    slider = page.get_by_test_id("stSlider").get_by_role("slider")
    timings["epoch slider"] = []
    for expected in (3, 2, 1):
        timings["epoch slider"].append(round_trip_ms(page, lambda: slider.press("ArrowLeft")))
        assert caption.inner_text().strip() == f"Epoch {expected}"
    # Play steps through the epochs by itself and stops at the last one. The steps follow the
    # clock, so a busy machine may skip one: collect what is shown until the end.
    page.get_by_role("button", name="Play", exact=True).click()
    page.get_by_role("button", name="Stop").wait_for()
    seen: list[int] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        epoch = int(caption.inner_text().split()[-1])
        if not seen or seen[-1] != epoch:
            seen.append(epoch)
        if page.get_by_role("button", name="Play", exact=True).count():
            break
        page.wait_for_timeout(50)
    settle(page)
    seen += [int(caption.inner_text().split()[-1])]
    print("play showed epochs", seen)
    assert seen == sorted(seen) and seen[0] == 1 and seen[-1] == 4, seen
    assert caption.inner_text().strip() == "Epoch 4"
    with page.expect_download() as download:
        page.get_by_role("button", name="GIF of the evolution").click()
    with Image.open(download.value.path()) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4  # one frame per epoch
    check_page(page)
    screenshot(page, "evolution")

    # Compare epochs: the report's epochs, or the nearest this 4-epoch run has.
    open_page(page, "Compare epochs")
    assert page.get_by_test_id("stImageCaption").all_inner_texts() == ["Epoch 4"]
    check_page(page)
    screenshot(page, "compare")

    # Loss curves: the Plotly chart is drawn with both losses.
    open_page(page, "Loss curves")
    page.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for()
    charts = page.get_by_test_id("stPlotlyChart")
    assert charts.count() >= 2  # losses and epoch time
    legend = charts.first.locator(".legendtext").all_text_contents()
    assert "D loss" in legend and "G loss" in legend
    assert charts.first.locator(".scatterlayer .trace").count() >= 2
    check_page(page)
    screenshot(page, "losses")

    # Real vs CGAN vs cDCGAN: three panels of digits.
    open_page(page, "Real vs CGAN vs cDCGAN")
    assert page.locator(IMAGES).count() == 3
    check_page(page)
    screenshot(page, "real_vs")

    # A run being written: new epochs appear without touching the page.
    open_page(page, "Training evolution")
    picker.click()
    picker.fill("growing")
    page.get_by_role("option", name="growing", exact=True).click()
    page.get_by_test_id("stImageCaption").filter(has_text="Epoch 2").wait_for()
    assert "training now" in page.get_by_test_id("stSidebar").inner_text()
    write_bytes_atomic(growing.history_path, "".join(growing_history).encode())  # epochs 3, 4
    page.get_by_test_id("stImageCaption").filter(has_text="Epoch 4").wait_for(timeout=20_000)
    check_page(page)

    # The other pages in the navigation (training jobs, quality) open cleanly too.
    visited = {"Generate", "Training evolution", "Compare epochs", "Loss curves",
               "Real vs CGAN vs cDCGAN"}
    for link in page.get_by_test_id("stSidebarNavLink").all():
        title = link.inner_text().splitlines()[-1].strip()
        if title not in visited:
            link.click()
            page.get_by_role("heading", level=1).first.wait_for()
            settle(page)
            check_page(page)
            screenshot(page, title.lower().replace(" ", "_"))

    for what, values in timings.items():
        print(f"round trip, {what}: " + ", ".join(f"{v:.0f} ms" for v in values))
    everything = [v for values in timings.values() for v in values]
    print(f"round trip median {statistics.median(everything):.0f} ms, max {max(everything):.0f} ms")
    # 300 ms is the goal on a lecturer's laptop; this shared test machine gets headroom.
    assert statistics.median(everything) < 1000
