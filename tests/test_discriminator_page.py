"""The discriminator's verdict on the shipped runs (AppTest): what D's numbers mean, said on the
page with the numbers themselves; near-certain shares written the app's one way (app.numbers);
every chart in the app's template."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

from app.numbers import percent
from cgan import verdict
from cgan.runs import Run
from cgan.sampling import generate, noise
from tests.conftest import ROOT
from tests.test_app import app, images, no_failure, texts
from tests.test_plots import sizes

SHIPPED = ROOT / "checkpoints"


# ---------------------------------------------------------------------------------------------
# percent(): one convention for near-certain shares


@pytest.mark.parametrize("share, text", [
    (0.0, "<1%"), (0.0049, "<1%"), (0.005, "1%"), (0.0149, "1%"), (0.2, "20%"), (0.384, "38%"),
    (0.5, "50%"), (0.874, "87%"), (0.9849, "98%"), (0.9949, "99%"), (0.995, "99%+"), (0.9999, "99%+"),
    (1.0, "99%+"), (np.float32(0.62), "62%"),
])
def test_percent_never_says_100_or_0(share, text):
    assert percent(share) == text


@pytest.mark.parametrize("share", [-0.01, 1.01, math.nan, math.inf])
def test_percent_refuses_what_is_not_a_share(share):
    with pytest.raises(ValueError, match="a share is between 0 and 1"):
        percent(share)


# ---------------------------------------------------------------------------------------------
# The page on the shipped runs


@pytest.fixture
def shipped(monkeypatch, tmp_path):
    """The shipped runs only (links), whatever else is being trained into checkpoints/."""
    for name in ("cgan-report", "cdcgan-report"):
        (tmp_path / name).symlink_to(SHIPPED / name, target_is_directory=True)
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    return tmp_path


def judged_by_hand(run: Run, epoch: int, per_digit: int) -> tuple[np.ndarray, np.ndarray]:
    """D's verdict on the view's real and generated digits, asked one set at a time."""
    digits, labels = verdict.real_test_digits(per_digit)
    discriminator, generator = run.load_discriminator(epoch), run.load_generator(epoch)
    drawn = generate(generator, labels, noise(verdict.VIEW_SEED, len(labels)))
    return verdict.verdict(discriminator, digits, labels), verdict.verdict(discriminator, drawn, labels)


def charts(at) -> dict[str, dict]:
    """The page's charts by title."""
    found = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        found[spec["layout"]["title"]["text"]] = spec
    return found


def guide(at) -> str:
    return next(m.value for m in at.markdown if "matching pairs" in m.value)


def test_a_clean_real_7_with_its_lowest_score_under_7_is_explained(shipped):
    run = Run(SHIPPED / "cgan-report")
    at = app("discriminator")
    at.segmented_control(key="discriminator_source").set_value("A real digit").run()
    at.segmented_control(key="discriminator_digit").set_value(7).run()
    at.number_input(key="discriminator_seed").set_value(20).run()
    no_failure(at)
    shown = images(at)[0]
    assert shown.captions[0] == "A real 7 (MNIST training set, seed 20)"
    every_label = verdict.verdict_for_every_label(run.load_discriminator(200), shown.pixels[::10, ::10])
    assert int(np.argmin(every_label)) == 7  # the case a student asks about
    assert f"## D: {percent(every_label[7])} real" in [m.value for m in at.markdown]
    assert percent(every_label[7]) == "20%"
    # The bars say the same shares, written the same way (the axis says "% real").
    bars = charts(at)["If the label were…"]["data"][0]
    assert bars["text"] == [percent(p).removesuffix("%") for p in every_label]
    assert bars["customdata"] == [percent(p) for p in every_label]  # on hover

    text = guide(at)
    assert ("In training D only ever saw matching pairs (a real digit with its own label, a generated "
            "digit with the label asked for): its verdict on a mismatched pair") in text
    assert "means nothing in particular" in text
    assert "Here label 7 gets D's lowest score of the ten. " in text
    assert ("D's score is relative to what G draws at epoch 200: D learns to reject G's current 7s, so a "
            "real 7 that looks like them scores low; it is not a reading of the digit.") in text
    real, generated = judged_by_hand(run, 200, per_digit=50)
    called_real, called_fake = np.mean(real > 0.5), np.mean(generated <= 0.5)
    assert (percent(called_real), percent(called_fake)) == ("38%", "87%")  # the shipped run at epoch 200
    assert (f"At epoch 200 D calls **{percent(called_real)} of real digits real** and "
            f"**{percent(called_fake)} of generated ones fake** (500 of each") in text


def test_the_guide_follows_the_epoch_and_the_digit(shipped):
    run = Run(SHIPPED / "cgan-report")
    at = app("discriminator")
    at.select_slider(key="discriminator_epoch").set_value(20).run()
    at.segmented_control(key="discriminator_digit").set_value(3).run()
    no_failure(at)
    image = generate(run.load_generator(20), [3], noise(42, 1))[0]
    every_label = verdict.verdict_for_every_label(run.load_discriminator(20), image)
    assert f"## D: {percent(every_label[3])} real" in [m.value for m in at.markdown]
    text = guide(at)
    real, generated = judged_by_hand(run, 20, per_digit=50)
    assert (f"At epoch 20 D calls **{percent(np.mean(real > 0.5))} of real digits real** and "
            f"**{percent(np.mean(generated <= 0.5))} of generated ones fake**") in text
    assert "D learns to reject G's current 3s, so a real 3 that looks like them scores low" in text
    assert ("Here label 3 gets D's lowest score" in text) == (int(np.argmin(every_label)) == 3)


def test_ds_view_across_the_epochs_of_the_shipped_cgan(shipped):
    run = Run(SHIPPED / "cgan-report")
    at = app("discriminator")
    no_failure(at)
    found = charts(at)
    assert list(found) == ["If the label were…", "Epoch 200: what D says", "How often D is right"]
    real, generated = judged_by_hand(run, 200, per_digit=50)
    histogram = found["Epoch 200: what D says"]["data"]
    assert [int(c) for c in histogram[0]["y"]] == np.histogram(real, verdict.BINS)[0].tolist()
    assert [int(c) for c in histogram[1]["y"]] == np.histogram(generated, verdict.BINS)[0].tolist()
    right = (np.sum(real > 0.5) + np.sum(generated <= 0.5)) / 1000
    assert (f"500 real test digits and 500 digits from the same epoch's generator (50 of each label). "
            f"At epoch 200 D is right about {percent(right)} of them") in texts(at.caption)
    curve = found["How often D is right"]["data"][0]
    epochs = verdict.view_epochs(run)
    assert list(curve["x"]) == epochs and len(epochs) == 32
    for epoch in (1, 75, 200):
        real, generated = judged_by_hand(run, epoch, per_digit=50)
        assert curve["y"][epochs.index(epoch)] == pytest.approx((np.sum(real > 0.5) + np.sum(generated <= 0.5)) / 10)
    assert curve["customdata"][epochs.index(200)] == percent(right)

    # Another epoch of the histogram: that section is drawn again, the rest stays.
    at.select_slider(key="discriminator_view_epoch").set_value(1).run()
    no_failure(at)
    assert "Epoch 1: what D says" in charts(at)
    assert "At epoch 200 D calls" in guide(at)


def test_every_chart_is_in_the_apps_template(shipped):
    at = app("discriminator")
    for title, spec in charts(at).items():
        figure = go.Figure(spec)
        assert figure.layout.template.layout.annotationdefaults.bgcolor == "rgba(255,255,255,0.85)", title
        assert min(sizes(figure).values()) >= 16, (title, sizes(figure))
    # The bars' shares keep 16 px however narrow the chart (the drawing's is).
    assert charts(at)["If the label were…"]["layout"]["uniformtext"] == {"minsize": 16, "mode": "show"}
    # Percentages near certainty are never "100%": not in the page's text either.
    page_text = " ".join(m.value for m in at.markdown) + texts(at.caption)
    assert "100%" not in page_text.replace("near 100%", "")


def test_the_shipped_cdcgan(shipped):
    """The shipped cDCGAN: its view (10 digits of each label: its networks cost far more), or,
    for a copy without discriminator weights, the one line saying how to get them."""
    run = Run(SHIPPED / "cdcgan-report")
    at = app("discriminator")
    at.sidebar.selectbox(key="run").set_value("cdcgan-report").run()
    no_failure(at)
    judged = verdict.view_epochs(run)
    if not judged:
        assert [i.value for i in at.info if "no discriminator weights" in i.value]
        assert not at.get("plotly_chart")
        return
    newest = judged[-1]
    real, generated = judged_by_hand(run, newest, per_digit=10)
    assert (f"At epoch {newest} D calls **{percent(np.mean(real > 0.5))} of real digits real** and "
            f"**{percent(np.mean(generated <= 0.5))} of generated ones fake** (100 of each") in guide(at)
    assert list(charts(at)["How often D is right"]["data"][0]["x"]) == judged
