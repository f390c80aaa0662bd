"""The README's screenshots: every page of the app at a projector's 1280x720, on the shipped runs,
in English (docs/screenshots/) and in Simplified Chinese (docs/screenshots/zh/).

    .venv/bin/python -m tools.readme_screenshots [--lang en,zh]

Starts a real Streamlit server on checkpoints/ (cgan-report, cdcgan-report), opens each page in
Debian's Chromium (``?lang=`` in the address), waits until the script has finished and Plotly has
drawn, and saves one window (the first screen, or the part of a long page a lecturer scrolls to)
as a palette PNG. Nothing is trained.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

from app.i18n import LANGUAGES, translate
from tests.browser_support import browser_missing, chromium_page, set_sidebar, streamlit_server, wait_for_app

ROOT = Path(__file__).resolve().parent.parent
OUT = {"en": ROOT / "docs" / "screenshots", "zh": ROOT / "docs" / "screenshots" / "zh"}
WIDTH, HEIGHT = 1280, 720
IMAGES = "[data-testid='stImage'] img"
CHARTS = "[data-testid='stPlotlyChart']:visible"  # not those of a hidden tab


def settle(page) -> None:
    """The script has finished, every image has its pixels and every chart is drawn."""
    wait_for_app(page, timeout=180_000)
    page.wait_for_function(
        f"""() => [...document.querySelectorAll("{IMAGES}")]
                 .every(img => img.complete && img.naturalWidth > 0)"""
    )
    charts = page.locator(CHARTS)
    for i in range(charts.count()):
        charts.nth(i).locator("svg text").first.wait_for()
    page.wait_for_timeout(1000)  # Plotly lays out after the script ends; the layout after the images
    wait_for_app(page)


LANG = ["en"]  # the language of the pages being taken (main() sets it)


def t(message: str) -> str:
    """`message` as the page shows it in the language being taken."""
    return translate(message, LANG[0])


def open_page(page, url: str, path: str, heading: str) -> None:
    page.goto(f"{url}{path}?lang={LANG[0]}")
    page.get_by_role("heading", level=1).filter(has_text=t(heading)).wait_for(timeout=180_000)
    set_sidebar(page, True)
    settle(page)


def scroll_to(page, locator, y: int = 16, edge: str = "top") -> None:
    """Scroll the page (Streamlit scrolls its main block, not the window) until the element's top
    (or bottom) edge is `y` pixels below the window's top: a part of a long page, as a lecturer
    scrolls to it."""
    locator.evaluate(
        """(e, [y, edge]) => {
            let box = e.parentElement;
            while (box && !(box.scrollHeight > box.clientHeight
                            && ['auto', 'scroll'].includes(getComputedStyle(box).overflowY))) {
                box = box.parentElement;
            }
            box = box || document.scrollingElement;
            box.scrollBy(0, e.getBoundingClientRect()[edge] - y);
        }""",
        [y, edge],
    )
    page.wait_for_timeout(300)


def evolution(page, url: str) -> None:
    open_page(page, url, "/", "Training evolution")
    page.get_by_role("button", name="200", exact=True).click()
    page.locator(".cgan-figure figcaption").filter(has_text=t("Epoch {epoch}").format(epoch=200)).wait_for()
    page.locator(".st-key-evolution_column").get_by_text("3", exact=True).click()
    settle(page)


def generate(page, url: str) -> None:
    open_page(page, url, "/generate", "Generate digits")
    page.get_by_test_id("stMain").get_by_test_id("stButtonGroup").first.get_by_role("radio", name="7").click()
    page.locator(".cgan-figure figcaption").filter(has_text="7").first.wait_for()
    settle(page)


def compare(page, url: str) -> None:
    open_page(page, url, "/compare", "Compare epochs")


def losses(page, url: str) -> None:
    open_page(page, url, "/losses", "Loss curves")
    page.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for()
    settle(page)


def quality(page, url: str) -> None:
    open_page(page, url, "/quality", "Quality")
    page.get_by_text(t("Measured quality per epoch")).first.wait_for()
    set_sidebar(page, False)  # room for the quality and loss curves side by side
    settle(page)


REJECTED = {"en": "the classifier rejected", "zh": "分类器不认可"}  # a piece of the rejected digits' sentence


def quality_hardest(page, url: str) -> None:
    open_page(page, url, "/quality", "Quality")
    page.get_by_role("tab", name=t("Which digits are hardest?")).click()
    page.get_by_text(REJECTED[LANG[0]]).first.wait_for(timeout=180_000)
    settle(page)


def real_vs(page, url: str) -> None:
    open_page(page, url, "/real_vs", "Real vs CGAN vs cDCGAN")
    page.get_by_test_id("stMain").get_by_test_id("stButtonGroup").first.get_by_role("radio", name="5").click()
    settle(page)


def interpolation(page, url: str) -> None:
    """From the controls down to D's verdict on every step and the downloads."""
    open_page(page, url, "/interpolate", "Interpolation")
    scroll_to(page, page.get_by_role("heading", level=1), y=0, edge="bottom")


def discriminator(page, url: str) -> None:
    """One generated 7, D's verdict under each of the ten labels."""
    open_page(page, url, "/discriminator", "The discriminator's verdict")
    page.get_by_test_id("stPlotlyChart").nth(2).wait_for()
    settle(page)
    scroll_to(page, page.get_by_test_id("stWidgetLabel").get_by_text(t("Noise seed"), exact=True).first)


def discriminator_epochs(page, url: str) -> None:
    """The same page further down: D's view of real and generated digits across the epochs."""
    open_page(page, url, "/discriminator", "The discriminator's verdict")
    page.get_by_test_id("stPlotlyChart").nth(2).wait_for()
    settle(page)
    scroll_to(page, page.get_by_role("heading", name=t("D's view across the epochs")))


def train(page, url: str) -> None:
    """The form down to its Start button (not pressed: nothing trains) and the list of runs."""
    open_page(page, url, "/train", "Train")
    scroll_to(page, page.get_by_test_id("stWidgetLabel").get_by_text(t("Model"), exact=True).first)


def train_recipes(page, url: str) -> None:
    """The recipes unfolded: the report's, and failures on purpose."""
    open_page(page, url, "/train", "Train")
    page.get_by_text(t("Start from a recipe: the report's, or a failure on purpose")).click()
    page.get_by_role("radiogroup", name=t("Recipe")).wait_for()
    settle(page)


# (file name, how to get there), in the order of the README's Screenshots table.
SHOTS = [
    ("evolution", evolution),
    ("generate", generate),
    ("compare", compare),
    ("losses", losses),
    ("quality", quality),
    ("quality-hardest", quality_hardest),
    ("real-vs", real_vs),
    ("interpolation", interpolation),
    ("discriminator", discriminator),
    ("discriminator-epochs", discriminator_epochs),
    ("train", train),
    ("train-recipes", train_recipes),
]


def problems(page) -> list[str]:
    """What must not be in a README screenshot."""
    found = []
    for test_id in ("stException", "stAlertContentError", "stSpinner", "stSkeleton"):
        if page.get_by_test_id(test_id).count():
            found.append(test_id)
    if "Traceback" in page.inner_text("body"):
        found.append("a traceback")
    return found


def save_small(png: bytes, path: Path) -> None:
    """A 256-colour palette without dithering: text and pixel-art digits stay crisp, and a page is
    a fraction of its RGB size."""
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                             dither=Image.Dither.NONE)
        small.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The README's screenshots, in each language.")
    parser.add_argument("--lang", default=",".join(LANGUAGES), help="languages, e.g. en,zh (default: all)")
    langs = parser.parse_args(argv).lang.split(",")
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        parser.error(f"--lang: no language {', '.join(unknown)}; choose from {', '.join(LANGUAGES)}")
    missing = browser_missing()
    if missing:
        print(f"screenshots: {missing}", file=sys.stderr)
        return 1
    failed = []
    with streamlit_server(checkpoints=ROOT / "checkpoints", timeout=180) as url, \
            chromium_page(WIDTH, HEIGHT) as page:
        for lang in langs:
            LANG[0] = lang
            OUT[lang].mkdir(parents=True, exist_ok=True)
            for name, go in SHOTS:
                go(page, url)
                page.mouse.move(WIDTH // 2, 2)  # no hover highlight on the last control clicked
                page.wait_for_timeout(300)
                wrong = problems(page)
                path = OUT[lang] / f"{name}.png"
                save_small(page.screenshot(), path)
                failed += [f"{lang} {name}: {what}" for what in wrong]
                print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KB"
                      + (f"  PROBLEM: {', '.join(wrong)}" if wrong else ""))
    if failed:
        print("screenshots: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
