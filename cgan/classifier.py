"""The digit classifier that judges generated digits: its network, its training and its reading.

A small LeNet-style network, trained once on the 60,000 MNIST training images and shipped as
``checkpoints/classifier.pt`` (a plain state_dict). Its inputs use the one pixel scaling of the
project, ``cgan.data.to_unit_range`` (uint8 -> [-1, 1]). ``classify`` returns what it reads in N
images: the penultimate-layer features (the space of the Fréchet distance), the digit and its
confidence. The measures built on it live in ``cgan.quality``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cgan.data import mnist_in_memory, to_unit_range
from cgan.models import NUM_CLASSES

CLASSIFIER_PATH = Path(__file__).resolve().parent.parent / "checkpoints" / "classifier.pt"
FEATURES = 128
BATCH = 256  # small batches stay in the CPU cache: faster than one big batch


class MetricsError(RuntimeError):
    """A measure cannot be taken as asked; the message is one line for the user."""


class DigitClassifier(nn.Module):
    """LeNet-style: two 5x5 convolutions with max-pooling, a 128-unit layer (the features), 10 logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)  # 28x28 -> pool -> 14x14
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)  # 14x14 -> pool -> 7x7
        self.hidden = nn.Linear(32 * 7 * 7, FEATURES)
        self.out = nn.Linear(FEATURES, NUM_CLASSES)
        self.dropout = nn.Dropout(0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # Pooling before the ReLU gives the same result as after it, on a quarter of the values.
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return F.relu(self.hidden(self.dropout(x.flatten(1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.features(x)))


# ---------------------------------------------------------------------------------------------
# Training


def _augment(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random small rotations (±10°), scalings (±10%) and shifts (±2 px) of a [-1, 1] batch."""
    n = len(x)
    uniform = lambda *shape: torch.rand(*shape, generator=rng) * 2 - 1  # noqa: E731
    angle = uniform(n) * math.radians(10)
    scale = 1 + uniform(n) * 0.1
    shift = uniform(n, 2) * (2 / 14)  # the image spans 2 units over 28 px
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample fills with 0 outside the image; shift so that 0 is the black background.
    return F.grid_sample(x + 1, grid, align_corners=False) - 1


def train_classifier(
    epochs: int = 6, seed: int = 0, batch_size: int = 128, lr: float = 2e-3, log=print
) -> tuple[DigitClassifier, float]:
    """Train the classifier on the 60,000 training images (CPU); return it and its test accuracy."""
    mnist = mnist_in_memory()
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    images, labels = to_unit_range(mnist.train_images), torch.as_tensor(mnist.train_labels)
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(images), generator=rng)
        total = 0.0
        for i in range(len(images) // batch_size):
            index = order[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(model(_augment(images[index], rng)), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        model.eval()
        predictions = classify(mnist.test_images, model).predictions
        accuracy = float((predictions == mnist.test_labels).mean())
        log(
            f"[{epoch}/{epochs}] loss: {total / (i + 1):.4f} | test accuracy: {accuracy:.2%} | "
            f"{time.perf_counter() - started:.1f}s"
        )
    return model, accuracy


# ---------------------------------------------------------------------------------------------
# Loading: once per process and version of the file (the key holds its mtime and size, so a
# retrained classifier is read again)


def _version(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        raise MetricsError(
            f"{path}: missing; train it with: python -m cgan.metrics train-classifier"
        ) from None
    if not path.is_file():
        raise MetricsError(f"{path}: not a file; name the classifier's weights file")
    return str(path), stat.st_mtime_ns, stat.st_size


def load_classifier(path: str | Path | None = None, device: str | torch.device = "cpu") -> DigitClassifier:
    """The classifier (the shipped one unless `path` is given), in eval mode."""
    return _load_classifier(*_version(Path(path) if path is not None else CLASSIFIER_PATH), str(device))


@functools.lru_cache(maxsize=8)
def _load_classifier(path: str, _mtime_ns: int, _size: int, device: str) -> DigitClassifier:
    from cgan.files import load_tensors
    from cgan.messages import RunError

    try:
        state = load_tensors(Path(path), map_location=device)
    except RunError as exc:
        raise MetricsError(str(exc)) from None
    model = DigitClassifier()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise MetricsError(
            f"{path}: not this classifier's weights ({str(exc).splitlines()[0][:100]}); "
            "retrain with: python -m cgan.metrics train-classifier"
        ) from None
    return model.to(device).eval()


def classifier_id(path: str | Path | None = None) -> str:
    """A short fingerprint of the classifier's weights file, stored with every measurement."""
    return _classifier_id(*_version(Path(path) if path is not None else CLASSIFIER_PATH))


@functools.lru_cache(maxsize=8)
def _classifier_id(path: str, _mtime_ns: int, _size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Reading images


@dataclass(frozen=True)
class Reading:
    """What the classifier makes of N images."""

    features: torch.Tensor  # (N, 128) float32 on the CPU: the penultimate layer
    predictions: np.ndarray  # (N,) int64: the digit it reads
    confidence: np.ndarray  # (N,) float32: its probability for that digit


@torch.inference_mode()
def classify(images_uint8: np.ndarray, classifier: DigitClassifier | None = None,
             device: str | torch.device = "cpu") -> Reading:
    """Run uint8 images (N, 28, 28) through the classifier, in small batches."""
    model = classifier if classifier is not None else load_classifier(device=device)
    model_device = next(model.parameters()).device
    images = np.asarray(images_uint8)
    features, logits = [], []
    for start in range(0, len(images), BATCH):
        x = to_unit_range(images[start : start + BATCH]).to(model_device)
        f = model.features(x)
        features.append(f.float().cpu())
        logits.append(model.out(f).float().cpu())
    if not features:
        empty = torch.zeros(0, FEATURES)
        return Reading(empty, np.zeros(0, np.int64), np.zeros(0, np.float32))
    probabilities = torch.cat(logits).softmax(dim=1)
    confidence, predictions = probabilities.max(dim=1)
    return Reading(torch.cat(features), predictions.numpy().astype(np.int64), confidence.numpy())
