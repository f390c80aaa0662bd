"""Measured quality: how well a generator writes the digit it is asked for, judged by a classifier.

A small LeNet-style network, trained once on the 60,000 MNIST training images and shipped as
``checkpoints/classifier.pt`` (a plain state_dict), reads every generated digit. Its inputs use the
one pixel scaling of the project, ``cgan.data.to_unit_range`` (uint8 -> [-1, 1]). The measures:

* **accuracy** (conditional accuracy): the share of generated samples that the classifier reads as
  the digit the generator was asked for, overall and per digit. Chance is 10%.
* **frechet** (Fréchet distance, FID-style): fit a Gaussian (mean, covariance) to the classifier's
  penultimate-layer features of the generated samples and another to those of the 10,000 MNIST
  test images; the distance between the two Gaussians. 0 = the same feature statistics as real
  digits. It is computed in this small network's 128-dimensional feature space, so its values are
  not comparable with the Inception FID of papers. Real training images score a small, non-zero
  "floor" (``python -m cgan.metrics floor``): the sampling noise of the measure itself.
* **diversity** (per digit): the mean pairwise feature distance of the generated samples of a digit
  divided by that of the real test images of that digit. 1.0 = as varied as real handwriting; near
  0 = mode collapse (the same digit over and over); well above 1 = scattered, usually garbage.

``evaluate_generator`` draws a fixed number of samples per digit (default 1,000) from fixed noise
(``EVAL_SEED``), so the same weights always give the same figures. Figures are comparable only at
the same ``per_digit``: the Fréchet distance of fewer samples is biased upwards.

Command line::

    python -m cgan.metrics train-classifier            # retrain checkpoints/classifier.pt
    python -m cgan.metrics test-accuracy               # the classifier on the 10,000 test images
    python -m cgan.metrics floor                       # real training images vs the test set
    python -m cgan.metrics evaluate checkpoints/RUN [--epochs 1,5,10 | all-saved]

Also here, for the questions students ask: ``nearest_training_images`` (is the generator copying
its training set? pixel-space neighbours) and ``rejected_samples`` (which generated digits the
classifier does not accept, and what it read instead).
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cgan.data import TRAIN_LABEL_COUNTS, mnist_in_memory, to_unit_range
from cgan.models import NUM_CLASSES
from cgan.sampling import generate, noise

CLASSIFIER_PATH = Path(__file__).resolve().parent.parent / "checkpoints" / "classifier.pt"
EVAL_SEED = 20240611  # names the evaluation noise; never the grid or a user's seed
FLOOR_SEED = 0  # picks the real training images of the floor
DEFAULT_PER_DIGIT = 1000
FEATURES = 128
BATCH = 256  # small batches stay in the CPU cache: faster than one big batch


class MetricsError(RuntimeError):
    """A measure cannot be taken as asked; the message is one line for the user."""


# ---------------------------------------------------------------------------------------------
# The classifier


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


_classifiers: dict[tuple[str, str], DigitClassifier] = {}


def load_classifier(path: str | Path | None = None, device: str | torch.device = "cpu") -> DigitClassifier:
    """The shipped classifier (loaded once per process and device), in eval mode."""
    from cgan.runs import RunError, load_tensors

    path = Path(path) if path is not None else CLASSIFIER_PATH
    key = (str(path), str(device))
    if key not in _classifiers:
        if not path.is_file():
            raise MetricsError(
                f"{path}: missing; train it with: python -m cgan.metrics train-classifier"
            )
        try:
            state = load_tensors(path, map_location=device)
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
        _classifiers[key] = model.to(device).eval()
    return _classifiers[key]


def classifier_id(path: str | Path | None = None) -> str:
    """A short fingerprint of the classifier's weights file, stored with every measurement."""
    path = Path(path) if path is not None else CLASSIFIER_PATH
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


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


@dataclass(frozen=True)
class RealReference:
    """The 10,000 test images as the measures see them (computed once per process)."""

    mean: np.ndarray
    cov: np.ndarray
    spread: list  # per digit: mean pairwise feature distance of real test images
    accuracy: float  # the classifier's test accuracy


_references: dict[tuple[str, str], RealReference] = {}


def real_reference(device: str | torch.device = "cpu") -> RealReference:
    key = (str(CLASSIFIER_PATH), str(device))
    if key not in _references:
        mnist = mnist_in_memory()
        reading = classify(mnist.test_images, device=device)
        mean, cov = feature_statistics(reading.features)
        spread = [
            mean_pairwise_distance(reading.features[mnist.test_labels == d]) for d in range(NUM_CLASSES)
        ]
        accuracy = float((reading.predictions == mnist.test_labels).mean())
        _references[key] = RealReference(mean, cov, spread, accuracy)
    return _references[key]


def measure(images_uint8: np.ndarray, labels: np.ndarray, device: str | torch.device = "cpu") -> dict:
    """Every measure for uint8 images (N, 28, 28) meant to show `labels` (N,): a JSON-able dict."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(images_uint8) != len(labels):
        raise MetricsError(f"{len(images_uint8)} images but {len(labels)} labels")
    reference = real_reference(device)
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


# ---------------------------------------------------------------------------------------------
# Generators


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
# Real images: the floor and nearest neighbours


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


@dataclass(frozen=True)
class Neighbours:
    indices: np.ndarray  # (k,) indices into the training set
    distances: np.ndarray  # (k,) pixel-space L2 distances, nearest first
    images: np.ndarray  # (k, 28, 28) uint8
    labels: np.ndarray  # (k,) int64


_NEIGHBOUR_CHUNK = 10_000


def nearest_training_images(image_uint8: np.ndarray, k: int = 8) -> Neighbours:
    """The k training images closest to one image in pixel space (L2 on the [-1, 1] pixels).

    Pixel space because the question is "is this a copy?": a copied digit is near 0 here; a
    feature-space neighbour would only say "looks like the same kind of digit".
    """
    return nearest_training_images_batch(np.asarray(image_uint8).reshape(1, 28, 28), k)[0]


def nearest_training_images_batch(images_uint8: np.ndarray, k: int = 8) -> list[Neighbours]:
    mnist = mnist_in_memory()
    query = to_unit_range(images_uint8).reshape(len(images_uint8), -1)
    query_norms = (query**2).sum(1, keepdim=True)
    best_d = torch.full((len(query), 0), 0.0)
    best_i = torch.zeros((len(query), 0), dtype=torch.long)
    for start in range(0, len(mnist.train_images), _NEIGHBOUR_CHUNK):
        chunk = to_unit_range(mnist.train_images[start : start + _NEIGHBOUR_CHUNK]).reshape(-1, 784)
        squared = query_norms + (chunk**2).sum(1) - 2 * query @ chunk.T
        d, i = squared.topk(min(k, len(chunk)), dim=1, largest=False)
        best_d = torch.cat([best_d, d], 1)
        best_i = torch.cat([best_i, i + start], 1)
        best_d, order = best_d.topk(min(k, best_d.shape[1]), dim=1, largest=False)
        best_i = best_i.gather(1, order)
    out = []
    for q, i in zip(query, best_i.numpy()):
        # The expansion above is quick but loses precision near 0; the winners are measured exactly.
        d = (to_unit_range(mnist.train_images[i]).reshape(len(i), -1) - q).norm(dim=1).numpy()
        order = np.argsort(d, kind="stable")
        i, d = i[order], d[order]
        out.append(Neighbours(i, d, mnist.train_images[i], mnist.train_labels[i]))
    return out


_typical_real_distance: dict[int, float] = {}


def typical_real_distance(n: int = 200, seed: int = FLOOR_SEED) -> float:
    """Median distance from a real *test* digit (never trained on) to its nearest training image:
    what "not a copy" looks like. Computed once per process."""
    if n not in _typical_real_distance:
        mnist = mnist_in_memory()
        chosen = np.random.default_rng(seed).choice(len(mnist.test_images), size=n, replace=False)
        found = nearest_training_images_batch(mnist.test_images[chosen], k=1)
        _typical_real_distance[n] = float(np.median([f.distances[0] for f in found]))
    return _typical_real_distance[n]


# ---------------------------------------------------------------------------------------------
# Command line


def parse_epochs(spec: str, saved: list[int]) -> list[int]:
    """'all-saved' or a comma list of epochs / ranges (1,5,10 or 1-10); each must have weights."""
    if spec.strip().lower() in ("all-saved", "all"):
        return list(saved)
    wanted: list[int] = []
    for token in spec.split(","):
        token = token.strip()
        try:
            if "-" in token:
                lo, hi = (int(t) for t in token.split("-", 1))
                if hi < lo:
                    raise ValueError
                wanted.extend(range(lo, hi + 1))
            else:
                wanted.append(int(token))
        except ValueError:
            raise ValueError(f"--epochs {spec!r}: give all-saved or a list such as 1,5,10 or 1-10") from None
    missing = [e for e in wanted if e not in saved]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"--epochs: no saved weights for epoch {shown} (saved: {_ranges(saved)})")
    return sorted(set(wanted))


def _ranges(epochs: list[int]) -> str:
    if not epochs:
        return "none"
    parts, start = [], epochs[0]
    for previous, current in zip(epochs, epochs[1:] + [None]):
        if current != previous + 1:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = current
    return ",".join(parts)


def format_line(epoch: int, total: int, metrics: dict, seconds: float) -> str:
    diversity = [v for v in metrics["diversity"] if v is not None]
    return (
        f"[{epoch:3d}/{total}] acc: {metrics['accuracy']:.3f} | fd: {metrics['frechet']:.2f} | "
        f"diversity: {np.mean(diversity):.2f} | {seconds:.1f}s"
    )


def evaluate_run(run, epochs: list[int], per_digit: int = DEFAULT_PER_DIGIT, seed: int = EVAL_SEED,
                 device: str | torch.device = "cpu", log=print) -> dict[int, dict]:
    """Evaluate the run's saved epochs and store each result in its history record."""
    total = run.config().get("epochs", max(epochs, default=0))
    results = {}
    for epoch in epochs:
        started = time.perf_counter()
        generator = run.load_generator(epoch, device=device)
        metrics = evaluate_generator(generator, device=device, per_digit=per_digit, seed=seed)
        run.update_metrics(epoch, metrics)
        results[epoch] = metrics
        log(format_line(epoch, total, metrics, time.perf_counter() - started))
    return results


def build_parser():
    from cgan.cli import OneLineParser

    parser = OneLineParser(
        prog="python -m cgan.metrics",
        description="Measure generated digits with the shipped MNIST classifier.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True

    train = commands.add_parser("train-classifier", help="train checkpoints/classifier.pt (CPU, minutes)")
    train.add_argument("--epochs", type=int, default=6, help="passes over the 60,000 images (6)")
    train.add_argument("--seed", type=int, default=0, help="seed for weights, order and augmentation (0)")
    train.add_argument("--out", type=Path, default=CLASSIFIER_PATH, help="where to write the weights")

    test = commands.add_parser("test-accuracy", help="the classifier's accuracy on the 10,000 test images")
    test.add_argument("--classifier", type=Path, default=CLASSIFIER_PATH, help="weights to test")

    floor = commands.add_parser("floor", help="the measures for real training images vs the test set")
    floor.add_argument("--per-digit", type=int, default=DEFAULT_PER_DIGIT, help="images per digit (1000)")
    floor.add_argument("--seed", type=int, default=FLOOR_SEED, help="which training images (0)")

    evaluate = commands.add_parser("evaluate", help="measure a run's saved epochs and store the figures")
    evaluate.add_argument("run", type=Path, help="run directory, e.g. checkpoints/cgan-report")
    evaluate.add_argument("--epochs", default="all-saved", help="all-saved (default) or e.g. 1,5,10 or 1-10")
    evaluate.add_argument("--missing", action="store_true", help="skip epochs that already have metrics")
    evaluate.add_argument("--per-digit", type=int, default=DEFAULT_PER_DIGIT, help="samples per digit (1000)")
    evaluate.add_argument("--seed", type=int, default=EVAL_SEED, help=f"evaluation noise seed ({EVAL_SEED})")
    evaluate.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    return parser


def main(argv: list[str] | None = None) -> int:
    from cgan.data import MnistError
    from cgan.runs import Run, RunError, save_tensors_atomic

    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("epochs", "per_digit"):
        value = getattr(args, name, None)
        if isinstance(value, int) and not 1 <= value <= 100_000:
            parser.error(f"--{name.replace('_', '-')} {value}: must be 1-100000")
    if getattr(args, "per_digit", 2) < 2:
        parser.error("--per-digit: must be at least 2")
    try:
        if args.command == "train-classifier":
            model, accuracy = train_classifier(epochs=args.epochs, seed=args.seed,
                                               log=lambda line: print(line, flush=True))
            save_tensors_atomic(args.out, {k: v.detach().cpu() for k, v in model.state_dict().items()})
            _classifiers.clear()
            _references.clear()
            print(f"test accuracy: {accuracy:.2%} | wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
        elif args.command == "test-accuracy":
            mnist = mnist_in_memory()
            reading = classify(mnist.test_images, load_classifier(args.classifier))
            correct = reading.predictions == mnist.test_labels
            per_digit = " ".join(f"{d}:{correct[mnist.test_labels == d].mean():.1%}" for d in range(10))
            print(f"test accuracy: {correct.mean():.2%} ({int(correct.sum())}/{len(correct)}) | {per_digit}")
        elif args.command == "floor":
            if args.per_digit > min(TRAIN_LABEL_COUNTS):
                parser.error(f"--per-digit {args.per_digit}: at most {min(TRAIN_LABEL_COUNTS)} "
                             "(the training set has no more 5s)")
            started = time.perf_counter()
            result = frechet_floor(args.per_digit, args.seed)
            print(
                f"floor ({10 * args.per_digit} real training images, {args.per_digit} per digit, vs the "
                f"10,000 test images): frechet_floor: {result['frechet']:.3f} | acc: "
                f"{result['accuracy']:.3f} | diversity: {np.mean(result['diversity']):.2f} | "
                f"{time.perf_counter() - started:.1f}s"
            )
        elif args.command == "evaluate":
            run = Run(args.run)
            if not run.exists():
                parser.error(f"{args.run}: not a run (no config.json)")
            device = parser.device(args.device)
            if run.is_training():
                print(f"error: run {run.name} is training now; evaluate it when it stops, or train "
                      "with --metrics-every K", file=sys.stderr)
                return 1
            saved = run.weight_epochs()
            try:
                epochs = parse_epochs(args.epochs, saved)
            except ValueError as exc:
                parser.error(str(exc))
            if args.missing:
                measured = {r.epoch for r in run.history() if r.metrics and "accuracy" in r.metrics}
                epochs = [e for e in epochs if e not in measured]
            if not epochs:
                print(f"{run.path}: nothing to evaluate (saved epochs: {_ranges(saved)})")
                return 0
            evaluate_run(run, epochs, args.per_digit, args.seed, device,
                         log=lambda line: print(line, flush=True))
    except (MetricsError, RunError, MnistError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
