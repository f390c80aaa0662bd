"""Name what is going wrong in a GAN's training from its numbers, in a sentence a student reads.

``diagnose(records)`` reads a run's history (D and G loss per epoch, and the quality measures
where present) and returns the symptoms it shows at its newest epoch, most serious first, or
an empty list when the numbers look healthy:

* **diverged**: a loss is NaN or infinite;
* **discriminator wins**: D's loss near zero while G's loss is high and climbing (D tells every
  fake apart, so G's gradient carries almost no signal);
* **learning rate too high**: the losses jump up and down from epoch to epoch instead of settling;
* **mode collapse**: the samples' diversity (1.0 = as varied as real digits) has fallen well
  below its best, to a low value: the generator draws the same few digits over and over; or it
  stays very low while the discriminator is at chance (D's loss near log 4, G's near log 2): the
  generator draws one picture for every input and D cannot tell it from real digits;
* **labels not learned yet**: the classifier reads the samples as the digit asked for hardly more
  often than by guessing (10 %): every row of the grid draws the same kind of shape, because G
  does not use the label y yet. Every run starts there; the report's CGAN on all 60,000 images
  leaves it after 8 epochs (the shipped run), on 10,000 images not within 20.

The thresholds are chosen so that the report's CGAN and cDCGAN (the shipped runs) show no failure
at any epoch (the CGAN reads "labels not learned yet" for its first 8 epochs, as it should), while
each failure above shows within a few epochs of starting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

WINDOW = 6  # epochs looked at for trends and oscillation
D_NEAR_ZERO = 0.3  # mean D loss below this: D is (almost) always right
G_HIGH = 2.5  # mean G loss above this while D is near zero
JUMPS = 0.3  # mean epoch-to-epoch change / mean level above this: not settling
TURNS = 2  # ... with at least this many changes of direction in the window
COLLAPSED = 0.5  # mean diversity below this ...
FALLEN = 0.7  # ... and below this share of its best so far
STUCK = 0.3  # mean diversity below this at the last two measurements ...
D_AT_CHANCE = 1.3  # ... while D's loss is near log 4 = 1.39 (it cannot tell real from fake)
G_AT_CHANCE = 0.85  # ... and G's near log 2 = 0.69
LABELS_CHANCE = 0.2  # conditional accuracy below this: the label does not steer G yet (chance 0.1)


def N_(message: str) -> str:
    """Marks a sentence for the app's message catalog (app/locale): the library stays English,
    the app translates ``Symptom.template`` where it shows it and fills in ``Symptom.values``."""
    return message


@dataclass(frozen=True)
class Symptom:
    name: str  # "diverged", "discriminator_wins", "learning_rate_too_high", "mode_collapse",
    # "labels_not_learned"
    epoch: int  # the newest epoch, where it shows
    template: str  # what a student reads, with {placeholders} for the numbers (English)
    values: dict = field(default_factory=dict)  # the placeholders' text: numbers, formatted

    @property
    def sentence(self) -> str:
        """What a student reads, in English."""
        return self.template.format(**self.values)


def _losses(records) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    epochs = np.array([r.epoch for r in records])
    d = np.array([float(r.d_loss) for r in records])
    g = np.array([float(r.g_loss) for r in records])
    return epochs, d, g


def mean_diversity(metrics) -> float | None:
    """The mean of the per-digit diversity a history record holds, or None."""
    if not isinstance(metrics, dict) or not isinstance(metrics.get("diversity"), list):
        return None
    values = [v for v in metrics["diversity"] if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def diverged(epochs, d, g) -> Symptom | None:
    bad = ~(np.isfinite(d) & np.isfinite(g))
    if not bad.any():
        return None
    first = int(epochs[np.argmax(bad)])
    return Symptom("diverged", int(epochs[-1]), N_(
        "Training has diverged: the losses became NaN or infinite at epoch {first}. The weights "
        "are broken from there on; start again with a smaller learning rate."), {"first": first})


def discriminator_wins(epochs, d, g) -> Symptom | None:
    recent_d, recent_g = d[-3:], g[-WINDOW:]
    if len(d) < 3 or recent_d.mean() >= D_NEAR_ZERO or g[-3:].mean() <= G_HIGH:
        return None
    if recent_g[-1] <= recent_g[0] and recent_g[-1] < 2 * G_HIGH:
        return None  # G's loss is high but coming down: the game is recovering
    return Symptom("discriminator_wins", int(epochs[-1]), N_(
        "The discriminator is winning: its loss is near zero ({d_loss}) while the "
        "generator's loss climbs ({g_from} → {g_to}). D spots every fake, so "
        "G learns almost nothing from it; a weaker D (smaller learning rate, fewer units) or a "
        "stronger G restores the balance."), {"d_loss": f"{recent_d.mean():.2f}",
                                              "g_from": f"{recent_g[0]:.1f}",
                                              "g_to": f"{recent_g[-1]:.1f}"})


def _unsettled(values: np.ndarray) -> bool:
    steps = np.diff(values)
    turns = int((np.sign(steps[1:]) * np.sign(steps[:-1]) < 0).sum())
    return np.abs(steps).mean() / max(np.abs(values).mean(), 1e-6) > JUMPS and turns >= TURNS


def learning_rate_too_high(epochs, d, g) -> Symptom | None:
    if len(d) < WINDOW:
        return None
    recent_d, recent_g = d[-WINDOW:], g[-WINDOW:]
    if not (_unsettled(recent_d) or _unsettled(recent_g)):
        return None
    return Symptom("learning_rate_too_high", int(epochs[-1]), N_(
        "The learning rate looks too high: over the last {window} epochs the losses jump up and "
        "down (D {d_low}-{d_high}, G {g_low}-{g_high}) instead of settling. Each step overshoots; "
        "try a learning rate 5-10 times smaller."), {
            "window": WINDOW, "d_low": f"{recent_d.min():.2f}", "d_high": f"{recent_d.max():.2f}",
            "g_low": f"{recent_g.min():.2f}", "g_high": f"{recent_g.max():.2f}"})


def mode_collapse(records) -> Symptom | None:
    measured = [(r, mean_diversity(r.metrics)) for r in records]
    measured = [(r, v) for r, v in measured if v is not None]
    if len(measured) < 2:
        return None
    if all(v < STUCK and float(r.d_loss) >= D_AT_CHANCE and float(r.g_loss) <= G_AT_CHANCE
           for r, v in measured[-2:]):
        record, latest = measured[-1]
        return Symptom("mode_collapse", int(record.epoch), N_(
            "Mode collapse: the generator draws the same picture for every noise and every label "
            "(diversity {diversity}; 1.0 = as varied as real handwriting), and the discriminator "
            "cannot tell it from real digits (its loss, {d_loss}, sits near log 4 "
            "= 1.39). G has found one picture this D accepts and stopped exploring; a stronger D, "
            "or fewer generator steps per D step, restores the game."),
            {"diversity": f"{latest:.2f}", "d_loss": f"{float(record.d_loss):.2f}"})
    points = [(r.epoch, v) for r, v in measured]
    epoch, latest = points[-1]
    best_epoch, best = max(points[:-1], key=lambda p: p[1])
    if latest >= COLLAPSED or latest >= FALLEN * best:
        return None
    return Symptom("mode_collapse", int(epoch), N_(
        "Mode collapse: the diversity of the samples fell from {best} (epoch {best_epoch}) to "
        "{latest} (1.0 = as varied as real handwriting). The generator has found a few digits "
        "that fool the discriminator and draws them over and over."),
        {"best": f"{best:.2f}", "best_epoch": best_epoch, "latest": f"{latest:.2f}"})


def labels_not_learned(records) -> Symptom | None:
    """The newest quality measurement reads the asked-for digit near chance."""
    measured = [r for r in records if isinstance(r.metrics, dict)
                and isinstance(r.metrics.get("accuracy"), (int, float))
                and math.isfinite(r.metrics["accuracy"])]
    if not measured:
        return None
    record = measured[-1]
    accuracy = float(record.metrics["accuracy"])
    if accuracy >= LABELS_CHANCE:
        return None
    return Symptom("labels_not_learned", int(record.epoch), N_(
        "The generator has not learned the labels yet: at epoch {epoch} the classifier "
        "reads only {accuracy} of its samples as the digit asked for (guessing gives 10 %), so "
        "every row of the grid draws the same kind of shape. G ignores the label y so far; more "
        "epochs, more training images or a faster learning rate teach it."),
        {"epoch": record.epoch, "accuracy": f"{accuracy:.0%}"})


def diagnose(records) -> list[Symptom]:
    """The symptoms the history shows at its newest epoch, most serious first ([] = healthy)."""
    records = list(records)
    if not records:
        return []
    epochs, d, g = _losses(records)
    found = diverged(epochs, d, g)
    if found is not None:
        return [found]  # nothing else can be read from broken numbers
    checks = (discriminator_wins(epochs, d, g), learning_rate_too_high(epochs, d, g),
              mode_collapse(records))
    found = [s for s in checks if s is not None]
    if not found:  # a failing game explains the rows already; this is the sign of one not begun
        unlearned = labels_not_learned(records)
        found += [unlearned] if unlearned else []
    return found
