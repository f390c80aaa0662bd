"""The quality measures: real digits score like real digits, noise and label-blind generators do not,
the same weights give the same figures, and the CLI stores them in the run's history."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cgan import classifier, metrics, quality
from cgan.data import load_mnist, to_unit_range
from cgan.limits import MAX_SEED
from cgan.runs import Run, save_tensors_atomic

PER_DIGIT = 100  # enough for accuracy within a few percent; the CLI default is 1,000


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


class RealDigits(nn.Module):
    """A stand-in generator that returns real test images: of the asked digit (conditional), of one
    fixed digit, or of a random digit, whatever the label. The noise picks which image."""

    def __init__(self, mnist, mode: str, fixed: int = 3):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # generate() reads the device from a parameter
        self.images = to_unit_range(mnist.test_images)
        self.labels = torch.as_tensor(mnist.test_labels)
        self.mode, self.fixed = mode, fixed

    def forward(self, z, labels):
        pick = (z[:, 0].abs() * 1e6).long()  # a deterministic index from the noise
        if self.mode == "conditional":
            wanted = labels
        elif self.mode == "fixed":
            wanted = torch.full_like(labels, self.fixed)
        else:
            wanted = (z[:, 1].abs() * 1e6).long() % 10
        out = torch.empty(len(labels), 1, 28, 28)
        for d in range(10):
            rows = wanted == d
            if rows.any():
                pool = torch.nonzero(self.labels == d).view(-1)
                out[rows] = self.images[pool[pick[rows] % len(pool)]]
        return out


class OneImagePerDigit(RealDigits):
    """Mode collapse: every sample of a digit is the same real image."""

    def forward(self, z, labels):
        return super().forward(torch.zeros_like(z), labels)


def test_classifier_is_shipped_small_and_accurate(mnist):
    assert metrics.CLASSIFIER_PATH.stat().st_size <= 2_000_000
    state = torch.load(metrics.CLASSIFIER_PATH, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert metrics.real_reference().accuracy >= 0.99  # classifies the 10,000 test images
    reading = metrics.classify(mnist.test_images[:500])
    assert (reading.predictions == mnist.test_labels[:500]).mean() >= 0.98
    assert reading.features.shape == (500, metrics.FEATURES)
    assert reading.confidence.min() >= 0.1 and reading.confidence.max() <= 1 + 1e-6
    assert np.median(reading.confidence) > 0.99


def test_real_test_images_against_themselves(mnist):
    result = metrics.measure(mnist.test_images, mnist.test_labels)
    reference = metrics.real_reference()
    assert result["accuracy"] == pytest.approx(reference.accuracy)
    assert result["accuracy"] >= 0.99
    assert all(a >= 0.97 for a in result["per_digit_accuracy"])
    assert result["frechet"] < 1e-6
    assert result["diversity"] == pytest.approx([1.0] * 10)


def test_uniform_noise_scores_low_and_far(mnist):
    rng = np.random.default_rng(0)
    noise_images = rng.integers(0, 256, size=(10 * PER_DIGIT, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), PER_DIGIT)
    result = metrics.measure(noise_images, labels)
    floor = metrics.frechet_floor(PER_DIGIT)
    assert result["accuracy"] < 0.3
    assert floor["accuracy"] > 0.98
    assert floor["frechet"] < 10
    assert result["frechet"] > 20 * floor["frechet"]


def test_conditional_real_generator_scores_like_real_data(mnist):
    result = metrics.evaluate_generator(RealDigits(mnist, "conditional"), per_digit=PER_DIGIT)
    assert result["accuracy"] > 0.97
    assert result["frechet"] < 3 * metrics.frechet_floor(PER_DIGIT)["frechet"]
    assert all(0.8 < d < 1.2 for d in result["diversity"])
    assert result["samples_per_digit"] == PER_DIGIT and result["seed"] == metrics.EVAL_SEED


@pytest.mark.parametrize("mode", ["fixed", "random"])
def test_label_blind_generator_scores_about_chance(mnist, mode):
    result = metrics.evaluate_generator(RealDigits(mnist, mode), per_digit=PER_DIGIT)
    assert 0.05 < result["accuracy"] < 0.15
    per_digit = np.array(result["per_digit_accuracy"])
    if mode == "fixed":
        assert per_digit[3] > 0.95
        assert np.delete(per_digit, 3).max() < 0.05
    else:
        assert per_digit.max() < 0.3


def test_mode_collapse_shows_as_low_diversity(mnist):
    result = metrics.evaluate_generator(OneImagePerDigit(mnist, "conditional"), per_digit=PER_DIGIT)
    assert result["accuracy"] > 0.9
    assert max(result["diversity"]) < 0.01
    real = metrics.evaluate_generator(RealDigits(mnist, "conditional"), per_digit=PER_DIGIT)
    assert result["frechet"] > 5 * real["frechet"]


def test_same_checkpoint_same_figures(cgan_run):
    first = metrics.evaluate_generator(cgan_run.load_generator(4), per_digit=PER_DIGIT)
    second = metrics.evaluate_generator(cgan_run.load_generator(4), per_digit=PER_DIGIT)
    assert first == second
    assert set(first) >= {"accuracy", "per_digit_accuracy", "frechet", "diversity"}
    assert len(first["per_digit_accuracy"]) == 10 and len(first["diversity"]) == 10
    other_epoch = metrics.evaluate_generator(cgan_run.load_generator(1), per_digit=PER_DIGIT)
    assert other_epoch["frechet"] != first["frechet"]


def test_rejected_samples_are_the_misread_evaluation_samples(cgan_run):
    generator = cgan_run.load_generator(4)
    result = metrics.evaluate_generator(generator, per_digit=PER_DIGIT)
    for digit in (0, 7):
        found = metrics.rejected_samples(generator, digit, per_digit=PER_DIGIT)
        wrong = round((1 - result["per_digit_accuracy"][digit]) * PER_DIGIT)
        assert len(found.images) == len(found.read_as) == wrong
        assert (found.read_as != digit).all()
        assert (np.diff(found.confidence) <= 0).all()  # most confident first
        again = metrics.classify(found.images).predictions
        assert (again == found.read_as).all()


def test_frechet_distance_matches_closed_form():
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    cov1, cov2 = basis @ np.diag(a) @ basis.T, basis @ np.diag(b) @ basis.T  # they commute
    m1, m2 = rng.normal(size=6), rng.normal(size=6)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert metrics.frechet_distance(m1, cov1, m2, cov2) == pytest.approx(expected, rel=1e-9)
    singular = np.diag([1.0, 0, 0, 0, 0, 0])
    assert metrics.frechet_distance(m1, singular, m1, singular) == pytest.approx(0, abs=1e-12)


def test_nearest_training_images_find_a_copy(mnist):
    found = metrics.nearest_training_images(mnist.train_images[1234], k=3)
    assert found.distances[0] == pytest.approx(0, abs=1e-3)
    assert (mnist.train_images[found.indices[0]] == mnist.train_images[1234]).all()
    assert (np.diff(found.distances) >= 0).all() and found.labels[0] == mnist.train_labels[1234]
    typical = metrics.real_reference().typical_distance
    assert 3 < typical < 30  # real unseen digits are clearly not copies


def test_cli_evaluate_stores_metrics_in_history(cgan_run, tmp_path, capsys):
    run = Run(shutil.copytree(cgan_run.path, tmp_path / "run"))
    assert metrics.main(["evaluate", str(run.path), "--epochs", "2,4", "--per-digit", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[  2/4] acc: ")
    stored = {r.epoch: r.metrics for r in run.history()}
    assert stored[1] is None and stored[3] is None
    for epoch in (2, 4):
        assert 0 <= stored[epoch]["accuracy"] <= 1 and stored[epoch]["samples_per_digit"] == 20
        assert f"acc: {stored[epoch]['accuracy']:.3f} | fd: {stored[epoch]['frechet']:.2f}" in lines[epoch // 2 - 1]
    assert stored[4] == metrics.evaluate_generator(run.load_generator(4), per_digit=20)
    # --missing skips what is measured; all-saved covers the rest.
    assert metrics.main(["evaluate", str(run.path), "--missing", "--per-digit", "20"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert all(r.metrics for r in run.history())


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "RUN", "--epochs", "9"], "no saved weights for epoch 9"),
    (["evaluate", "RUN", "--epochs", "x"], "--epochs"),
    (["evaluate", "RUN", "--per-digit", "0"], "--per-digit"),
    (["evaluate", "/nonexistent/run"], "not a run"),
    (["floor", "--per-digit", "1"], "--per-digit"),
    (["floor", "--per-digit", "6000"], "at most 5421"),
    (["bogus"], "invalid choice"),
])
def test_cli_bad_arguments_exit_2_with_one_line(cgan_run, capsys, argv, message):
    argv = [str(cgan_run.path) if a == "RUN" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        metrics.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_cli_leaves_a_training_run_alone(cgan_run, tmp_path, capsys):
    from tests.conftest import as_its_trainer

    run = Run(shutil.copytree(cgan_run.path, tmp_path / "run"))
    before = run.history_path.read_bytes()
    with as_its_trainer(run, epochs_total=8):  # this process stands for its trainer
        assert metrics.main(["evaluate", str(run.path), "--per-digit", "20"]) == 1
    assert "is training now" in capsys.readouterr().err
    assert run.history_path.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# The stored real reference: what real digits score, shipped beside the classifier


def test_stored_reference_matches_a_fresh_measurement(mnist):
    path = quality.reference_path()
    assert path.is_file() and path.stat().st_size <= 200_000
    stored = quality.stored_reference()
    assert stored is not None and stored.classifier == metrics.classifier_id()
    # The classifier's test accuracy and the two distances, measured again from MNIST.
    reading = metrics.classify(mnist.test_images)
    assert stored.accuracy == pytest.approx((reading.predictions == mnist.test_labels).mean())
    assert stored.floor == pytest.approx(metrics.frechet_floor()["frechet"], rel=1e-4)
    assert stored.typical_distance == pytest.approx(metrics.median_real_distance(), rel=1e-4)
    used = metrics.real_reference()  # what the measures use
    assert np.array_equal(used.cov, stored.cov) and used.floor == stored.floor


def test_a_retrained_classifier_invalidates_the_stored_reference(tmp_path, monkeypatch):
    shutil.copy(quality.reference_path(), tmp_path / quality.REFERENCE_NAME)
    state = torch.load(metrics.CLASSIFIER_PATH, weights_only=True)
    save_tensors_atomic(tmp_path / "classifier.pt", state)
    monkeypatch.setattr(classifier, "CLASSIFIER_PATH", tmp_path / "classifier.pt")
    assert quality.stored_reference() is not None  # the same weights: still valid
    state["out.bias"] = state["out.bias"] + 0.01
    save_tensors_atomic(tmp_path / "classifier.pt", state)
    assert quality.stored_reference() is None  # other weights: measured again, never reused
    (tmp_path / quality.REFERENCE_NAME).write_bytes(b"damaged")
    assert quality.stored_reference() is None


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 2; a failure: one line, exit 1


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "RUN", "--seed", str(2**70)], "--seed"),
    (["evaluate", "RUN", "--seed", str(MAX_SEED + 1)], "--seed"),
    (["floor", "--per-digit", "10", "--seed", "-1"], "--seed"),
    (["train-classifier", "--seed", "-5"], "--seed"),
    (["evaluate", "RUN", "--epochs", "1-10000000000"], "no saved weights for epoch 5"),
    (["evaluate", "RUN", "--epochs", "3-2"], "--epochs"),
    (["test-accuracy", "--classifier", "/nonexistent/classifier.pt"], "no such file"),
    (["evaluate", "RUN", "--averaged"], "no weight-averaged generator"),
])
def test_cli_wrong_input_exits_2_with_one_line(cgan_run, capsys, argv, message):
    argv = [str(cgan_run.path) if a == "RUN" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        metrics.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_parse_epochs_checks_huge_ranges_without_spelling_them_out():
    assert metrics.parse_epochs("2-3,1", [1, 2, 3, 4]) == [1, 2, 3]
    with pytest.raises(ValueError, match="epoch 5, 6, 7, 8, 9 ..."):
        metrics.parse_epochs("1-" + "9" * 30, [1, 2, 3, 4])


def read_only_command(folder: Path, command: list[str]) -> list[str]:
    """`command` run with `folder` on a read-only file system (root ignores file modes: a private
    read-only bind mount in a user namespace then), or with write permission removed."""
    import os

    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return command
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to make a read-only file system as root")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, str(folder), *command]


def test_cli_evaluates_a_read_only_run_without_writing(cgan_run, tmp_path):
    """A run on a read-only file system: measured, printed, said so, nothing written."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    folder = tmp_path / "readonly"
    run = Run(shutil.copytree(cgan_run.path, folder / "run"))
    before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    command = read_only_command(folder, [
        sys.executable, "-m", "cgan.metrics", "evaluate", str(run.path), "--epochs", "4",
        "--per-digit", "20"])
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # the note is output, not an error: a failure stays one line on stderr
    note, figures = result.stdout.splitlines()[:2]
    assert "cannot be written" in note and "measuring without storing" in note
    assert figures.startswith("[  4/4] acc: ")
    assert {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()} == before  # no new file


def test_cli_evaluate_averaged_stores_beside_the_raw_figures(cgan_run, tmp_path, capsys):
    run = Run(shutil.copytree(cgan_run.path, tmp_path / "run"))
    # Averaged weights for epoch 4: the raw weights of epoch 2 stand in (any generator state will do).
    shutil.copy(run.weights_path(2), run.averaged_weights_path(4))
    assert metrics.main(["evaluate", str(run.path), "--epochs", "4", "--per-digit", "20"]) == 0
    assert metrics.main(["evaluate", str(run.path), "--averaged", "--per-digit", "20"]) == 0
    stored = {r.epoch: r.metrics for r in run.history()}[4]
    assert stored[metrics.AVERAGED_KEY] == metrics.evaluate_generator(run.load_generator(2), per_digit=20)
    assert stored["frechet"] == metrics.evaluate_generator(run.load_generator(4), per_digit=20)["frechet"]
    assert metrics.measured(stored) and metrics.measured(stored, averaged=True)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # epoch 2 has no averaged weights
        metrics.main(["evaluate", str(run.path), "--averaged", "--epochs", "2"])
    assert exit_info.value.code == 2 and "no saved weights for epoch 2" in capsys.readouterr().err
