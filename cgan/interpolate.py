"""Walks through the generator's inputs: morph the handwriting or morph the digit.

Two walks, each a strip of `steps` images from t = 0 to t = 1:

* **between two noise seeds, digit fixed** (the handwriting morphs): noise vector 0 of seed A to
  noise vector 0 of seed B, on a straight line (``linear``) or along the great circle
  (``spherical``). Gaussian noise in 100 dimensions lives near a sphere of radius ~10; the middle of
  a straight line between two such vectors is shorter (~7 for independent ones), so linear
  midpoints are "atypical" noise and often look fainter. The spherical path keeps the length.
* **between two digits, noise fixed** (the content morphs): the one-hot label is replaced by the
  blend ``(1 - t) * onehot(a) + t * onehot(b)``, as in the Keras "Conditional GAN" example.

The models take integer labels; ``generate_from_label_vectors`` runs a generator on label vectors
(soft labels) by calling its layers on the concatenated input ``[z, label vector]``, which is
exactly what the models' own ``forward`` does with a one-hot vector (a test holds the two equal).
"""

from __future__ import annotations

import io

import numpy as np
import torch

from cgan.data import to_uint8
from cgan.images import upscale
from cgan.models import NUM_CLASSES
from cgan.sampling import noise

PATHS = ("linear", "spherical")
MIN_STEPS, MAX_STEPS = 2, 32


def fractions(steps: int) -> np.ndarray:
    """t for each step: 0, ..., 1 evenly spaced (steps >= 2)."""
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be {MIN_STEPS}-{MAX_STEPS}, got {steps}")
    return np.linspace(0.0, 1.0, steps)


def lerp(a: torch.Tensor, b: torch.Tensor, t: np.ndarray) -> torch.Tensor:
    """Points on the straight line from a to b: (len(t), dim)."""
    t = torch.as_tensor(t, dtype=a.dtype)[:, None]
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: np.ndarray) -> torch.Tensor:
    """Points on the arc from a to b: the direction turns by equal angles (Shoemake's slerp on
    unit vectors) while the length goes straight from |a| to |b|, so no step is shorter than
    typical noise."""
    length_a, length_b = a.norm(), b.norm()
    unit_a, unit_b = a / length_a, b / length_b
    omega = torch.arccos(torch.dot(unit_a, unit_b).clamp(-1.0, 1.0))
    t = torch.as_tensor(t, dtype=a.dtype)[:, None]
    if omega.abs() < 1e-4:  # (nearly) the same direction: the straight line is the arc
        direction = unit_a.expand(len(t), -1)
    else:
        direction = (torch.sin((1 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / torch.sin(omega)
    return direction * ((1 - t) * length_a + t * length_b)


def noise_walk(seed_a: int, seed_b: int, steps: int, path: str = "linear") -> torch.Tensor:
    """(steps, 100) noise from vector 0 of seed_a to vector 0 of seed_b."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    a, b = noise(seed_a, 1)[0], noise(seed_b, 1)[0]
    walk = lerp if path == "linear" else slerp
    return walk(a, b, fractions(steps))


def label_walk(digit_a: int, digit_b: int, steps: int) -> torch.Tensor:
    """(steps, 10) label vectors (1 - t) * onehot(a) + t * onehot(b)."""
    for digit in (digit_a, digit_b):
        if not 0 <= digit < NUM_CLASSES:
            raise ValueError(f"digits are 0-9, got {digit}")
    onehot = torch.eye(NUM_CLASSES)
    return lerp(onehot[digit_a], onehot[digit_b], fractions(steps))


@torch.no_grad()
def generate_from_label_vectors(
    generator: torch.nn.Module, z: torch.Tensor, label_vectors: torch.Tensor
) -> np.ndarray:
    """uint8 images (N, 28, 28) for noise `z` (N, 100) and label vectors (N, 10) (soft labels)."""
    device = next(generator.parameters()).device
    return to_uint8(generator(z.float().to(device), label_vectors.float().to(device)))


def handwriting_morph(generator, digit: int, seed_a: int, seed_b: int, steps: int,
                      path: str = "linear") -> np.ndarray:
    """(steps, 28, 28): `digit` written with noise walking from seed_a to seed_b."""
    z = noise_walk(seed_a, seed_b, steps, path)
    labels = torch.eye(NUM_CLASSES)[[digit] * steps]
    return generate_from_label_vectors(generator, z, labels)


def digit_morph(generator, digit_a: int, digit_b: int, seed: int, steps: int) -> np.ndarray:
    """(steps, 28, 28): noise vector 0 of `seed` with the label blended from digit_a to digit_b."""
    z = noise(seed, 1).repeat(steps, 1)
    return generate_from_label_vectors(generator, z, label_walk(digit_a, digit_b, steps))


def animation_gif(images: np.ndarray, scale: int = 8, frame_ms: int = 150,
                  bounce: bool = True) -> bytes:
    """A looping GIF of the steps, enlarged with nearest neighbour; `bounce` plays it back and
    forth so the loop has no jump. The two ends linger."""
    from PIL import Image

    frames = [Image.fromarray(upscale(image, scale), mode="L") for image in images]
    order = list(range(len(frames)))
    if bounce and len(frames) > 2:
        order += order[-2:0:-1]
    sequence = [frames[i] for i in order]
    ends = {0, len(frames) - 1}
    durations = [frame_ms * 5 if i in ends else frame_ms for i in order]
    buffer = io.BytesIO()
    sequence[0].save(buffer, format="GIF", save_all=True, append_images=sequence[1:], loop=0,
                     duration=durations, optimize=False)
    return buffer.getvalue()
