"""cgan.presets: each failure-mode preset is a valid configuration and, trained for real, shows its
symptom in the losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgan.limits import TRAIN_IMAGES
from cgan.presets import LECTURE, PRESETS, RECIPE, REPORT, choices, preset
from cgan.runs import Run
from cgan.symptoms import diagnose, mean_diversity
from cgan.config import TrainConfig
from cgan.training.loop import train


def test_every_preset_is_a_valid_short_run_with_one_sentence():
    assert set(PRESETS) >= {"discriminator-wins", "learning-rate-too-high", "mode-collapse"}
    # The Train page's order: the lecture's run (its default), the report's, then the short runs.
    assert choices() == [LECTURE, REPORT, RECIPE, *PRESETS.values()]
    assert preset("report-recipe").config().lr == 1e-3 and RECIPE.config().beta1 == 0.5
    report, lecture = REPORT.config(), LECTURE.config()
    assert report == TrainConfig.for_model("cgan")  # the report's recipe, every setting
    assert (report.epochs, report.limit, report.batch_size, report.lr) == (200, None, 150, 1e-3)
    assert lecture.problems() == {} and lecture.limit == 30_000 and lecture.model == "cgan"
    assert (lecture.batch_size, lecture.lr, lecture.beta1) == (64, 3e-3, 0.5)
    assert LECTURE.promise.endswith(".") and "minute" in LECTURE.promise
    for item in (RECIPE, *PRESETS.values()):
        config = item.config()
        assert config.problems() == {}, item.name
        # Short enough for a lecture: at most 300,000 images seen (under half a minute here).
        assert (config.limit or TRAIN_IMAGES) * config.epochs <= 300_000, item.name
        assert item.description.count(". ") == 0 and item.description.endswith("."), item.name
        assert item.title and item.measured
    assert preset("discriminator-wins").config(seed=3).seed == 3
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        preset("nope")


def losses(name: str, path) -> tuple[np.ndarray, np.ndarray]:
    run = Run(path)
    train(preset(name).config(seed=1, keep="last"), run, torch.device("cpu"), log=lambda line: None)
    history = run.history()
    return np.array([r.d_loss for r in history]), np.array([r.g_loss for r in history])


def test_discriminator_wins(tmp_path):
    d_loss, g_loss = losses("discriminator-wins", tmp_path / "run")
    # The report's settings keep D's loss near 1 and G's near 1.5 over the same 8 epochs.
    assert (d_loss[-3:] < 0.05).all(), d_loss
    assert (g_loss[-3:] > 5).all() and g_loss[-3:].mean() > 2 * g_loss[:2].mean(), g_loss


def test_learning_rate_too_high_never_settles(tmp_path):
    d_loss, g_loss = losses("learning-rate-too-high", tmp_path / "run")
    jumps = np.abs(np.diff(d_loss))
    assert d_loss.max() > 3 and jumps.max() > 2, d_loss
    assert g_loss.max() > 5, g_loss


def test_mode_collapse_draws_one_picture_for_every_input(tmp_path):
    run = Run(tmp_path / "run")
    config = preset("mode-collapse").config(seed=1, keep="last", metrics_every=1, metrics_samples=100)
    train(config, run, torch.device("cpu"), log=lambda line: None)
    history = run.history()
    diversity = [mean_diversity(r.metrics) for r in history]
    # The report's recipe on the same images reaches 0.37-0.61 by epochs 2-4.
    assert max(diversity) < 0.3, diversity
    assert all(r.d_loss > 1.3 and r.g_loss < 0.85 for r in history[-2:]), history[-2:]
    assert [s.name for s in diagnose(history)] == ["mode_collapse"]
    # The grid: every cell (each digit, each noise) is nearly the same picture. Mean distance of
    # a cell from the average cell, over the pixels' spread: 0.30-0.35 for the shipped report run
    # at epochs 2 and 5, 0.48 at epoch 200; 0.14 for this preset at epoch 4 (seed 0).
    cells = run.grid(len(history)).astype(np.float32)
    cells = cells.reshape(10, 28, 10, 28).transpose(0, 2, 1, 3).reshape(100, 28, 28)
    assert np.abs(cells - cells.mean(axis=0)).mean() < 0.2 * cells.std(), "one picture everywhere"

