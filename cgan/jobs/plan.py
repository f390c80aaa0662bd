"""The cost model: how long a run should train, and how often it measures its quality as it does.

Measuring quality while training (the classifier's accuracy and Fréchet distance on generated
digits) may cost at most MEASURE_SHARE of the training time. The seconds below were measured on the
2-core Xeon this project is developed on: a CGAN epoch on 10,000 images and one full measurement
(QUALITY_SAMPLES of each digit: CGAN 1.3 s, cDCGAN at full width 8 s; a measurement's cost grows
with its samples). The cDCGAN's epoch comes from its measured ratio to its measurement (about 10 to
1, timed side by side on the same busy machine), and its cost at other widths from the same runs at
width 1 and 0.25 (a quarter width costs about half): estimates, good enough to choose how often to
measure and to tell a queue when its jobs should start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cgan.config import TrainConfig
from cgan.limits import MIN_QUALITY_SAMPLES, QUALITY_SAMPLES, TRAIN_IMAGES

MEASURE_SHARE = 0.2
MEASURE_SECONDS = {"cgan": 1.3, "cdcgan": 8.0}
EPOCH_SECONDS_PER_10K = {"cgan": 0.3, "cdcgan": 80.0}
# A run shows at least this many points on its Quality curves while it trains, where full
# measurements that often would cost more than their share: it measures on fewer samples.
LIVE_POINTS = 5


def cdcgan_cost(width: float) -> float:
    """The cDCGAN's cost at `width` relative to full width (fitted to width 1 and 0.25)."""
    return 0.445 + 0.555 * width**2


def _seconds(model: str, images: int, width: float, per_digit: int) -> tuple[float, float]:
    """(an epoch, a measurement on per_digit samples of each digit), in seconds."""
    scale = cdcgan_cost(width) if model == "cdcgan" else 1.0
    epoch = EPOCH_SECONDS_PER_10K.get(model, 0.3) * scale * images / 10_000
    measure = MEASURE_SECONDS.get(model, 1.3) * scale * per_digit / QUALITY_SAMPLES
    return max(epoch, 1e-6), measure


def measure_every(model: str, images: int, width: float = 1.0, per_digit: int = QUALITY_SAMPLES) -> int:
    """Epochs between quality measurements so that measuring costs at most MEASURE_SHARE of the
    training time, from the seconds per epoch and per measurement above."""
    epoch, measure = _seconds(model, images, width, per_digit)
    return max(1, math.ceil(measure / (MEASURE_SHARE * epoch)))


@dataclass(frozen=True)
class MeasurePlan:
    every: int  # epochs between measurements (and one after the last epoch)
    per_digit: int  # samples of each digit per measurement


def measure_plan(model: str, images: int, width: float = 1.0, epochs: int | None = None) -> MeasurePlan:
    """How often, and on how many samples, a run measures its quality while it trains: full
    measurements when they fit LIVE_POINTS times into MEASURE_SHARE of the run; else, for a short
    run, after every epoch on as many samples as fit (at least MIN_QUALITY_SAMPLES of each digit,
    rounded down to fifties), so a class watching it sees the accuracy climb epoch by epoch; else
    as often as MIN_QUALITY_SAMPLES fit."""
    every = measure_every(model, images, width)
    if epochs is None or epochs < 1 or epochs // every >= LIVE_POINTS:  # (bad epochs: the form says)
        return MeasurePlan(every, QUALITY_SAMPLES)
    epoch, full = _seconds(model, images, width, QUALITY_SAMPLES)
    each_epoch = int(QUALITY_SAMPLES * MEASURE_SHARE * epoch / full) // 50 * 50
    if each_epoch >= MIN_QUALITY_SAMPLES:
        return MeasurePlan(1, min(QUALITY_SAMPLES, each_epoch))
    per_point = MEASURE_SHARE * epoch * epochs / min(LIVE_POINTS, epochs)
    per_digit = int(QUALITY_SAMPLES * per_point / full) // 50 * 50
    per_digit = min(QUALITY_SAMPLES, max(MIN_QUALITY_SAMPLES, per_digit))
    return MeasurePlan(measure_every(model, images, width, per_digit), per_digit)


def quality_plan(config: TrainConfig) -> MeasurePlan:
    """The measure_plan of a configuration (a run started from the app measures as it says)."""
    return measure_plan(config.model, config.limit or TRAIN_IMAGES, config.width, config.epochs)


def estimated_seconds(config: TrainConfig) -> float:
    """How long a configuration should train, measurements included (one after the last epoch)."""
    epoch, measure = _seconds(config.model, config.limit or TRAIN_IMAGES, config.width,
                              config.metrics_samples)
    measures = config.epochs / config.metrics_every + 1 if config.metrics_every else 0
    return config.epochs * epoch + measures * measure
