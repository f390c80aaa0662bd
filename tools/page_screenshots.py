"""Every page of the app in each language, screen by screen, to look at.

    .venv/bin/python -m tools.page_screenshots [--lang en,zh] [--size 1280x720] [--out test-output/pages]

Starts a real Streamlit server on checkpoints/ (the shipped runs), opens each page from the
sidebar in Debian's Chromium with ``?lang=`` in the address, waits until the script has finished
and every picture and chart is drawn, and saves the first screen and each further screenful of the
page as it scrolls (Streamlit scrolls its main block, not the window): OUT/<lang>-<n>-<page>-<k>.png.
Nothing is trained; no button that starts or deletes anything is pressed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

from tests.browser_support import (
    browser_missing, chromium_page, settle_drawn, streamlit_server,
)

ROOT = Path(__file__).resolve().parent.parent

SCROLLER = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  let box = main;
  for (const e of [main, ...main.querySelectorAll('*')]) {
    const s = getComputedStyle(e);
    if (e.scrollHeight > e.clientHeight + 2 && ['auto', 'scroll'].includes(s.overflowY)) { box = e; break; }
  }
  return box;
}"""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "page"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", default="en,zh", help="languages, comma-separated")
    parser.add_argument("--size", default="1280x720", help="window, WIDTHxHEIGHT")
    parser.add_argument("--out", type=Path, default=ROOT / "test-output" / "pages")
    parser.add_argument("--most", type=int, default=4, help="screenfuls per page at most")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        print(f"page_screenshots: {missing}", file=sys.stderr)
        return 1
    width, height = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    with streamlit_server(checkpoints=ROOT / "checkpoints", timeout=180) as url, \
            chromium_page(width, height) as page:
        for lang in args.lang.split(","):
            page.goto(f"{url}/?lang={lang}")
            settle_drawn(page, pause_ms=1200)
            links = page.get_by_test_id("stSidebarNavLink")
            names = [urlparse(links.nth(k).get_attribute("href") or "").path.strip("/") or "evolution"
                     for k in range(links.count())]
            for n, name in enumerate(names):
                page.get_by_test_id("stSidebarNavLink").nth(n).click()
                page.get_by_role("heading", level=1).first.wait_for(timeout=180_000)
                settle_drawn(page, pause_ms=1200)
                box = page.evaluate_handle(SCROLLER)
                for k in range(args.most):
                    path = args.out / f"{lang}-{n}-{slug(name)}-{k}.png"
                    page.mouse.move(width // 2, 2)
                    page.screenshot(path=str(path))
                    print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                    before = box.evaluate("b => b.scrollTop")
                    box.evaluate(f"b => b.scrollBy(0, {height - 120})")
                    page.wait_for_timeout(400)
                    if box.evaluate("b => b.scrollTop") == before:
                        break
                box.evaluate("b => b.scrollTo(0, 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
