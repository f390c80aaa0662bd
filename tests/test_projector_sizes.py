"""Sizes on a projector, measured in a real Chromium on the shipped runs.

One server and one browser; the window is set to 1024x768, 1280x720 and 1920x1080 in turn. What a
lecture hall sees without scrolling: the four Compare panels at least 280 pixels on a side, the
Generate samples at least 200 pixels with the ten-digit strip on the first screen, the loss and
quality charts side by side, presentation mode with every control and the whole figure inside the
window, and no tooltip of Play/Stop over the epoch buttons while the epochs play. Screenshots go
to test-output/projector-*.png for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from streamlit.testing.v1 import AppTest

from tests.browser_support import (
    ROOT,
    browser_missing,
    chromium_page,
    nothing_clipped,
    set_sidebar,
    streamlit_server,
    wait_for_app,
)
from cgan.runs import Run

MISSING = browser_missing()
SIZES = [(1024, 768), (1280, 720), (1920, 1080)]
SHIPPED = ("cgan-report", "cdcgan-report")

BOXES = r"""els => els.filter(e => e.offsetParent !== null).map(e => {
    const r = e.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width,
            height: r.height, text: (e.innerText || e.alt || '').trim().split('\n').pop().slice(0, 60)};
})"""


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    root = tmp_path_factory.mktemp("projector")
    for name in SHIPPED:
        shutil.copytree(ROOT / "checkpoints" / name, root / name)
    return root


@pytest.fixture(scope="module")
def browser(shipped):
    if MISSING:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {MISSING}")
        pytest.skip(f"browser test skipped: {MISSING}")
    with streamlit_server(checkpoints=shipped) as url, chromium_page(1280, 720) as page:
        yield url, page


def settle(page) -> None:
    wait_for_app(page)
    page.wait_for_function(
        """() => [...document.querySelectorAll(".cgan-figure img")]
                 .every(img => img.complete && img.naturalWidth > 0)"""
    )
    page.wait_for_timeout(400)  # layout after the images have their sizes


def show(browser, path: str, size: tuple[int, int], sidebar: bool = True):
    url, page = browser
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{url}/{path}")
    settle(page)
    if "present=1" not in path:
        set_sidebar(page, sidebar)
        settle(page)
    return page


def boxes(page, selector: str) -> list[dict]:
    return page.locator(selector).evaluate_all(BOXES)


def on_screen(page, box: dict, what: str) -> None:
    size = page.viewport_size
    assert box["width"] > 0 and box["height"] > 0, what
    assert box["left"] >= -1 and box["top"] >= -1, (what, box)
    assert box["right"] <= size["width"] + 1 and box["bottom"] <= size["height"] + 1, (what, box)


def shot(page, name: str) -> None:
    path = ROOT / "test-output" / f"projector-{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path))


@pytest.mark.parametrize("sidebar", [True, False], ids=["sidebar-open", "sidebar-closed"])
def test_compare_panels_are_large_and_on_the_first_screen(browser, sidebar):
    page = show(browser, "compare", (1280, 720), sidebar)
    panels = boxes(page, ".cgan-compare img")
    labels = boxes(page, ".cgan-compare figcaption")
    assert [label["text"] for label in labels] == ["Epoch 20", "Epoch 50", "Epoch 75", "Epoch 200"]
    for k, (panel, label) in enumerate(zip(panels, labels, strict=True)):
        on_screen(page, panel, f"panel {k}")
        on_screen(page, label, f"label {k}")
        assert panel["width"] >= 280 and panel["height"] >= 280, (k, panel)
        assert label["bottom"] <= panel["top"] + 1, "each label sits above its panel"
    nothing_clipped(page)
    shot(page, f"compare-1280x720-sidebar-{'open' if sidebar else 'closed'}")
    print(f"\ncompare 1280x720 sidebar {'open' if sidebar else 'closed'}: panels "
          f"{panels[0]['width']:.0f}x{panels[0]['height']:.0f} px, bottom {panels[-1]['bottom']:.0f}")


def test_generate_samples_are_large_and_the_strip_is_on_the_first_screen(browser):
    page = show(browser, "generate", (1280, 720))
    samples, strip = boxes(page, ".cgan-figure img")[:2]
    natural = page.locator(".cgan-figure img").first.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert natural[0] == natural[1], "four samples in two rows of two"
    tile = samples["height"] * 28 / (2 * 28 + 2)  # two 28-pixel digits and a 2-pixel gap
    assert tile >= 200, f"each sample is {tile:.0f} px tall"
    on_screen(page, samples, "samples")
    on_screen(page, strip, "the ten-digit strip")
    caption = boxes(page, ".cgan-generate_strip figcaption")[0]
    assert "all ten digits" in caption["text"]
    on_screen(page, caption, "the strip's caption")
    nothing_clipped(page)
    shot(page, "generate-1280x720")
    print(f"\ngenerate 1280x720: samples {tile:.0f} px each, strip bottom {strip['bottom']:.0f}")


def chart(page, key: str) -> dict:
    page.locator(f".st-key-{key} .js-plotly-plot svg text").first.wait_for()
    return boxes(page, f".st-key-{key} [data-testid='stPlotlyChart']")[0]


def test_loss_and_quality_charts_side_by_side_on_the_first_screen(browser):
    page = show(browser, "losses", (1280, 720))
    page.wait_for_timeout(800)  # Plotly lays out after the script ends
    losses, accuracy, frechet = (chart(page, k) for k in ("losses_chart", "losses_accuracy",
                                                          "losses_frechet"))
    for box, what in ((losses, "loss chart"), (accuracy, "accuracy"), (frechet, "Fréchet")):
        on_screen(page, box, what)
    assert accuracy["left"] >= losses["right"] and frechet["left"] >= losses["right"]
    assert abs(accuracy["top"] - losses["top"]) <= 2 and frechet["top"] >= accuracy["bottom"]
    shot(page, "losses-1280x720")

    page = show(browser, "quality", (1280, 720))
    page.wait_for_timeout(800)
    curves, quality_losses = chart(page, "quality_curves"), chart(page, "quality_losses")
    on_screen(page, curves, "quality curves")
    on_screen(page, quality_losses, "losses beside the quality curves")
    assert quality_losses["left"] >= curves["right"] and abs(quality_losses["top"] - curves["top"]) <= 2
    shot(page, "quality-1280x720")
    print(f"\nlosses 1280x720: charts at x {losses['left']:.0f} and {accuracy['left']:.0f}, bottom "
          f"{frechet['bottom']:.0f}; quality: at x {curves['left']:.0f} and {quality_losses['left']:.0f}, "
          f"bottom {curves['bottom']:.0f}")


def page_fits(page, what: str) -> None:
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    assert height <= page.viewport_size["height"] + 1, f"{what}: the page scrolls ({height} px)"


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_presentation_mode_shows_everything_and_fills_the_window(browser, size):
    width, height = size
    page = show(browser, "?present=1", size)
    assert not page.get_by_test_id("stSidebar").is_visible()
    grid = boxes(page, ".cgan-evolution img")[0]
    on_screen(page, grid, "grid")
    on_screen(page, boxes(page, ".cgan-evolution figcaption")[0], "the grid's caption")
    controls = boxes(page, ".st-key-evolution_epoch_jumps button, .st-key-evolution_play_row button")
    names = [c["text"] for c in controls]
    assert {"1", "20", "50", "75", "200", "Play", "1x", "2x", "4x", "8x"} <= set(names), names
    for control in controls:
        on_screen(page, control, f"control {control['text']!r}")
    assert grid["height"] >= 0.85 * height, f"the grid is {grid['height']:.0f} px of {height}"
    page_fits(page, "evolution")
    shot(page, f"present-evolution-{width}x{height}")

    page = show(browser, "compare?present=1", size)
    panels = boxes(page, ".cgan-compare img")
    labels = boxes(page, ".cgan-compare figcaption")
    assert len(panels) == len(labels) == 4
    for k, box in enumerate(panels + labels):
        on_screen(page, box, f"compare panel or label {k}")
    span = max(p["bottom"] for p in panels) - min(label["top"] for label in labels)
    assert span >= 0.85 * height, f"the figure takes {span:.0f} px of {height}"
    page_fits(page, "compare")
    shot(page, f"present-compare-{width}x{height}")
    print(f"\npresentation {width}x{height}: grid {grid['width']:.0f}x{grid['height']:.0f}, compare panels "
          f"{panels[0]['width']:.0f}x{panels[0]['height']:.0f} (figure {span:.0f} px tall), lowest control "
          f"{max(c['bottom'] for c in controls):.0f}")


def test_presentation_toggle_in_the_sidebar(browser):
    page = show(browser, "", (1024, 768))
    page.get_by_test_id("stSidebar").get_by_text("Presentation mode").click()
    page.get_by_role("button", name="Exit presentation").wait_for()
    settle(page)
    for control in boxes(page, ".st-key-evolution_epoch_jumps button, .st-key-evolution_play_row button"):
        on_screen(page, control, f"control {control['text']!r}")
    page_fits(page, "evolution")
    page.get_by_role("button", name="Exit presentation").click()
    page.get_by_test_id("stSidebar").wait_for(state="visible")


TOOLTIPS = "[data-baseweb='tooltip'], [role='tooltip'], [data-testid='stTooltipContent']"


@pytest.mark.parametrize("path", ["", "?present=1"], ids=["page", "presentation"])
def test_no_tooltip_covers_the_epoch_buttons_while_playing(browser, path):
    page = show(browser, path, (1280, 720))
    play = page.get_by_role("button", name="Play")
    play.hover()
    play.click()
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for()
    stop.hover()
    page.wait_for_timeout(1500)  # longer than a tooltip's delay
    jumps = boxes(page, ".st-key-evolution_epoch_jumps button")
    tips = [t for t in boxes(page, TOOLTIPS) if t["width"] > 0 and t["height"] > 0]
    if stop.count():  # (a short play may have reached its last epoch by now)
        try:
            stop.click(timeout=5000)
        except PlaywrightTimeout:
            pass
    page.get_by_role("button", name="Play").wait_for()
    over = [(t["text"], j["text"]) for t in tips for j in jumps
            if t["left"] < j["right"] and j["left"] < t["right"] and t["top"] < j["bottom"]
            and j["top"] < t["bottom"]]
    assert over == [], f"a tooltip covers the epoch buttons: {over}"


# ---------------------------------------------------------------------------------------------
# The epoch-time chart says what its times include and where they were taken (no browser).


def test_time_chart_says_what_it_measures_and_on_which_device(shipped, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    for name in SHIPPED:
        shutil.copytree(shipped / name, root / name)
    Run(root / "cdcgan-report").write_status("finished", device="cuda:0")
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(root))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    at.switch_page("views/losses.py").run()
    at.multiselect(key="losses_runs").set_value(list(SHIPPED)).run()
    assert not at.exception, [e.value for e in at.exception]
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if c.proto.id and "losses_time" in c.proto.id)
    assert chart["layout"]["title"]["subtitle"]["text"].startswith("Training only (the D and G steps)")
    caption = " ".join(c.value for c in at.caption)
    history = Run(root / "cgan-report").history()
    slowest = max(r.epoch_seconds for r in history)
    assert f"**cgan-report**, on the CPU: {min(r.epoch_seconds for r in history):.2f} to {slowest:.2f} s" in caption
    assert "**cdcgan-report**, on a GPU (CUDA)" in caption
    assert "Measuring quality, drawing the sample grid and saving come on top" in caption
