"""The sidebar's "Weight-averaged generator": a run trained with --ema offers it, and the pages
then draw from the averaged weights of the epoch shown."""

from __future__ import annotations

import numpy as np

from cgan.sampling import generate, noise
from tests.conftest import make_run
from tests.test_app import app, images


def test_a_run_with_weight_averaging_draws_from_the_average_when_asked(monkeypatch, tmp_path):
    run = make_run(tmp_path / "cgan-report", epochs=2, limit=300, ema=0.9, seed=3)
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    at = app("generate")
    raw = images(at)
    assert raw
    at.sidebar.toggle(key="averaged").set_value(True).run()
    assert not at.exception
    averaged = images(at)
    # The same pictures (same captions: digit, seed, epoch), drawn by other weights.
    assert [shown.captions for shown in averaged] == [shown.captions for shown in raw]
    assert any(not np.array_equal(a.pixels, b.pixels) for a, b in zip(averaged, raw, strict=True))
    # And the averaged weights do draw something else than the raw ones.
    assert not np.array_equal(generate(run.load_generator(2, averaged=True), [7] * 4, noise(42, 4)),
                              generate(run.load_generator(2), [7] * 4, noise(42, 4)))


def test_a_run_without_weight_averaging_offers_no_choice(monkeypatch, tmp_path):
    make_run(tmp_path / "cgan-report", epochs=1, limit=150, seed=3)
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    at = app("generate")
    assert not [t for t in at.sidebar.toggle if t.key == "averaged"]
