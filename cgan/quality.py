"""The quality measures of generated digits, on the classifier's reading (cgan.classifier).

* **accuracy** (conditional accuracy): the share of generated samples that the classifier reads as
  the digit the generator was asked for, overall and per digit. Chance is 10%.
* **frechet** (Fréchet distance, FID-style): a Gaussian (mean, covariance) fitted to the
  classifier's penultimate-layer features of the samples against one fitted to those of the 10,000
  MNIST test images. 0 = the same feature statistics as real digits. Computed in this small
  network's 128-dimensional feature space: not comparable with the Inception FID of papers. Real
  training images score a small, non-zero floor: the sampling noise of the measure itself.
* **diversity** (per digit): the mean pairwise feature distance of a digit's samples divided by
  that of the real test images of that digit. 1.0 = as varied as real handwriting; near 0 = mode
  collapse; well above 1 = scattered, usually garbage.

What real digits score (the test set's feature statistics, the classifier's test accuracy, the
floor, the typical nearest-neighbour distance) is computed once and stored beside the classifier
in ``real_reference.npz``, stamped with the classifier's fingerprint: measuring, and the app's
Quality page, need no MNIST and no wait. A retrained classifier no longer matches the stamp, and
the reference is then measured again from MNIST (``python -m cgan.metrics reference`` stores it).

``evaluate_generator`` draws a fixed number of samples per digit (default 1,000) from fixed noise
(``EVAL_SEED``), so the same weights always give the same figures. Figures are comparable only at
the same ``per_digit``: the Fréchet distance of fewer samples is biased upwards.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cgan import classifier as classifier_module
from cgan.classifier import MetricsError, classifier_id, classify
from cgan.data import TRAIN_LABEL_COUNTS, mnist_in_memory
from cgan.limits import QUALITY_SAMPLES
from cgan.models import NUM_CLASSES
from cgan.neighbours import median_real_distance
from cgan.sampling import generate, noise

EVAL_SEED = 20240611  # names the evaluation noise; never the grid or a user's seed
FLOOR_SEED = 0  # picks the real training images of the floor
DEFAULT_PER_DIGIT = QUALITY_SAMPLES
REFERENCE_NAME = "real_reference.npz"  # beside the classifier's weights


# ---------------------------------------------------------------------------------------------
# The measures, on any features / predictions


def conditional_accuracy(predictions: np.ndarray, labels: np.ndarray) -> tuple[float, list]:
    """(overall share read as the asked digit, per-digit shares; None for a digit not asked for)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    correct = predictions == labels
    per_digit = [
        float(correct[labels == d].mean()) if (labels == d).any() else None for d in range(NUM_CLASSES)
    ]
    return (float(correct.mean()) if len(correct) else float("nan")), per_digit


def feature_statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of (N, D) features."""
    x = np.asarray(features, dtype=np.float64)
    if len(x) < 2:
        raise MetricsError("the Fréchet distance needs at least 2 samples")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigen-decomposition."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean1, cov1, mean2, cov2) -> float:
    """||m1 - m2||² + tr(C1) + tr(C2) - 2 tr((C1^½ C2 C1^½)^½), all in float64.

    C1^½ C2 C1^½ is symmetric positive semi-definite, so its square root's trace is the sum of the
    square roots of its (clipped) eigenvalues: no general matrix square root, no complex parts.
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    cross = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    distance = float(((mean1 - mean2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * cross)
    return max(distance, 0.0)


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean Euclidean distance between two different samples (0 for fewer than 2)."""
    x = torch.as_tensor(features, dtype=torch.float32)
    n = len(x)
    if n < 2:
        return 0.0
    return float(torch.cdist(x, x).double().sum() / (n * (n - 1)))


# ---------------------------------------------------------------------------------------------
# What real digits score: computed once, stored beside the classifier


@dataclass(frozen=True)
class RealReference:
    """The 10,000 test images as the measures see them, and what real digits score."""

    mean: np.ndarray  # (128,) feature mean of the test images
    cov: np.ndarray  # (128, 128) their feature covariance
    spread: list  # per digit: mean pairwise feature distance of real test images
    accuracy: float  # the classifier's test accuracy
    floor: float  # Fréchet distance of DEFAULT_PER_DIGIT real training images per digit
    typical_distance: float  # median pixel distance of a real test digit to its nearest training image
    classifier: str  # fingerprint of the classifier these figures belong to


def reference_path() -> Path:
    return classifier_module.CLASSIFIER_PATH.parent / REFERENCE_NAME


def compute_reference(device: str | torch.device = "cpu") -> RealReference:
    """Measure real MNIST (the test set, the floor sample, the neighbour distance): 10-20 s on a CPU."""
    mnist = mnist_in_memory()
    reading = classify(mnist.test_images, device=device)
    mean, cov = feature_statistics(reading.features)
    spread = [
        mean_pairwise_distance(reading.features[mnist.test_labels == d]) for d in range(NUM_CLASSES)
    ]
    accuracy = float((reading.predictions == mnist.test_labels).mean())
    partial = RealReference(mean, cov, spread, accuracy, float("nan"), float("nan"), classifier_id())
    floor = _measure(*real_training_sample(DEFAULT_PER_DIGIT, FLOOR_SEED), partial, device)["frechet"]
    return RealReference(mean, cov, spread, accuracy, floor, median_real_distance(), classifier_id())


def save_reference(reference: RealReference, path: Path | None = None) -> Path:
    """Write the reference as a plain .npz (no pickles), atomically."""
    path = Path(path) if path is not None else reference_path()
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, mean=reference.mean, cov=reference.cov, spread=np.asarray(reference.spread),
                     accuracy=reference.accuracy, floor=reference.floor,
                     typical_distance=reference.typical_distance, classifier=reference.classifier)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def stored_reference(path: Path | None = None) -> RealReference | None:
    """The stored reference if it belongs to the classifier in use, else None."""
    path = Path(path) if path is not None else reference_path()
    try:
        with np.load(path, allow_pickle=False) as data:
            reference = RealReference(
                mean=data["mean"].astype(np.float64), cov=data["cov"].astype(np.float64),
                spread=[float(s) for s in data["spread"]], accuracy=float(data["accuracy"]),
                floor=float(data["floor"]), typical_distance=float(data["typical_distance"]),
                classifier=str(data["classifier"]),
            )
    except (OSError, ValueError, KeyError):
        return None  # missing or damaged: measured again
    if reference.classifier != classifier_id() or reference.mean.shape != (classifier_module.FEATURES,):
        return None  # figures of another classifier
    return reference


def real_reference(device: str | torch.device = "cpu") -> RealReference:
    """The stored reference, or (for a classifier it does not match) one measured from MNIST once
    per process."""
    return stored_reference() or _measured_reference(classifier_id(), str(device))


@functools.lru_cache(maxsize=4)
def _measured_reference(_classifier: str, device: str) -> RealReference:
    return compute_reference(device)


# ---------------------------------------------------------------------------------------------
# Measuring images and generators


def _measure(images_uint8: np.ndarray, labels: np.ndarray, reference: RealReference,
             device: str | torch.device) -> dict:
    labels = np.asarray(labels, dtype=np.int64)
    if len(images_uint8) != len(labels):
        raise MetricsError(f"{len(images_uint8)} images but {len(labels)} labels")
    reading = classify(images_uint8, device=device)
    accuracy, per_digit = conditional_accuracy(reading.predictions, labels)
    mean, cov = feature_statistics(reading.features)
    diversity = []
    for d in range(NUM_CLASSES):
        mine = reading.features[torch.as_tensor(labels == d)]
        diversity.append(mean_pairwise_distance(mine) / reference.spread[d] if len(mine) > 1 else None)
    return {
        "accuracy": accuracy,
        "per_digit_accuracy": per_digit,
        "frechet": frechet_distance(mean, cov, reference.mean, reference.cov),
        "diversity": diversity,
    }


def measure(images_uint8: np.ndarray, labels: np.ndarray, device: str | torch.device = "cpu") -> dict:
    """Every measure for uint8 images (N, 28, 28) meant to show `labels` (N,): a JSON-able dict."""
    return _measure(images_uint8, labels, real_reference(device), device)


def evaluation_inputs(per_digit: int = DEFAULT_PER_DIGIT, seed: int = EVAL_SEED):
    """The fixed evaluation noise (10 * per_digit, 100) and labels: digit d owns rows d*n..(d+1)*n."""
    z = noise(seed, NUM_CLASSES * per_digit)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(per_digit)
    return z, labels


def _generate_eval(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    was_training = generator.training
    generator.eval()  # batch norm must use its running statistics, or a sample depends on its batch
    try:
        return generate(generator, labels, z, batch=500)
    finally:
        generator.train(was_training)


def evaluate_generator(
    generator: nn.Module,
    device: str | torch.device = "cpu",
    per_digit: int = DEFAULT_PER_DIGIT,
    seed: int = EVAL_SEED,
) -> dict:
    """Measure a generator on per_digit fixed-noise samples of each digit: a JSON-able dict.

    Keys: accuracy, per_digit_accuracy (10), frechet, diversity (10), samples_per_digit, seed,
    classifier (fingerprint of the weights that judged). The generator may live on any device; the
    classifier runs on `device`.
    """
    if per_digit < 2:
        raise MetricsError("per_digit must be at least 2")
    z, labels = evaluation_inputs(per_digit, seed)
    images = _generate_eval(generator, z, labels)
    result = measure(images, labels.numpy(), device=device)
    result.update(samples_per_digit=int(per_digit), seed=int(seed), classifier=classifier_id())
    return result


@dataclass(frozen=True)
class Rejected:
    """The generated samples of one digit that the classifier reads as another digit."""

    digit: int
    images: np.ndarray  # (R, 28, 28) uint8
    read_as: np.ndarray  # (R,) int64: what the classifier read instead
    confidence: np.ndarray  # (R,) float32: how sure it was of that reading
    sample_index: np.ndarray  # (R,) which of the digit's evaluation samples they are
    total: int  # samples drawn of this digit


def rejected_samples(
    generator: nn.Module,
    digit: int,
    per_digit: int = DEFAULT_PER_DIGIT,
    seed: int = EVAL_SEED,
    device: str | torch.device = "cpu",
) -> Rejected:
    """The digit's evaluation samples (the very ones evaluate_generator judged) that are not read
    as `digit`, most confidently misread first."""
    if not 0 <= digit < NUM_CLASSES:
        raise MetricsError(f"digit {digit}: digits are 0-9")
    z, labels = evaluation_inputs(per_digit, seed)
    rows = slice(digit * per_digit, (digit + 1) * per_digit)
    images = _generate_eval(generator, z[rows], labels[rows])
    reading = classify(images, device=device)
    wrong = np.flatnonzero(reading.predictions != digit)
    wrong = wrong[np.argsort(-reading.confidence[wrong], kind="stable")]
    return Rejected(digit, images[wrong], reading.predictions[wrong], reading.confidence[wrong],
                    wrong, per_digit)


# ---------------------------------------------------------------------------------------------
# The floor: real training images in place of generated ones


def real_training_sample(per_digit: int = DEFAULT_PER_DIGIT, seed: int = FLOOR_SEED):
    """per_digit training images of each digit, chosen by `seed`: (images, labels)."""
    if not 1 <= per_digit <= min(TRAIN_LABEL_COUNTS):
        raise MetricsError(f"per digit: 1-{min(TRAIN_LABEL_COUNTS)} (the training set has no more 5s)")
    mnist = mnist_in_memory()
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([
        rng.choice(np.flatnonzero(mnist.train_labels == d), size=per_digit, replace=False)
        for d in range(NUM_CLASSES)
    ])
    return mnist.train_images[chosen], mnist.train_labels[chosen]


def frechet_floor(per_digit: int = DEFAULT_PER_DIGIT, seed: int = FLOOR_SEED,
                  device: str | torch.device = "cpu") -> dict:
    """The measures for real training images in place of generated ones: the best a generator can
    hope for at this sample size (its Fréchet distance is the floor)."""
    images, labels = real_training_sample(per_digit, seed)
    return {**measure(images, labels, device=device), "samples_per_digit": int(per_digit)}


def floor_frechet(per_digit: int = DEFAULT_PER_DIGIT) -> float:
    """The floor's Fréchet distance at `per_digit` samples: stored for the default count, measured
    (from MNIST, once per process) for any other."""
    reference = real_reference()
    if per_digit == DEFAULT_PER_DIGIT:
        return reference.floor
    return _measured_floor(per_digit, reference.classifier)


@functools.lru_cache(maxsize=16)
def _measured_floor(per_digit: int, _classifier: str) -> float:
    return frechet_floor(per_digit)["frechet"]
