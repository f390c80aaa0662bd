"""Failure modes on purpose: training presets that go wrong in a way students can see, fast.

Each preset is a handful of TrainConfig overrides on the report's CGAN and one sentence that says
what to watch. The first two train on the first 10,000 MNIST images for 8 epochs (528 iterations,
about 16-19 s on a shared 2-core Xeon); mode collapse needs all 60,000 images for 4 epochs (about
15-20 s here), since on 10,000 images the report's own CGAN is as little varied for its first 8
epochs. What our runs showed is in each preset's ``measured`` line; the report's settings over the
same 8 epochs of 10,000 images, for comparison::

    lr 1e-3, beta1 0.5 (seed 0)    D loss 0.53-1.22, G loss 1.37-2.14 every epoch

Mode collapse comes from training the generator several times per discriminator step
(``g_steps``, the textbook way): against a D that barely moves, G settles on the one picture D
rates most real and draws it for every input. Changing learning rates alone did not do it. What
was tried first (seed 0; mean diversity at every epoch, the 25-epoch runs every 5th, 1.0 = real
handwriting; accuracy; one thread of the shared 2-core Xeon, load 2.5-3.7)::

    the CGAN on 10,000 images
    report's recipe, 25 epochs           0.09 0.22 0.42 0.65 0.60 at epochs 5-25, accuracy 10-11 %
    --d-lr-scale 0.25, 25 epochs         0.12 0.12 0.13 0.15 0.23 (noise, no digit shapes)
    --d-lr-scale 0.1, 8 epochs           0.15 0.13 0.11 0.10 0.11 0.11 0.12 0.10 (one texture)
    report's recipe, 8 epochs            0.13 0.08 0.09 0.11 0.09 0.09 0.13 0.16
    batch 16                             0.11 0.43 0.63 0.73 (epochs 1-4)
    batch 8, lr 5e-3 / batch 16, lr 1e-2 0.73-0.92 / 0.55-0.85 (6 epochs), accuracy 29 % / 20 %
    the CGAN on all 60,000 images (2.7 s an epoch here)
    report's recipe                      0.09 0.37 0.55 0.61, accuracy 10-11 %
    lr 5e-3                              0.25 0.53 0.74 0.82 0.71 0.74, accuracy 55 % at epoch 6
    lr 1e-2                              0.27 0.70 0.78 0.86 0.81 0.84 0.77 0.82, accuracy 58 % at 8
    lr 2e-2                              0.30-0.91 for 7 epochs, then D 3.6 / G 10.4, 0.18, 10 %
    lr 1e-2, beta2 0.9                   0.50-0.83, accuracy 37 % at epoch 6
    lr 1e-2, --d-lr-scale 0.3            0.18 0.47 0.81 0.81 0.65 0.75, accuracy 53 %
    lr 1e-2, --d-lr-scale 0.05           0.17-0.29, D loss 0.02, G 5.7 (speckled noise)
    G's rate 5x D's (lr 1e-3)            0.22-0.71, accuracy 18 % at epoch 6
    G's rate 10x D's (lr 1e-3)           0.28-0.34, then 0.25 0.16; D loss 0.74 -> 0.008, G 4.3 -> 6.4
    G's rate 4x D's (lr 5e-3)            0.14 0.17 0.12 0.08 0.06 0.06 0.17 0.03; D loss -> 0.001
    lr 2e-3 / 1e-2 / 5e-3, beta1 0.9 / 0.7 / 0.8   0.14-0.31 / 0.17-0.37 / 0.16-0.66, G loss 3-29, 10-20 %
    the cDCGAN at width 0.125 on 6,400 images, batch 64 (4 s an epoch here)
    report's lr 2e-4                     0.33 0.58 0.77 0.87, accuracy 10-14 %
    lr 2e-3 / 1e-2 / 3e-2                0.87-0.97 / 0.80-0.99 / 0.80-0.98, accuracy 31-61 %
    lr 2e-3: G's rate 5x / 20x D's       0.83-0.97 / 0.64-0.92
    lr 2e-3, --d-lr-scale 0.1 / 5 / 20   0.68-0.91 / 0.68-0.99 / 0.69-0.97, accuracy 29-67 %
    lr 2e-3 / 5e-3 / 1e-2, beta1 0.9/0.9/0.8   0.74-1.01 / 0.34-1.00 / 0.44-1.02
    lr 2e-3, batch 8 on 1,600 images     0.87-0.98, accuracy 25-51 %

(G's own rate was set by hand in a scratch script; TrainConfig has no such field.) A faster
learning rate starts on the labels within 5 epochs of 60,000 images (accuracy 44 %), but stays
varied. Diversity only fell where the discriminator won (its loss near 0, the generator's above 4,
every sample one texture and accuracy 10 %): what the "discriminator wins" preset already shows.
Five generator steps per D step on all 60,000 images (the preset) is different: D's loss stays
near log 4 and G's near log 2 (neither wins), and the diversity stays at 0.11-0.28 for 4 epochs
while the report's recipe climbs to 0.61 (seeds 0-2 in the preset's ``measured`` line).

The Train page offers them by ``title``, after ``RECIPE`` (the report's own settings over the same
short run, the healthy game to compare with); ``config()`` gives the TrainConfig to launch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cgan.config import TrainConfig
from cgan.messages import N_

SHORT_RUN = dict(model="cgan", limit=10_000, epochs=8)


@dataclass(frozen=True)
class Preset:
    name: str  # a slug, also a sensible run name
    title: str  # what the Train page lists
    description: str  # one sentence a student understands: what is changed and what to watch
    overrides: dict = field(default_factory=dict)  # TrainConfig fields
    measured: str = ""  # what our short runs showed
    promise: str = ""  # what a class watching the run sees, and when (the Train page says it)

    def config(self, **more) -> TrainConfig:
        settings = {**self.overrides, **more}
        return TrainConfig.for_model(settings.pop("model"), **settings)


# The Train page's default: a run that writes the digits asked for within a minute on a laptop's
# CPU, so a class watching it live sees the rows turn into 0, 1, 2 ... The report's network and
# loss with more steps per second of training: batches of 64 (469 steps per 30,000 images against
# the report's 200) and a learning rate three times the report's; epochs of half the training set,
# so the first grid comes within seconds and a new one every second or two. Measured with
# bench/lecture_recipe.py; the figures are in the README.
LECTURE = Preset(
    name="lecture",
    title=N_("Digits within a minute (the lecture's run)"),
    description=N_(
        "The report's CGAN with more, smaller steps (batches of 64, learning rate 0.003, epochs of "
        "30,000 images): the first grid is noise, the rows turn into the digits asked for after a "
        "few epochs, and within a minute the classifier reads most of them right."
    ),
    overrides={"model": "cgan", "limit": 30_000, "epochs": 30, "batch_size": 64, "lr": 3e-3},
    promise=N_("The class sees noise at epoch 1 and the digits asked for, row by row, within about a "
             "minute on a laptop's CPU."),
    measured=("2-core Xeon, quiet: first epoch 4.0-4.3 s after Start, 70 % of the asked digits read "
              "right at 12.7-16.7 s, 77-80 % when it ends at 37-42 s (seeds 0-2); beside a busy "
              "process: first epoch 7.8-13.0 s, 70 % at 41-70 s"),
)

# The report's own recipe, whole: 200 epochs of all 60,000 images (the shipped cgan-report).
REPORT = Preset(
    name="report",
    title=N_("The report's recipe (200 epochs)"),
    description=N_(
        "The report's settings exactly (batches of 150, learning rate 0.001, beta1 0.5, all 60,000 "
        "images, 200 epochs): the run behind the shipped cgan-report, a few minutes on this CPU and "
        "an afternoon's watching; its rows use the labels from about epoch 9."
    ),
    overrides={"model": "cgan", "limit": None, "epochs": 200},
)

# Not a failure: the report's numerics over the same short run, for comparison.
RECIPE = Preset(
    name="report-recipe",
    title=N_("The report's settings on the failures' short run"),
    description=N_(
        "The report's own settings (learning rate 0.001, beta1 0.5, batch 150) over the same short "
        "run: the healthy game, where D's loss stays between 0.5 and 1.2 and G's between 1.4 and "
        "2.1, to compare with the failures below."
    ),
    overrides=dict(SHORT_RUN),
    measured="seed 0: D loss 0.53-1.22, G loss 1.37-2.14 every epoch",
)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="discriminator-wins",
            title=N_("The discriminator wins"),
            description=N_(
                "Five times the learning rate with heavy momentum (beta1 0.9) lets the discriminator "
                "spot every fake: its loss falls to almost zero while the generator's loss shoots up, "
                "so the generator no longer learns anything useful."
            ),
            overrides={**SHORT_RUN, "lr": 5e-3, "beta1": 0.9},
            measured=(
                "seed 0: D loss 1.24 0.48 1.01 0.62 0.026 0.008 0.002 0.000, "
                "G loss 5.6 5.1 17.2 32.6 19.3 13.6 13.3 9.2; seed 1: D loss 2.04 1.14 2.08 0.27 "
                "0.002 0.003 0.002 0.001, G loss 3.4 3.4 6.3 18.5 9.8 13.9 15.2 9.4"
            ),
        ),
        Preset(
            name="mode-collapse",
            title=N_("Mode collapse"),
            description=N_(
                "The generator trains five times for every step of the discriminator, on all "
                "60,000 images: it finds one picture that D accepts and draws it for every noise "
                "and every label, so every cell of the grid shows the same blob, the diversity "
                "stays near 0.1-0.3 (the report's recipe reaches 0.6 in the same 4 epochs) and D's "
                "loss sits near log 4 (1.39): it cannot tell that picture from real digits."
            ),
            overrides={"model": "cgan", "limit": None, "epochs": 4, "g_steps": 5},
            measured=(
                "mean diversity at epochs 1-4 (1,000 samples of each digit): seed 0 0.11 0.14 0.14 "
                "0.18, seed 1 0.12 0.12 0.12 0.16, seed 2 0.11 0.13 0.24 0.28, against 0.09 0.37 "
                "0.55 0.61 for the report's recipe on the same images (seed 0); D loss 2.07-1.94 "
                "then 1.44-1.53, G loss 0.73-0.80 from epoch 2 (report's recipe: D 0.97-1.07, G "
                "1.50-1.72); every cell of the grid the same blob"
            ),
        ),
        Preset(
            name="learning-rate-too-high",
            title=N_("A learning rate too high to settle"),
            description=N_(
                "Fifty times the report's learning rate makes every step overshoot, so both losses "
                "jump up and down from epoch to epoch instead of settling near 1.4 and 0.7."
            ),
            overrides={**SHORT_RUN, "lr": 5e-2},
            measured=(
                "seed 0: D loss 8.7 7.4 10.5 4.1 1.9 2.3 66.6 19.8, "
                "G loss 9.0 5.4 6.2 2.3 1.4 1.6 221 224; seed 1: D loss 10.9 7.7 7.5 9.5 0.017 "
                "0.003 24.7 0.21, G loss 11.8 29.9 157 101 107 32.7 660 297"
            ),
        ),
    )
}


def choices() -> list[Preset]:
    """What the Train page offers, in order: the lecture's run (its default), the report's whole
    recipe, its settings on the failures' short run, then each failure."""
    return [LECTURE, REPORT, RECIPE, *PRESETS.values()]


def preset(name: str) -> Preset:
    for item in (LECTURE, REPORT, RECIPE):
        if name == item.name:
            return item
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
