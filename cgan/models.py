"""The report's conditional GANs, found by name in one registry.

Every generator maps ``(z: (B, 100) float, labels: (B,) int64)`` to images ``(B, 1, 28, 28)`` in
[-1, 1]; every discriminator maps ``(images, labels)`` to logits ``(B,)`` (the sigmoid belongs to the
loss). A model family is one class with its two networks and the report's training defaults; adding
a third model is one more ``@register`` class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NOISE_DIM = 100
NUM_CLASSES = 10
IMAGE_PIXELS = 28 * 28
MAX_WIDTH = 4.0  # widest channel factor a network is built with (1 = the report's size)


def check_width(width) -> float:
    """`width` as a float if a network can be built with it (more than 0, at most MAX_WIDTH);
    else ValueError in one line, before any memory is asked for."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= MAX_WIDTH:
        shown = repr(width)[:40] if isinstance(width, (int, float, str)) else type(width).__name__
        raise ValueError(f"width {shown}: must be a number more than 0 and at most {MAX_WIDTH:g}")
    return float(width)


@dataclass(frozen=True)
class TrainDefaults:
    batch_size: int
    lr: float
    epochs: int
    beta1: float = 0.5
    beta2: float = 0.999


MODELS: dict[str, type[ModelFamily]] = {}


def register(cls):
    MODELS[cls.name] = cls
    return cls


class ModelFamily:
    name: str
    description: str
    defaults: TrainDefaults
    # Whether training it gives the same bits whatever torch's thread count (matrix products
    # only, under MKL's strict mode); convolutions (oneDNN) split their sums by thread.
    thread_count_free: bool = True

    @staticmethod
    def generator(width: float = 1.0) -> nn.Module:
        raise NotImplementedError

    @staticmethod
    def discriminator(width: float = 1.0) -> nn.Module:
        raise NotImplementedError


def get_model(name: str) -> type[ModelFamily]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}") from None


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    """Digit labels (N,) as one-hot rows; label vectors (N, 10), e.g. a blend of two digits,
    pass through as they are."""
    if labels.dim() == 2:
        return labels.to(torch.float32)
    return F.one_hot(labels, NUM_CLASSES).to(torch.float32)


# ---------------------------------------------------------------------------------------------
# CGAN: the report's two-layer perceptrons


class MlpGenerator(nn.Module):
    def __init__(self, hidden: int = 128):
        super().__init__()
        self.hidden = nn.Linear(NOISE_DIM + NUM_CLASSES, hidden)
        self.out = nn.Linear(hidden, IMAGE_PIXELS)
        for layer in (self.hidden, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.hidden(torch.cat([z, one_hot(labels)], dim=1)))
        return torch.tanh(self.out(h)).view(-1, 1, 28, 28)


class MlpDiscriminator(nn.Module):
    def __init__(self, hidden: int = 128):
        super().__init__()
        self.hidden = nn.Linear(IMAGE_PIXELS + NUM_CLASSES, hidden)
        self.out = nn.Linear(hidden, 1)
        for layer in (self.hidden, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = torch.cat([images.reshape(-1, IMAGE_PIXELS), one_hot(labels)], dim=1)
        return self.out(F.leaky_relu(self.hidden(x), 0.2)).view(-1)


@register
class CGAN(ModelFamily):
    name = "cgan"
    description = "the report's CGAN: 110 -> 128 -> 784 generator, 794 -> 128 -> 1 discriminator"
    defaults = TrainDefaults(batch_size=150, lr=1e-3, epochs=200)

    @staticmethod
    def generator(width: float = 1.0) -> nn.Module:
        return MlpGenerator(hidden=max(1, round(128 * check_width(width))))

    @staticmethod
    def discriminator(width: float = 1.0) -> nn.Module:
        return MlpDiscriminator(hidden=max(1, round(128 * check_width(width))))


# ---------------------------------------------------------------------------------------------
# cDCGAN: the convolutional comparison model


def _dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ConvGenerator(nn.Module):
    def __init__(self, width: float = 1.0):
        super().__init__()
        wide, narrow = max(1, round(256 * width)), max(1, round(128 * width))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(NOISE_DIM + NUM_CLASSES, wide, 7),  # 1x1 -> 7x7
            nn.BatchNorm2d(wide),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(wide, narrow, 5, stride=2, padding=2, output_padding=1),  # -> 14x14
            nn.BatchNorm2d(narrow),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(narrow, 1, 5, stride=2, padding=2, output_padding=1),  # -> 28x28
            nn.Tanh(),
        )
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        code = torch.cat([z, one_hot(labels)], dim=1)
        return self.net(code[:, :, None, None])


class ConvDiscriminator(nn.Module):
    def __init__(self, width: float = 1.0):
        super().__init__()
        narrow, wide = max(1, round(128 * width)), max(1, round(256 * width))
        self.net = nn.Sequential(
            nn.Conv2d(1 + NUM_CLASSES, narrow, 5, stride=2, padding=2),  # 28 -> 14
            nn.LeakyReLU(0.2),
            nn.Conv2d(narrow, wide, 5, stride=2, padding=2),  # 14 -> 7
            nn.BatchNorm2d(wide),
            nn.LeakyReLU(0.2),
            nn.Conv2d(wide, 1, 7),  # 7 -> 1
        )
        _dcgan_init(self)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        planes = one_hot(labels)[:, :, None, None].expand(-1, -1, 28, 28)
        return self.net(torch.cat([images.reshape(-1, 1, 28, 28), planes], dim=1)).view(-1)


@register
class CDCGAN(ModelFamily):
    name = "cdcgan"
    description = "the convolutional cDCGAN the report compares against (width scales channels)"
    defaults = TrainDefaults(batch_size=100, lr=2e-4, epochs=20)
    thread_count_free = False

    @staticmethod
    def generator(width: float = 1.0) -> nn.Module:
        return ConvGenerator(check_width(width))

    @staticmethod
    def discriminator(width: float = 1.0) -> nn.Module:
        return ConvDiscriminator(check_width(width))
