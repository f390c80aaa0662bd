"""Is the generator copying its training set? nearest training images in pixel space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cgan.data import mnist_in_memory, to_unit_range

TYPICAL_SAMPLE = 200  # real test digits behind the "not a copy" distance
TYPICAL_SEED = 0
_CHUNK = 10_000


@dataclass(frozen=True)
class Neighbours:
    indices: np.ndarray  # (k,) indices into the training set
    distances: np.ndarray  # (k,) pixel-space L2 distances, nearest first
    images: np.ndarray  # (k, 28, 28) uint8
    labels: np.ndarray  # (k,) int64


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
    for start in range(0, len(mnist.train_images), _CHUNK):
        chunk = to_unit_range(mnist.train_images[start : start + _CHUNK]).reshape(-1, 784)
        squared = query_norms + (chunk**2).sum(1) - 2 * query @ chunk.T
        d, i = squared.topk(min(k, len(chunk)), dim=1, largest=False)
        best_d = torch.cat([best_d, d], 1)
        best_i = torch.cat([best_i, i + start], 1)
        best_d, order = best_d.topk(min(k, best_d.shape[1]), dim=1, largest=False)
        best_i = best_i.gather(1, order)
    out = []
    for q, i in zip(query, best_i.numpy(), strict=True):
        # The expansion above is quick but loses precision near 0; the winners are measured exactly.
        d = (to_unit_range(mnist.train_images[i]).reshape(len(i), -1) - q).norm(dim=1).numpy()
        order = np.argsort(d, kind="stable")
        i, d = i[order], d[order]
        out.append(Neighbours(i, d, mnist.train_images[i], mnist.train_labels[i]))
    return out


def median_real_distance(n: int = TYPICAL_SAMPLE, seed: int = TYPICAL_SEED) -> float:
    """Median distance from a real *test* digit (never trained on) to its nearest training image:
    what "not a copy" looks like. Stored with the real reference (cgan.quality), so the app reads
    it without MNIST."""
    mnist = mnist_in_memory()
    chosen = np.random.default_rng(seed).choice(len(mnist.test_images), size=n, replace=False)
    found = nearest_training_images_batch(mnist.test_images[chosen], k=1)
    return float(np.median([f.distances[0] for f in found]))
