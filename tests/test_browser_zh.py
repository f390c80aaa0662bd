"""The app in Simplified Chinese in a real Chromium at a projector's 1280x720 (``?lang=zh``).

A real `streamlit run app/main.py` serves an 80-epoch CGAN (as cgan-report: weights kept at 20,
50, 75 and 80) and a small cDCGAN. The walk visits every page from the sidebar, then the lecture's
steps (../shared/LECTURE.md): the report's epochs, an outlined noise column, Play, digit 7 with
seeds 42 and 43, Compare for the grids and for one digit, and the two PNG exports. On every screen:
no error, no English left in what a reader sees (sidebar and page, chart text included) beyond
names, nothing cut off and no two pieces of text on top of each other. The PNGs downloaded on
the way carry their labels in Chinese (checked on the image, tests/test_font.py). A screenshot of
every page goes to test-output/zh-<step>.png for a person to look at.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from tests.browser_support import (
    ROOT, chromium_page, nothing_clipped, settle_drawn,
)
from tests.test_font import assert_chinese_label, zh

WIDTH, HEIGHT = 1280, 720
RUNS = ("cgan-report", "cdcgan-report")
# English a Chinese page may show: names (models, data set, networks, file formats, devices,
# optimiser), the language choice's own name, symbols (log 4, 1x speed, y and z of the report).
NAMES = {
    "CGAN", "cDCGAN", "MNIST", "D", "G", "PNG", "GIF", "English", "LeNet", "Adam", "CPU", "GPU",
    "CUDA", "log", "x", "y", "z",
}

# Every piece of text a reader sees in the sidebar and the page: visible text nodes (icons drawn
# from a ligature font and commands in code blocks left out), each with the part of its box that
# no scrolling or collapsed container clips away.
TEXT_ITEMS = """() => {
  const roots = [...document.querySelectorAll('[data-testid="stSidebar"], [data-testid="stMain"]')];
  const items = [];
  const clipOf = (el) => {
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true,
                             contentVisibilityAuto: true})) return null;
    let box = {left: -1e9, top: -1e9, right: 1e9, bottom: 1e9};
    for (let e = el; e && e !== document.documentElement; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.overflowX !== 'visible' || s.overflowY !== 'visible') {
        const r = e.getBoundingClientRect();
        box = {left: Math.max(box.left, r.left), top: Math.max(box.top, r.top),
               right: Math.min(box.right, r.right), bottom: Math.min(box.bottom, r.bottom)};
      }
    }
    return box;
  };
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent.trim();
      if (!text) continue;
      const el = node.parentElement;
      if (el.closest('[data-testid="stIconMaterial"], [data-testid="stIconEmoji"]')) continue;
      if (el.closest('code, pre')) continue;  // commands to type stay as they are typed
      if (/Material/.test(getComputedStyle(el).fontFamily)) continue;
      const clip = clipOf(el);
      if (!clip) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) {
        // The line box less a fifth of its height above and below: about the glyphs' ink.
        const inset = r.height / 5;
        const left = Math.max(r.left, clip.left), right = Math.min(r.right, clip.right);
        const top = Math.max(r.top + inset, clip.top);
        const bottom = Math.min(r.bottom - inset, clip.bottom);
        if (right - left < 1 || bottom - top < 1) continue;
        items.push({text, left, top, right, bottom, el});
      }
    }
  }
  return items;
}"""
VISIBLE_TEXT = f"() => ({TEXT_ITEMS})().map(i => i.text)"
OVERLAPS = f"""() => {{
  const items = ({TEXT_ITEMS})();
  const out = [];
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {{
    const a = items[i], b = items[j];
    if (a.el === b.el || a.el.contains(b.el) || b.el.contains(a.el)) continue;
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 2 && h > 2) out.push(`${{a.text.slice(0, 30)}} / ${{b.text.slice(0, 30)}}`);
  }}
  return out;
}}"""
# Text cut short by its box: text reaching past the edge of a box that hides its overflow (an
# ellipsis, a label cut at the edge); charts, code and icons excepted.
CUT_OFF = """() => {
  const out = [];
  for (const box of document.querySelectorAll(
           '[data-testid="stSidebar"], [data-testid="stSidebar"] *, [data-testid="stMain"] *')) {
    const style = getComputedStyle(box);
    if (!['hidden', 'clip'].includes(style.overflowX) || box.scrollWidth <= box.clientWidth + 1
        || box.clientWidth <= 1 || box.clientHeight <= 1  // a screen reader's 1-pixel text
        || box.closest('svg, code, pre') || !box.checkVisibility()) continue;
    const edge = box.getBoundingClientRect();
    const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const el = node.parentElement;
      if (!node.textContent.trim() || el.closest('[data-testid="stIconMaterial"]')
          || /Material/.test(getComputedStyle(el).fontFamily) || !el.checkVisibility()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const r = range.getBoundingClientRect();
      if (r.width > 1 && (r.right > edge.right + 1 || r.left < edge.left - 1)) {
        out.push(node.textContent.trim().slice(0, 40));
      }
    }
  }
  return [...new Set(out)];
}"""


def english_words(texts: list[str]) -> list[str]:
    """Latin words among `texts` that are not names, run names or units."""
    words = set()
    for text in texts:
        for run in sorted(RUNS, key=len, reverse=True):  # cdcgan-report before cgan-report
            text = text.replace(run, " ")
        words.update(re.findall(r"[A-Za-z][A-Za-z'’]*", text))
    return sorted(words - NAMES)


def shot(page, step: str) -> None:
    path = ROOT / "test-output" / f"zh-{step}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path))


def all_chinese(page, where: str) -> list[str]:
    """What is wrong with what the page shows now: an error, English beyond names, text cut off,
    text over other text, a control's label cut short."""
    found = []
    if page.get_by_test_id("stException").count():
        found.append(f"{where}: an exception")
    left = english_words(page.evaluate(VISIBLE_TEXT))
    if left:
        found.append(f"{where}: English on screen: {left}")
    if over := page.evaluate(OVERLAPS):
        found.append(f"{where}: text over text: {over}")
    if cut := page.evaluate(CUT_OFF):
        found.append(f"{where}: text cut off: {cut}")
    try:
        nothing_clipped(page)
    except AssertionError as clipped:
        found.append(f"{where}: control label cut short: {clipped}")
    return found


def download(page, key: str) -> np.ndarray:
    """The grayscale pixels of the PNG the download button `key` gives."""
    with page.expect_download() as pressed:
        page.locator(f".st-key-{key} button").click()
    with Image.open(pressed.value.path()) as png:
        assert png.format == "PNG"
        return np.asarray(png.convert("L"))


@pytest.mark.timeout(900)
def test_every_page_and_the_lecture_in_chinese_at_1280x720(lecture_server):
    from app.figures import header_height

    problems: list[str] = []  # all of them, from every step, then one assertion
    with chromium_page(WIDTH, HEIGHT) as page:
        page.goto(lecture_server + "/?lang=zh")
        settle_drawn(page)
        # The checks see what they look for: two labels drawn over each other, a label cut off
        # with an ellipsis and an English word, put into the page for a moment.
        page.evaluate("""() => {
            const probe = document.createElement('div');
            probe.id = 'zh-probe';
            probe.innerHTML = '<span style="position:absolute;left:0;top:0">训练轮次</span>'
                + '<span style="position:absolute;left:8px;top:2px">生成器</span>'
                + '<div style="position:absolute;top:40px;width:40px;overflow:hidden;'
                + 'white-space:nowrap;text-overflow:ellipsis"><p>判别器的判断很长</p></div>'
                + '<p style="position:absolute;top:80px">Epoch</p>';
            probe.style.cssText = 'position:relative;height:120px';
            document.querySelector('[data-testid="stMain"]').prepend(probe);
        }""")
        problems_seen = " ".join(all_chinese(page, "probe"))
        assert "训练轮次 / 生成器" in problems_seen, problems_seen
        assert "判别器的判断很长" in problems_seen and "'Epoch'" in problems_seen, problems_seen
        page.evaluate("() => document.getElementById('zh-probe').remove()")

        links = page.get_by_test_id("stSidebarNavLink")
        count = links.count()
        assert count == 9, links.all_inner_texts()
        for k in range(count):
            link = page.get_by_test_id("stSidebarNavLink").nth(k)
            name = link.inner_text().strip().splitlines()[-1]
            link.click()
            page.get_by_role("heading", level=1).first.wait_for()
            settle_drawn(page)
            shot(page, f"{k}-page")
            problems += all_chinese(page, name)

        # The lecture's steps on the evolution page: the report's epochs, column 3, Play.
        page.get_by_test_id("stSidebarNavLink").first.click()
        settle_drawn(page)
        for epoch in ("1", "20", "50", "75", "80"):
            page.get_by_role("button", name=epoch, exact=True).click()
            page.locator(".cgan-figure figcaption").filter(
                has_text=zh("Epoch {epoch}").format(epoch=epoch)).wait_for()
            settle_drawn(page)
        page.locator(".st-key-evolution_column").get_by_text("3", exact=True).click()
        settle_drawn(page)
        problems += all_chinese(page, "evolution, column 3")
        shot(page, "lecture-3-column")
        grid = download(page, "evolution_png")
        assert_chinese_label(grid[header_height(4) + 4 * 280 :],
                             zh("{run}, epoch {epoch}").format(run="cgan-report", epoch=80))
        page.locator(".st-key-evolution_play button").click()
        page.wait_for_timeout(800)
        problems += all_chinese(page, "evolution, playing")
        page.locator(".st-key-evolution_play button").click()
        settle_drawn(page)

        # Generate: digit 7, seeds 42 and 43.
        page.get_by_test_id("stSidebarNavLink").nth(1).click()
        settle_drawn(page)
        main = page.get_by_test_id("stMain")  # the sidebar's language choice is a button group too
        main.get_by_test_id("stButtonGroup").first.get_by_role("radio", name="7").click()
        seed = main.get_by_test_id("stNumberInputField").first
        for value in ("42", "43"):
            seed.fill(value)
            seed.press("Enter")
            page.locator(".cgan-figure figcaption").filter(has_text=value).wait_for()
            settle_drawn(page)
        problems += all_chinese(page, "generate, digit 7, seed 43")
        shot(page, "lecture-4-generate")

        # Compare: the report's epochs for the grids, then for one digit; the figure as a PNG.
        page.get_by_test_id("stSidebarNavLink").nth(2).click()
        settle_drawn(page)
        labels = page.locator(".cgan-figure figcaption")
        expected = [zh("Epoch {epoch}").format(epoch=e) for e in (20, 50, 75, 80)]
        assert labels.all_inner_texts() == expected
        figure = download(page, "compare_png")
        width = (figure.shape[1] - 3 * 24) // 4
        label_size = max(24, width // 12)
        for k, text in enumerate(expected):
            assert_chinese_label(figure[: label_size + 10, k * (width + 24) : k * (width + 24) + width],
                                 text)
        page.locator(".st-key-compare_mode").get_by_role("radio").nth(1).click()
        settle_drawn(page)
        problems += all_chinese(page, "compare, one digit")
        shot(page, "lecture-5-compare-digit")
    assert problems == [], "\n".join(problems)
