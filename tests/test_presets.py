"""cgan.presets: each failure-mode preset is a valid configuration and, trained for real, shows its
symptom in the losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgan.presets import PRESETS, RECIPE, choices, preset
from cgan.runs import Run
from cgan.train import train


def test_every_preset_is_a_valid_short_run_with_one_sentence():
    assert set(PRESETS) >= {"discriminator-wins", "learning-rate-too-high"}
    assert choices() == [RECIPE, *PRESETS.values()]  # the Train page's order: the healthy game first
    assert preset("report-recipe").config().lr == 1e-3 and RECIPE.config().beta1 == 0.5
    for item in choices():
        config = item.config()
        assert config.problems() == {}, item.name
        assert config.limit == 10_000 and config.epochs <= 8, "short enough for a lecture"
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
