"""Symptoms named from a run's numbers: each failure on a synthetic history, and the shipped runs
(the report's CGAN and cDCGAN) healthy at every epoch, as they read while they trained."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from cgan.runs import EpochRecord, Run
from cgan.symptoms import diagnose

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def history(d, g, diversity=None) -> list[EpochRecord]:
    records = []
    for i, (dl, gl) in enumerate(zip(d, g, strict=True)):
        metrics = None
        if diversity is not None and diversity[i] is not None:
            metrics = {"accuracy": 0.9, "frechet": 50.0, "diversity": [diversity[i]] * 10}
        records.append(EpochRecord(epoch=i + 1, d_loss=dl, g_loss=gl, epoch_seconds=1.0,
                                   wall_seconds=1.0, finished_at=0.0, metrics=metrics))
    return records


def names(records) -> list[str]:
    return [s.name for s in diagnose(records)]


def healthy_losses(n: int = 30) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(0)
    d = list(1.25 + 0.02 * rng.standard_normal(n))
    g = list(0.9 + 0.02 * rng.standard_normal(n))
    return d, g


def test_healthy_history_has_no_symptom():
    assert diagnose(history(*healthy_losses())) == []
    assert diagnose([]) == []


def test_discriminator_winning():
    d = [0.9, 0.6, 0.3, 0.15, 0.08, 0.05, 0.03, 0.02]
    g = [1.5, 2.0, 2.8, 3.5, 4.2, 4.9, 5.6, 6.3]
    found = diagnose(history(d, g))
    assert [s.name for s in found] == ["discriminator_wins"]
    assert found[0].epoch == 8
    assert "discriminator is winning" in found[0].sentence and "near zero" in found[0].sentence
    assert "2.8 → 6.3" in found[0].sentence  # the climb, over the last 6 epochs
    # D low but G coming back down: recovering, not named.
    assert names(history(d, [6.0, 5.0, 4.5, 4.0, 3.5, 3.2, 3.0, 2.9])) == []


def test_learning_rate_too_high():
    d = [1.2, 0.2, 1.9, 0.3, 2.2, 0.25, 1.8, 0.4]
    g = [0.9, 4.0, 0.6, 3.5, 0.5, 4.2, 0.7, 3.0]
    found = diagnose(history(d, g))
    assert "learning_rate_too_high" in [s.name for s in found]
    sentence = next(s.sentence for s in found if s.name == "learning_rate_too_high")
    assert "too high" in sentence and "smaller" in sentence
    # A steady fall (no back and forth) is not oscillation.
    assert names(history(list(np.linspace(2, 1.2, 8)), list(np.linspace(3, 0.9, 8)))) == []


def test_mode_collapse_from_falling_diversity():
    d, g = healthy_losses(8)
    diversity = [0.3, 0.6, 0.8, 0.85, 0.6, 0.4, 0.25, 0.2]
    found = diagnose(history(d, g, diversity))
    assert [s.name for s in found] == ["mode_collapse"]
    assert "0.85 (epoch 4)" in found[0].sentence and "0.20" in found[0].sentence
    # Low diversity that is rising (a young run) is not a collapse.
    assert names(history(d, g, [0.1, 0.2, 0.3, 0.35, None, 0.4, None, 0.45])) == []


def test_mode_collapse_with_the_discriminator_at_chance():
    # Diversity never rises while D's loss sits near log 4 and G's near log 2: one picture for all.
    found = diagnose(history([2.06, 1.52, 1.47, 1.44], [1.18, 0.81, 0.76, 0.73], [0.11, 0.14, 0.13, 0.18]))
    assert [s.name for s in found] == ["mode_collapse"]
    assert "same picture for every noise and every label" in found[0].sentence and "log 4" in found[0].sentence
    # The report's own first epochs: as little diversity, but D and G far from chance.
    assert names(history([0.97, 1.05, 1.07], [1.65, 1.60, 1.55], [0.09, 0.12, 0.13])) == []
    # A D at chance with varied samples is the healthy end of the report's run.
    assert names(history([1.30, 1.30, 1.31], [0.86, 0.86, 0.85], [0.86, 0.87, 0.86])) == []


def test_nan_loss_is_divergence():
    d, g = healthy_losses(8)
    g[5] = math.nan
    found = diagnose(history(d, g))
    assert [s.name for s in found] == ["diverged"] and "epoch 6" in found[0].sentence


@pytest.mark.parametrize("name", ["cgan-report", "cdcgan-report"])
def test_shipped_runs_read_healthy_once_they_use_the_labels(name):
    records = Run(SHIPPED / name).history()
    assert len(records) >= 20
    for end in range(1, len(records) + 1):  # as the Loss curves page read them while training
        found = names(records[:end])
        accuracy = records[end - 1].metrics["accuracy"]
        # No failing game at any epoch; near-chance accuracy is named, and only that.
        assert found == (["labels_not_learned"] if accuracy < 0.2 else []), (name, end, found)


def test_labels_not_learned_is_named_and_never_called_healthy():
    d, g = healthy_losses(10)
    records = history(d, g)
    chance = [dataclasses.replace(r, metrics={"accuracy": 0.099, "frechet": 400.0, "diversity": [0.6] * 10})
              for r in records]
    found = diagnose(chance)
    assert [s.name for s in found] == ["labels_not_learned"]
    assert "not learned the labels" in found[0].sentence and "10%" in found[0].sentence
    assert "epoch 10" in found[0].sentence
    learned = [dataclasses.replace(r, metrics={**r.metrics, "accuracy": 0.72}) for r in chance]
    assert diagnose(learned) == []
    # Mode collapse (one blob, D at chance) is named as such, not as unlearned labels.
    collapsed = [dataclasses.replace(r, d_loss=1.4, g_loss=0.7,
                                     metrics={"accuracy": 0.1, "diversity": [0.12] * 10}) for r in records]
    assert names(collapsed) == ["mode_collapse"]


# ---------------------------------------------------------------------------------------------
# On the Loss curves page


def loss_page(root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    monkeypatch.setenv("CGAN_CHECKPOINTS", str(root))
    app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    app.switch_page("views/losses.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_loss_page_names_the_symptom_while_training_and_after(cgan_run, tmp_path, monkeypatch):
    import json
    import shutil

    from tests.conftest import as_its_trainer

    run = Run(shutil.copytree(cgan_run.path, tmp_path / "winning"))
    d = [0.9, 0.3, 0.1, 0.05]
    g = [1.5, 3.0, 4.5, 6.0]  # the discriminator wins
    lines = [json.dumps({**r.to_json(), "d_loss": dl, "g_loss": gl})
             for r, dl, gl in zip(run.history(), d, g, strict=True)]
    run.history_path.write_text("\n".join(lines) + "\n")
    with as_its_trainer(run, epochs_total=8):  # this process stands for its trainer
        app = loss_page(tmp_path, monkeypatch)
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 1 and "Epoch 4:" in warnings[0] and "discriminator is winning" in warnings[0]
    run.write_status("finished", epochs_total=4)
    app = loss_page(tmp_path, monkeypatch)
    assert not app.warning
    notes = [i.value for i in app.info]
    assert len(notes) == 1 and "Note on winning" in notes[0] and "discriminator is winning" in notes[0]


def test_loss_page_says_nothing_about_a_healthy_shipped_run(monkeypatch):
    app = loss_page(SHIPPED, monkeypatch)
    assert app.multiselect(key="losses_runs").value == ["cgan-report"]
    assert not app.warning and not app.info and not app.error
