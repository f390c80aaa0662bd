"""A real Streamlit server and a real Chromium for end-to-end tests.

    with streamlit_server(checkpoints=tmp_dir) as url, chromium_page() as page:
        page.goto(url)
        wait_for_app(page)

The server is `streamlit run app/main.py` from the repository root on a free loopback port, with
$CGAN_CHECKPOINTS pointing at the runs the test made. Chromium is Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` different free loopback ports (their sockets are held open together while chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def wait_for_health(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 90) -> None:
    """Until the Streamlit server at `url` answers its health check; fails at once, with the end of
    its log, if `process` exits first."""
    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                return response.read().decode().strip() == "ok"
        except OSError:
            return False

    wait_until(healthy, timeout, interval=0.3,
               message=lambda: f"streamlit to answer on {url}: {log_path.read_text()[-2000:]}")


@contextlib.contextmanager
def streamlit_server(checkpoints: Path | None = None, env: dict | None = None, timeout: float = 90,
                     launcher: bool = False):
    """`streamlit run app/main.py`, or with launcher=True the lecturer's `python -m app`."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    if checkpoints is not None:
        environment["CGAN_CHECKPOINTS"] = str(checkpoints)
    log_path = ROOT / "test-output" / f"streamlit-{port}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 (the server writes to it until stop_app closes it)
    if launcher:
        line = [sys.executable, "-m", "app", "--port", str(port), "--server.headless", "true"]
    else:
        line = [
            sys.executable, "-m", "streamlit", "run", "app/main.py",
            "--server.headless", "true",
            "--server.address", "127.0.0.1",
            "--server.port", str(port),
            "--browser.gatherUsageStats", "false",
        ]
    process = subprocess.Popen(
        line,
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, log_path, timeout)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


_shared: dict = {}  # this process's Playwright and the Chromium every chromium_page() opens a tab in


def shared_browser():
    """One headless Chromium for the whole process, launched on first use (and again if it went
    away); close_shared_browser() ends it."""
    browser = _shared.get("browser")
    if browser is None or not browser.is_connected():
        from playwright.sync_api import sync_playwright

        if "playwright" not in _shared:
            _shared["playwright"] = sync_playwright().start()
        _shared["browser"] = _shared["playwright"].chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    return _shared["browser"]


def close_shared_browser() -> None:
    browser, playwright = _shared.pop("browser", None), _shared.pop("playwright", None)
    if browser is not None and browser.is_connected():
        browser.close()
    if playwright is not None:
        playwright.stop()


@contextlib.contextmanager
def chromium_page(width: int = 1600, height: int = 1000, fresh: bool = False):
    """A page of its own browser context (its own cookies, storage and cache, as a new browser
    has) in the process's shared Chromium; with fresh=True, in a Chromium launched for it alone
    (a first visit measured from a cold browser)."""
    if fresh:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(60_000)
                yield page
            finally:
                browser.close()
        return
    context = shared_browser().new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
    finally:
        context.close()


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until the script has finished its current run."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


def settle_drawn(page, pause_ms: int = 600) -> None:
    """The script has finished, every picture has its pixels and every chart its Plotly SVG (one
    below the fold is scrolled to, since Plotly may wait to draw it until it is seen); then the
    page's top is shown again."""
    wait_for_app(page, timeout=180_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll(".cgan-figure img, [data-testid='stImage'] img")]
                 .every(img => img.complete && img.naturalWidth > 0)"""
    )
    page.wait_for_function(
        """() => {
            const waiting = [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
                .filter(c => c.checkVisibility() && !c.querySelector('svg.main-svg'));
            if (waiting.length) waiting[0].scrollIntoView({block: 'nearest'});
            return waiting.length === 0;
        }""", polling=250)
    # By script: a rerun may replace the heading while a locator would be scrolling to it.
    page.evaluate("() => document.querySelector('h1')?.scrollIntoView({block: 'nearest'})")
    page.wait_for_timeout(pause_ms)
    wait_for_app(page)


def set_sidebar(page, open_: bool) -> None:
    """Open or close the sidebar and wait for its slide to end."""
    sidebar = page.get_by_test_id("stSidebar")
    if (sidebar.get_attribute("data-collapsed") == "false") == open_:
        return
    if open_:
        page.get_by_role("button", name="Expand sidebar").click()
    else:
        sidebar.hover()
        page.get_by_role("button", name="Collapse sidebar").click(force=True)
    page.wait_for_function(
        f"""() => document.querySelector('[data-testid="stSidebar"]')
                 .getAttribute('data-collapsed') === '{str(not open_).lower()}'"""
    )
    page.wait_for_timeout(800)  # the sidebar's slide


def browser_missing() -> str | None:
    """Why a real-browser test cannot run here, or None when it can."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def nothing_clipped(page) -> None:
    """No control label cut short ("Rand...", "One dig..."): each label's text fits its box."""
    clipped = page.evaluate(
        """() => [...document.querySelectorAll(
                '[data-testid="stMain"] [data-testid="stWidgetLabel"] p,'
                + ' [data-testid="stMain"] button p,'
                + ' [data-testid="stMain"] [data-testid="stButtonGroup"],'
                + ' [data-testid="stMain"] [data-testid="stButtonGroup"] div')]
            .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
            .map(e => e.innerText.slice(0, 40))"""
    )
    assert clipped == [], clipped
