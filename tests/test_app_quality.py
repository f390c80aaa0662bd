"""The Quality page: headless (AppTest) on small real runs, and once in a real browser."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from cgan import metrics
from cgan.runs import Run
from conftest import ROOT

MAIN = str(ROOT / "app" / "main.py")
PER_DIGIT = 20


@pytest.fixture(scope="module")
def measured_root(cgan_run, tmp_path_factory):
    """A checkpoints folder with one run whose epochs 2 and 4 are measured."""
    root = tmp_path_factory.mktemp("quality")
    run = Run(shutil.copytree(cgan_run.path, root / "measured"))
    metrics.evaluate_run(run, [2, 4], per_digit=PER_DIGIT, log=lambda line: None)
    return root


def open_page(root, monkeypatch) -> AppTest:
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(root))
    app = AppTest.from_file(MAIN, default_timeout=90).run()
    app.switch_page("views/quality.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown) + "\n".join(c.value for c in app.caption)


def test_page_shows_the_stored_figures(measured_root, monkeypatch):
    app = open_page(measured_root, monkeypatch)
    assert not app.error, [e.value for e in app.error]
    stored = {r.epoch: r.metrics for r in Run(measured_root / "measured").history()}
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Accuracy"] == f"{100 * stored[4]['accuracy']:.1f}%"  # the newest measured epoch
    assert tiles["Fréchet distance"] == f"{stored[4]['frechet']:.2f}"
    charts = app.get("plotly_chart")
    assert len(charts) == 4  # losses, quality curves, per-digit accuracy, per-digit diversity
    page_text = texts(app)
    assert f"Of {PER_DIGIT} generated" in page_text or "read every one" in " ".join(s.value for s in app.success)
    assert "Nearest training image: distance" in page_text
    assert "Real MNIST digits score" in page_text
    # Epochs 1 and 3 have weights but no figures: offered for measuring.
    assert app.multiselect(key="quality_evaluate_measured").options == ["1", "3"]

    # Another epoch: its own figures.
    app.select_slider(key="quality_epoch").set_value(2).run()
    assert not app.exception
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Accuracy"] == f"{100 * stored[2]['accuracy']:.1f}%"


def test_evaluate_now_stores_metrics(cgan_run, tmp_path, monkeypatch):
    run = Run(shutil.copytree(cgan_run.path, tmp_path / "fresh"))
    app = open_page(tmp_path, monkeypatch)
    assert any("no quality measurements yet" in i.value for i in app.info)
    app.multiselect(key="quality_evaluate_fresh").set_value([3])
    app.button(key="quality_evaluate").click().run()
    assert not app.exception and not app.error
    stored = {r.epoch: r.metrics for r in run.history()}
    assert stored[3]["samples_per_digit"] == metrics.DEFAULT_PER_DIGIT
    assert [e for e, m in stored.items() if m] == [3]
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Accuracy"] == f"{100 * stored[3]['accuracy']:.1f}%"


def test_broken_weights_give_one_line_not_a_traceback(measured_root, tmp_path, monkeypatch):
    run = Run(shutil.copytree(measured_root / "measured", tmp_path / "broken"))
    run.weights_path(4).write_bytes(b"not a checkpoint")
    app = open_page(tmp_path, monkeypatch)
    assert app.error, "the broken file should be reported"
    assert all(len(e.value.strip().splitlines()) == 1 for e in app.error)
    assert "generator_0004.pt" in app.error[0].value
    assert app.get("plotly_chart")  # what could be read is still shown


def test_missing_classifier_is_one_line(measured_root, tmp_path, monkeypatch):
    shutil.copytree(measured_root / "measured", tmp_path / "elsewhere")
    monkeypatch.setattr(metrics, "CLASSIFIER_PATH", tmp_path / "classifier.pt")
    app = open_page(tmp_path, monkeypatch)
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "python -m cgan.metrics train-classifier" in errors[0]
    assert len(errors[0].splitlines()) == 1


def test_quality_page_in_a_real_browser(measured_root, output_dir):
    from tests.browser_support import chromium_page, streamlit_server, wait_for_app

    with streamlit_server(checkpoints=measured_root) as url, chromium_page() as page:
        page.goto(url + "/quality")
        wait_for_app(page, timeout=120_000)
        page.get_by_text("Measured quality per epoch").first.wait_for()
        charts = page.get_by_test_id("stPlotlyChart")
        assert charts.count() == 4
        # Plotly drew the curves: one SVG path per trace in the quality chart.
        curves = charts.nth(1).locator("g.scatterlayer path.js-line")
        assert curves.count() >= 2
        assert page.get_by_test_id("stException").count() == 0
        # The page scrolls inside Streamlit's own container: make the window as tall as the page.
        height = page.evaluate(
            """() => Math.max(...[...document.querySelectorAll('div, section')]
                 .map(e => e.scrollHeight + e.getBoundingClientRect().top))"""
        )
        page.set_viewport_size({"width": 1600, "height": int(min(max(height, 1000), 5000))})
        page.wait_for_timeout(500)
        page.screenshot(path=str(output_dir / "quality-page.png"), full_page=True)
        charts.nth(1).screenshot(path=str(output_dir / "quality-curves.png"))
