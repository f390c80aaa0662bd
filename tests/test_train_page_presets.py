"""The Train page's recipes (cgan.presets), headless (AppTest): each is offered with its sentence and
fills the form; a failure preset started from the page trains with its settings, and the job view
names the symptom its numbers show, while it trains and after; the weight-average box reaches the
trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from cgan import jobs
from cgan.presets import LECTURE, RECIPE, choices, preset
from cgan.runs import Run
from tests.conftest import wait_until
from tests.test_app_train import open_page, press, watch


@pytest.fixture
def root(tmp_path, monkeypatch, no_leftover_trainers) -> Path:
    """An empty checkpoints folder for the page; no trainer outlives the test."""
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("CGAN_MAX_JOBS", "1")
    return no_leftover_trainers(tmp_path)


def form(page, model: str = "cgan") -> dict:
    def value(name):
        if name == "lr":
            return page.text_input(key=f"train_{model}_lr").value
        if name == "ema":
            return page.checkbox(key=f"train_{model}_ema").value
        return page.number_input(key=f"train_{model}_{name}").value

    names = ("epochs", "lr", "beta1", "limit", "batch_size", "seed", "ema") + (("g_steps",) if model == "cgan" else ())
    return {name: value(name) for name in names}


def notes(page) -> list[str]:
    return [m.value for m in [*page.warning, *page.info]]


def test_each_recipe_is_offered_with_its_sentence_and_fills_the_form(root):
    page = open_page()
    picker = page.radio(key="train_preset")
    assert picker.value is None  # nothing picked: the form holds the lecture's run
    assert picker.options == [item.title for item in choices()]
    assert list(picker.proto.captions) == [item.description for item in choices()]
    assert form(page) == dict(epochs=30, lr="0.003", beta1=0.5, limit=30_000, batch_size=64, seed=0,
                              ema=False, g_steps=1)
    # The form says in one sentence what the class will see, and when.
    assert any(LECTURE.promise in c.value for c in page.caption)

    for item in choices():
        picker = page.radio(key="train_preset")
        picker.set_value(item.name).run()
        assert not page.exception
        config = item.config()
        assert page.radio(key="train_model").value == "cgan"
        assert form(page) == dict(epochs=config.epochs, lr=f"{config.lr:g}", beta1=config.beta1,
                                  limit=config.limit, batch_size=config.batch_size, seed=0,
                                  ema=False, g_steps=config.g_steps), item.name
    assert form(page)["lr"] == "0.05" and RECIPE.config().lr == 1e-3
    page.radio(key="train_model").set_value("cdcgan").run()
    page.radio(key="train_preset").set_value("discriminator-wins").run()
    assert page.radio(key="train_model").value == "cgan"  # the recipes are the CGAN's
    assert form(page)["beta1"] == 0.9 and form(page)["lr"] == "0.005"


def test_discriminator_wins_started_from_the_page_is_named_while_it_trains_and_after(root):
    page = open_page()
    page.radio(key="train_preset").set_value("discriminator-wins").run()
    # Longer than the preset's 8 epochs, so the symptom shows while it still trains.
    page.number_input(key="train_cgan_epochs").set_value(40)
    page.checkbox(key="train_cgan_ema").check()
    page.text_input(key="train_name").input("d-wins")
    press(page, "train_start")
    assert not page.error

    page = watch(page, lambda p: any("discriminator is winning" in n for n in notes(p)), timeout=240)
    config = Run(root / "d-wins").config()
    wanted = preset("discriminator-wins").config()
    assert (config["lr"], config["beta1"], config["limit"], config["ema"]) == (wanted.lr, 0.9, 10_000, 0.999)
    shown = [n for n in page.warning if "discriminator is winning" in n.value]
    assert shown and shown[0].value.startswith("**Epoch "), notes(page)  # a warning while it trains
    assert any("beta1 0.9" in c.value and "Weight average 0.999" in c.value for c in page.caption)

    press(page, "train_stop_d-wins")
    page = watch(page, lambda p: jobs.get_job("d-wins", root).state == "stopped", timeout=120)
    page.run()
    assert not page.warning
    assert any("discriminator is winning" in n.value for n in page.info)  # a note once stopped
    run = Run(root / "d-wins")
    epoch = run.weight_epochs()[-1]
    assert run.load_generator(epoch, averaged=True) is not None  # the average was kept


def test_the_mode_collapse_recipe_reaches_the_trainer(root):
    page = open_page()
    page.radio(key="train_preset").set_value("mode-collapse").run()
    assert page.number_input(key="train_cgan_g_steps").value == 5
    assert page.number_input(key="train_cgan_limit").value is None  # all 60,000 images
    page.text_input(key="train_name").input("collapse")
    press(page, "train_start")
    assert not page.error
    arguments = Run(root / "collapse").status()["arguments"]
    assert arguments[arguments.index("--g-steps") + 1] == "5" and "--limit" not in arguments
    shown = " ".join(c.value for c in page.caption)
    assert "measured on 250 samples of each digit after every epoch (for 60,000 images" in shown, shown
    run = Run(root / "collapse")  # the trainer writes the run's configuration as it starts
    wait_until(run.exists, 60, message=lambda: f"the run's configuration; status {run.status()}")
    assert run.config()["g_steps"] == 5
    jobs.stop("collapse", root)


def test_a_healthy_run_gets_a_health_check_line_and_no_warning(root):
    page = open_page()
    page.radio(key="train_preset").set_value("report-recipe").run()
    page.number_input(key="train_cgan_epochs").set_value(40)
    page.number_input(key="train_cgan_limit").set_value(600)
    page.text_input(key="train_name").input("healthy")
    press(page, "train_start")
    page = watch(page, lambda p: any(c.value.startswith("Health check at epoch") for c in p.caption))
    assert not page.warning, notes(page)
    press(page, "train_stop_healthy")


def test_the_recipes_in_a_browser_at_projector_size(tmp_path, output_dir):
    from tests.browser_support import chromium_page, streamlit_server, wait_for_app

    with streamlit_server(checkpoints=tmp_path) as url, chromium_page(width=1280, height=720) as page:
        page.goto(url)
        wait_for_app(page)
        page.get_by_role("link", name="Train", exact=True).click()
        wait_for_app(page)
        page.get_by_text("Start from a recipe").click()  # folded until asked for
        for item in choices():  # each offered with its sentence
            page.get_by_text(item.description).wait_for()
        page.get_by_text(preset("discriminator-wins").title, exact=True).click()
        wait_for_app(page)
        learning_rate = page.get_by_role("textbox", name="Learning rate")
        expect(learning_rate).to_have_value("0.005")
        expect(page.get_by_role("spinbutton", name="Adam beta1")).to_have_value("0.9")
        expect(page.get_by_role("spinbutton", name="Epochs")).to_have_value("8")
        weight_average = page.get_by_role("checkbox", name="Keep a weight average of G")
        expect(weight_average).not_to_be_checked()
        expect(page.get_by_text(preset("discriminator-wins").description)).to_be_visible()  # still open
        page.get_by_text("Start from a recipe").scroll_into_view_if_needed()
        page.screenshot(path=output_dir / "train-presets-720p.png")
        page.get_by_role("button", name="Start training").scroll_into_view_if_needed()
        page.screenshot(path=output_dir / "train-presets-form-720p.png")  # the form it filled
        assert page.get_by_test_id("stException").count() == 0
