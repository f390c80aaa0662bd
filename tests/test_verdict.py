"""cgan.verdict: the discriminator's probabilities and its per-epoch view, on small real runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cgan import verdict
from cgan.runs import Run, save_tensors_atomic
from cgan.sampling import generate, noise
from cgan.train import TrainConfig, train


def run_with_discriminators(path: Path, model: str = "cgan", epochs: int = 3, **overrides) -> Run:
    """A small real run whose every epoch has discriminator weights.

    A trainer that keeps them writes them itself; for one that does not, the run is trained one
    epoch at a time (resuming) and each epoch's discriminator is taken from its resume state."""
    run = Run(path)
    for epoch in range(1, epochs + 1):
        config = TrainConfig.for_model(model, epochs=epoch, **overrides)
        train(config, run, torch.device("cpu"), resume=epoch > 1, log=lambda line: None)
        if not run.discriminator_path(epoch).is_file():
            save_tensors_atomic(run.discriminator_path(epoch), run.load_resume_state()["discriminator"])
    return run


@pytest.fixture(scope="session")
def judged_run(tmp_path_factory) -> Run:
    """3 CGAN epochs on 3,000 images, discriminator weights for each."""
    return run_with_discriminators(tmp_path_factory.mktemp("runs") / "cgan-judged", epochs=3, limit=3000, seed=4)


@pytest.fixture(scope="session")
def judged_cdcgan(tmp_path_factory) -> Run:
    return run_with_discriminators(
        tmp_path_factory.mktemp("runs") / "cdcgan-judged", model="cdcgan", epochs=2, limit=1000, width=0.125, seed=5
    )


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


def test_bad_questions_are_refused(judged_run):
    discriminator = judged_run.load_discriminator(1)
    images, _ = verdict.real_test_digits(per_digit=1)
    with pytest.raises(ValueError, match="10 images but 3 labels"):
        verdict.verdict(discriminator, images, [1, 2, 3])
    with pytest.raises(ValueError, match="labels are 0-9"):
        verdict.verdict(discriminator, images, [10] * 10)
