"""Step 8 of the lecture in a real browser: start a run on the Train page and watch it move by
itself; close the tab and stop the app, and the run trains on; a restarted app lists it, and its
epochs show on the other pages."""

from __future__ import annotations

import contextlib
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser_support import chromium_page, streamlit_server, wait_for_app
from tests.conftest import wait_until
from cgan import jobs
from cgan.runs import Run

EPOCHS = 300  # more than it will train: the test stops it


def open_train_page(page, url: str) -> None:
    page.goto(url)
    wait_for_app(page)
    page.get_by_role("link", name="Train", exact=True).click()
    wait_for_app(page)
    page.get_by_role("button", name="Start training").wait_for()


@contextlib.contextmanager
def screenshot_on_failure(page, path):
    """Keep what the browser showed when a step failed."""
    try:
        yield
    except BaseException:
        page.screenshot(path=path)
        raise


@pytest.fixture
def root(tmp_path, no_leftover_trainers):
    return no_leftover_trainers(tmp_path)


def test_a_run_started_in_the_browser_outlives_the_tab_and_the_app(root, output_dir):
    env = {"CGAN_MAX_JOBS": "1"}
    with streamlit_server(checkpoints=root, env=env) as url:
        with (
            chromium_page(width=1280, height=720) as page,  # a projector
            screenshot_on_failure(page, output_dir / "train-failed-1.png"),
        ):
            open_train_page(page, url)
            page.get_by_role("spinbutton", name="Epochs").fill(str(EPOCHS))
            page.get_by_role("spinbutton", name="Training images").fill("1000")
            page.get_by_role("spinbutton", name="Batch size").fill("100")
            page.get_by_role("textbox", name="Run name").fill("browser-run")
            page.get_by_role("button", name="Start training").click()
            # The confirmation is on the first screen, without scrolling.
            confirmation = page.get_by_text("Started browser-run")
            confirmation.wait_for()
            box = confirmation.bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= 720, box
            page.screenshot(path=output_dir / "train-started-720p.png")
            page.get_by_role("heading", name="browser-run").wait_for()
            # Nobody touches the page: its own refresh brings epochs, an ETA and the loss chart.
            progress = page.get_by_test_id("stProgress")  # the banner at the top says it too
            progress.get_by_text(re.compile(rf"Epoch [1-9]\d* of {EPOCHS} · about .* left")).wait_for(
                timeout=120_000
            )
            page.get_by_test_id("stPlotlyChart").first.wait_for()
            # The sidebar's run picker (every page's) offers the new run while it trains.
            expect(page.get_by_test_id("stSidebar").get_by_role("combobox")).to_have_value(
                "browser-run", timeout=30_000
            )
            page.screenshot(path=output_dir / "train-running.png")
        assert jobs.get_job("browser-run", root).active, "closing the tab stopped the training"
    app_stopped_at = time.time()
    assert jobs.get_job("browser-run", root).active, "stopping the app stopped the training"
    run = Run(root / "browser-run")
    wait_until(lambda: run.history()[-1].finished_at > app_stopped_at, 120, message="an epoch without the app")

    # Stopped from another process than the one that started it: it ends after a complete epoch.
    jobs.stop("browser-run", root)
    job = wait_until(lambda: (j := jobs.get_job("browser-run", root)) and not j.active and j, 120,
                     message="the run to stop")
    assert job.state == "stopped", job.log_tail()
    last = run.epochs()[-1]
    assert int(run.load_resume_state()["epoch"]) == last

    # A restarted app lists the job from disk, and the other pages show its epochs.
    with (
        streamlit_server(checkpoints=root, env=env) as url,
        chromium_page(height=1400) as page,
        screenshot_on_failure(page, output_dir / "train-failed-2.png"),
    ):
        open_train_page(page, url)
        page.get_by_text(f"Epoch {last} of {EPOCHS}").wait_for()
        page.get_by_role("button", name="Resume").wait_for()
        assert "stopped" in page.get_by_test_id("stMain").inner_text()
        page.get_by_role("button", name="Show on all pages").click()
        wait_for_app(page)
        page.get_by_role("link", name="Training evolution").click()
        wait_for_app(page)
        page.get_by_test_id("stImageCaption").filter(has_text=f"Epoch {last}").first.wait_for()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stImage] img')]"
            ".some(image => image.complete && image.naturalWidth > 0)"
        )
        page.screenshot(path=output_dir / "train-evolution.png")
