"""The shipped cdcgan-report: its discriminator's weights load and give verdicts, and its grid is
what its generator draws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cgan import verdict
from cgan.runs import Run
from cgan.sampling import fixed_grid_inputs, generate

RUN = Run(Path(__file__).resolve().parent.parent / "checkpoints" / "cdcgan-report")
KEPT = [1, 5, 20]


def test_it_keeps_generator_and_discriminator_weights_at_epochs_1_5_20():
    assert RUN.epochs() == list(range(1, 21))
    assert RUN.weight_epochs() == KEPT
    assert RUN.discriminator_epochs() == KEPT
    assert verdict.view_epochs(RUN) == KEPT  # D's view across the epochs has all three
    config = RUN.config()
    assert config["model"] == "cdcgan" and config["width"] == 1.0 and config["slimmed"]["weights_kept"] == "1, 5, 20"
    # Trained on a GPU (the device is in its status), not resumable (no last.pt).
    assert json.loads(RUN.status_path.read_text())["device"] == "cuda"
    assert not RUN.last_path.exists()


@pytest.mark.parametrize("epoch", KEPT)
def test_each_discriminator_loads_and_gives_a_verdict(epoch):
    discriminator = RUN.load_discriminator(epoch)
    assert sum(p.numel() for p in discriminator.parameters()) == RUN.config()["discriminator_parameters"]
    grid = RUN.grid_images(epoch)  # (digit, column, 28, 28)
    sevens = verdict.verdict(discriminator, grid[7], [7] * 10)
    assert sevens.shape == (10,) and np.all((sevens > 0) & (sevens < 1))
    per_label = verdict.verdict_for_every_label(discriminator, grid[7, 0])
    assert per_label.shape == (10,) and np.all((per_label > 0) & (per_label < 1))
    # The same picture under different labels is judged differently: D reads the label.
    assert per_label.max() - per_label.min() > 0.05, per_label


def test_the_three_discriminators_differ():
    image = RUN.grid_images(20)[3, 0]
    verdicts = [verdict.verdict_for_every_label(RUN.load_discriminator(e), image) for e in KEPT]
    assert not np.allclose(verdicts[0], verdicts[2], atol=1e-3)
    assert not np.allclose(verdicts[1], verdicts[2], atol=1e-3)


def test_epoch_20_view_of_real_and_generated_digits():
    view = verdict.epoch_view(RUN, 20, per_digit=20)
    assert len(view.real) == len(view.generated) == 200
    # After 20 epochs D is right more often than chance and far from always (0.750 at 100 per digit).
    assert 0.55 < view.fraction_right < 0.95, view.fraction_right


def test_grid_at_epoch_20_is_what_its_generator_draws():
    z, labels = fixed_grid_inputs(RUN.config()["seed"])
    drawn = generate(RUN.load_generator(20), labels, z)
    shipped = RUN.grid_images(20).reshape(100, 28, 28)
    difference = np.abs(drawn.astype(int) - shipped.astype(int))
    # The grid was drawn on the GPU from float32 weights; these are the float16 weights on the
    # CPU: at most one grey level apart, on under 2 % of the pixels (0.9 % measured).
    assert difference.max() <= 1
    assert np.count_nonzero(difference) / difference.size < 0.02
    # ... and it is not some other epoch's grid.
    other = np.abs(generate(RUN.load_generator(5), labels, z).astype(int) - shipped.astype(int))
    assert other.max() > 100
