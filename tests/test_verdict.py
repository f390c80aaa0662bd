"""cgan.verdict: the discriminator's probabilities and its per-epoch view, on small real runs."""

from __future__ import annotations

from pathlib import Path

import shutil

import numpy as np
import pytest
import torch

from cgan import verdict
from cgan.runs import Run, RunError
from cgan.sampling import generate, noise


def test_every_epoch_has_a_discriminator(judged_run, judged_cdcgan):
    assert judged_run.discriminator_epochs() == [1, 2, 3]
    assert verdict.view_epochs(judged_run) == [1, 2, 3]
    assert verdict.view_epochs(judged_cdcgan) == [1, 2]


@pytest.mark.parametrize("which", ["cgan", "cdcgan"])
def test_verdict_is_the_sigmoid_of_the_discriminators_logit(which, judged_run, judged_cdcgan):
    run = judged_run if which == "cgan" else judged_cdcgan
    epoch = run.discriminator_epochs()[-1]
    discriminator = run.load_discriminator(epoch)
    images, labels = verdict.real_test_digits(per_digit=3)
    probabilities = verdict.verdict(discriminator, images, labels, batch=7)  # batches of 7: 30 images
    assert probabilities.shape == (30,) and ((probabilities >= 0) & (probabilities <= 1)).all()
    from cgan.data import to_unit_range

    with torch.no_grad():
        logits = discriminator(to_unit_range(images), torch.as_tensor(labels))
    assert np.allclose(probabilities, torch.sigmoid(logits).numpy(), atol=1e-6)
    # One image under every label: the same numbers as ten separate questions.
    every = verdict.verdict_for_every_label(discriminator, images[0])
    assert np.allclose(every, verdict.verdict(discriminator, images[[0] * 10], np.arange(10)))
    assert not np.allclose(every, every[0]), "the label changes D's answer"


def test_epoch_view_tells_real_from_generated_digits(judged_run):
    view = verdict.epoch_view(judged_run, 1, per_digit=20)
    assert view.real.shape == view.generated.shape == (200,)
    # The generated set is what this epoch's generator draws for the same labels.
    images, labels = verdict.real_test_digits(per_digit=20)
    drawn = generate(judged_run.load_generator(1), labels, noise(verdict.VIEW_SEED, 200))
    assert np.allclose(view.generated, verdict.verdict(judged_run.load_discriminator(1), drawn, labels))
    real_counts, generated_counts = view.histograms()
    assert real_counts.sum() == generated_counts.sum() == 200
    # After one short epoch D has the upper hand: real digits score higher than generated ones.
    assert view.real.mean() > view.generated.mean()
    expected = (np.sum(view.real > 0.5) + np.sum(view.generated <= 0.5)) / 400
    assert view.fraction_right == pytest.approx(expected)


def test_the_shares_d_gets_right(judged_run):
    view = verdict.epoch_view(judged_run, 2, per_digit=10)
    assert view.real_called_real == np.mean(view.real > 0.5)
    assert view.generated_called_fake == np.mean(view.generated <= 0.5)
    assert view.fraction_right == pytest.approx((view.real_called_real + view.generated_called_fake) / 2)


def test_a_view_is_judged_once_per_version_of_its_weights(judged_run, tmp_path, monkeypatch):
    run = Run(shutil.copytree(judged_run.path, tmp_path / "copy"))
    calls = []
    monkeypatch.setattr(verdict, "epoch_view", lambda *a: calls.append(a) or real_epoch_view(*a))
    assert not verdict.is_remembered(run, 3, per_digit=10)
    first = verdict.remembered_view(run, 3, per_digit=10)
    assert verdict.is_remembered(run, 3, per_digit=10) and len(calls) == 1
    assert verdict.remembered_view(run, 3, per_digit=10) is first and len(calls) == 1
    assert np.array_equal(first.real, real_epoch_view(judged_run, 3, per_digit=10).real)
    # The trainer rewrites the discriminator's file (a resumed run): judged again.
    path = run.discriminator_path(3)
    state = torch.load(path, weights_only=True)
    torch.save({k: v * 0.5 for k, v in state.items()}, path)
    assert not verdict.is_remembered(run, 3, per_digit=10)
    again = verdict.remembered_view(run, 3, per_digit=10)
    assert len(calls) == 2 and not np.array_equal(again.real, first.real)
    # An epoch without weights says so in one line.
    path.unlink()
    with pytest.raises(RunError, match="epoch 3 has no discriminator weights"):
        verdict.remembered_view(run, 3, per_digit=10)
    assert verdict.view_per_digit(run) == 50 and verdict.is_remembered(run, 3) is False


real_epoch_view = verdict.epoch_view


def test_the_launcher_judges_every_view_before_the_page_asks(judged_run, judged_cdcgan, tmp_path):
    from app import preload

    shutil.copytree(judged_run.path, tmp_path / "cgan-report")
    shutil.copytree(judged_cdcgan.path, tmp_path / "cdcgan-report")
    (tmp_path / "not-a-run").mkdir()
    preload.warm_views(tmp_path).join(timeout=120)
    cgan, cdcgan = Run(tmp_path / "cgan-report"), Run(tmp_path / "cdcgan-report")
    assert all(verdict.is_remembered(cgan, e) for e in [1, 2, 3])
    assert all(verdict.is_remembered(cdcgan, e) for e in [1, 2])
    assert verdict.view_per_digit(cdcgan) == 10 and len(verdict.remembered_view(cdcgan, 2).real) == 100


def test_bad_questions_are_refused(judged_run):
    discriminator = judged_run.load_discriminator(1)
    images, _ = verdict.real_test_digits(per_digit=1)
    with pytest.raises(ValueError, match="10 images but 3 labels"):
        verdict.verdict(discriminator, images, [1, 2, 3])
    with pytest.raises(ValueError, match="labels are 0-9"):
        verdict.verdict(discriminator, images, [10] * 10)


# ---------------------------------------------------------------------------------------------
# The discriminator's page (AppTest)

from app.numbers import percent  # noqa: E402
from tests.test_app import app, images, no_failure, texts  # noqa: E402


@pytest.fixture
def served(monkeypatch, tmp_path, judged_run, cgan_run) -> Path:
    """cgan-report with discriminator weights for every epoch, and old-run without any."""
    shutil.copytree(judged_run.path, tmp_path / "cgan-report")
    shutil.copytree(cgan_run.path, tmp_path / "old-run")
    for file in (tmp_path / "old-run" / "weights").glob("discriminator_*.pt"):
        file.unlink()
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    return tmp_path


def test_page_shows_ds_verdict_for_a_generated_and_a_real_digit(served):
    run = Run(served / "cgan-report")
    at = app("discriminator")
    no_failure(at)
    assert at.title[0].value == "The discriminator's verdict"
    at.select_slider(key="discriminator_epoch").set_value(2).run()
    at.segmented_control(key="discriminator_digit").set_value(6).run()
    at.number_input(key="discriminator_seed").set_value(5).run()
    no_failure(at)
    caption, picture = images(at)[0].captions[0], images(at)[0].pixels
    assert caption == "A generated 6 (seed 5, epoch 2)"
    image = generate(run.load_generator(2), [6], noise(5, 1))[0]
    assert np.array_equal(picture[::10, ::10], image)
    expected = verdict.verdict(run.load_discriminator(2), image[None], [6])[0]
    shown = [m.value for m in at.markdown]
    assert f"## D: {percent(expected)} real" in shown
    assert "D at epoch 2, asked “is this a real 6?”" in shown
    bars = at.get("plotly_chart")[0].proto.spec
    assert '"If the label were' in bars

    at.segmented_control(key="discriminator_source").set_value("A real digit").run()
    no_failure(at)
    caption, picture = images(at)[0].captions[0], images(at)[0].pixels
    assert caption == "A real 6 (MNIST training set, seed 5)"
    expected = verdict.verdict(run.load_discriminator(2), picture[::10, ::10][None], [6])[0]
    assert f"## D: {percent(expected)} real" in [m.value for m in at.markdown]


def test_page_shows_ds_view_across_epochs(served):
    run = Run(served / "cgan-report")
    at = app("discriminator")
    at.select_slider(key="discriminator_view_epoch").set_value(1).run()
    no_failure(at)
    view = verdict.epoch_view(run, 1, per_digit=50)
    assert f"At epoch 1 D is right about {percent(view.fraction_right)}" in texts(at.caption)
    charts = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert len(charts) == 3
    assert "Epoch 1: what D says" in charts[1] and "How often D is right" in charts[2]
    real_counts, _ = view.histograms()
    import json

    histogram = json.loads(charts[1])["data"]
    assert histogram[0]["name"] == "Real test digits"
    assert [int(c) for c in histogram[0]["y"]] == real_counts.tolist()
    curve = json.loads(charts[2])["data"][0]
    assert list(curve["x"]) == [1, 2, 3]


def test_a_run_without_discriminator_weights_says_how_to_get_them(served):
    at = app("discriminator")
    at.sidebar.selectbox(key="run").set_value("old-run").run()
    no_failure(at)
    assert len(at.info) == 1
    assert "Run old-run has no discriminator weights" in at.info[0].value
    assert "python -m cgan.train" in at.info[0].value
    assert not at.get("plotly_chart")
