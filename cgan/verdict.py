"""The discriminator's verdict: how sure D is that a digit is a real one of the label asked.

D maps (image, label) to a logit; ``sigmoid(logit)`` is its probability that the image is a real
MNIST digit *of that label*. During training D is shown real digits with their own labels and
generated digits with the labels they were asked for, so a real 3 presented as "8" may well be
called fake: D judges the pair, not the picture alone.

Per epoch, ``epoch_view`` asks D about a fixed set of real test digits and about as many digits
from the same epoch's generator (fixed noise), and reports both sets of probabilities and the
fraction D gets right (real called real, generated called fake, at the 0.5 threshold).
Early in training D wins easily (near 100 %); as the game settles it drifts towards 50 %: the
generator's digits fool it about as often as not. The questions (the real digits in the
networks' scale, their labels, the noise) are made once per process (``view_questions``) and
every epoch is asked in one pass of D over real and generated digits together, so a view costs
little more than loading the epoch's two networks. ``remembered_view`` keeps each view for the
life of the process, per version of the epoch's two weight files: every browser session of the
app reads the same copy, and app.preload.warm_views can fill it in the background before the
first visit.

``digit_from_drawing`` turns a digit drawn on a canvas (white on black, RGBA) into the 28x28 the
networks see, the way MNIST was made: the strokes' bounding box scaled to fit a 20x20 box
(aspect ratio kept, area averaging: edge pixels come out grey, as in MNIST), then placed in 28x28
so that its centre of mass sits in the middle.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from cgan.data import mnist_in_memory, to_unit_range
from cgan.models import NUM_CLASSES
from cgan.runs import RunError
from cgan.sampling import generate, noise

VIEW_SEED = 20261127  # names the real digits and the noise of the per-epoch view; never a user's seed
DEFAULT_PER_DIGIT = 100
# Digits of each label per epoch in the app's view: the report's CGAN 50 (500 real, 500
# generated; about 0.05 s an epoch on one busy core). A convolutional model costs far more per
# digit (the cDCGAN at width 1: 1.7 s an epoch for 10 of each label, 3.5 s for 20, on one core
# beside other busy work), so it gets 10.
VIEW_PER_DIGIT = {"cgan": 50}
CONVOLUTIONAL_PER_DIGIT = 10
REMEMBERED_VIEWS = 4096  # views kept per process (one of 500 + 500 digits holds 8 kB)
BINS = np.linspace(0.0, 1.0, 21)  # histogram edges: twenty bins of 0.05


@torch.no_grad()
def verdict(discriminator: torch.nn.Module, images_uint8: np.ndarray, labels, batch: int = 1000) -> np.ndarray:
    """D's probability that each image is a real digit of its label: float (N,) in [0, 1]."""
    device = next(discriminator.parameters()).device
    images = to_unit_range(np.array(images_uint8))  # a copy: MNIST's arrays are read-only
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError("labels are 0-9")
    out = [
        torch.sigmoid(discriminator(images[i : i + batch].to(device), labels[i : i + batch].to(device))).cpu()
        for i in range(0, len(labels), batch)
    ]
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def verdict_for_every_label(discriminator: torch.nn.Module, image_uint8: np.ndarray) -> np.ndarray:
    """(10,) D's probability that one image is a real digit of each label 0-9."""
    return verdict(discriminator, np.repeat(image_uint8[None], NUM_CLASSES, axis=0), np.arange(NUM_CLASSES))


def real_test_digits(per_digit: int = DEFAULT_PER_DIGIT, seed: int = VIEW_SEED) -> tuple[np.ndarray, np.ndarray]:
    """`per_digit` MNIST test images of each digit, chosen by `seed`: (images, labels)."""
    mnist = mnist_in_memory()
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [rng.choice(np.flatnonzero(mnist.test_labels == d), size=per_digit, replace=False) for d in range(NUM_CLASSES)]
    )
    return mnist.test_images[chosen], mnist.test_labels[chosen]


DIGIT_BOX = 20  # MNIST: each digit scaled to fit 20x20 ...
IMAGE_SIZE = 28  # ... and centred by its centre of mass in 28x28
CANVAS = 280  # the drawing canvas's side in screen pixels: 10 per MNIST pixel
# A digit drawn about 200 px tall with strokes this wide comes out as thick as MNIST's: 12 % of
# the 28x28 pixels above half brightness, as in MNIST's test set (measured with PIL strokes).
STROKE_WIDTH = 26
INK = 32  # a canvas pixel at least this bright (0-255) belongs to the drawing's bounding box


def digit_from_drawing(rgba: np.ndarray) -> np.ndarray | None:
    """A drawing (H, W, 4) uint8, light strokes on a dark or transparent canvas, as MNIST's
    centred (28, 28) uint8; None when nothing is drawn."""
    from PIL import Image

    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an RGBA image (H, W, 4), got shape {rgba.shape}")
    # Brightness times opacity: a transparent canvas counts as black, whatever its RGB.
    ink = rgba[..., :3].astype(np.float32).mean(axis=2) * (rgba[..., 3].astype(np.float32) / 255)
    rows, columns = np.flatnonzero((ink >= INK).any(axis=1)), np.flatnonzero((ink >= INK).any(axis=0))
    if len(rows) == 0:
        return None
    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    # Pad the bounding box to a square around its centre, so scaling keeps the aspect ratio
    # and a thin stroke keeps its fractional width as grey edges.
    side = max(bottom - top, right - left)
    square = np.zeros((side, side), np.float32)
    y, x = (side - (bottom - top)) // 2, (side - (right - left)) // 2
    square[y : y + bottom - top, x : x + right - left] = ink[top:bottom, left:right]
    box = Image.fromarray(square, mode="F").resize((DIGIT_BOX, DIGIT_BOX), Image.Resampling.BOX)
    digit = np.asarray(box)
    return centre_by_mass(digit)


def centre_by_mass(digit: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Place a small float image (values 0-255) in a size x size uint8 canvas with its centre of
    mass in the middle (as far as the canvas allows)."""
    height, width = digit.shape
    mass = digit.sum()
    y_mass = (digit.sum(axis=1) * np.arange(height)).sum() / mass + 0.5  # +0.5: pixel centres
    x_mass = (digit.sum(axis=0) * np.arange(width)).sum() / mass + 0.5
    top = int(np.clip(round(size / 2 - y_mass), 0, size - height))
    left = int(np.clip(round(size / 2 - x_mass), 0, size - width))
    image = np.zeros((size, size), np.uint8)
    image[top : top + height, left : left + width] = np.clip(np.rint(digit), 0, 255).astype(np.uint8)
    return image


@dataclass(frozen=True)
class EpochView:
    """What D thought at one epoch of real test digits and of that epoch's generated digits."""

    epoch: int
    real: np.ndarray  # D(x) of each real digit
    generated: np.ndarray  # D(G(z)) of each generated digit

    @property
    def fraction_right(self) -> float:
        """Real called real and generated called fake (threshold 0.5), over both sets."""
        right = np.count_nonzero(self.real > 0.5) + np.count_nonzero(self.generated <= 0.5)
        return right / (len(self.real) + len(self.generated))

    @property
    def real_called_real(self) -> float:
        """The share of real digits D calls real (above 0.5)."""
        return np.count_nonzero(self.real > 0.5) / max(1, len(self.real))

    @property
    def generated_called_fake(self) -> float:
        """The share of generated digits D calls fake (0.5 or below)."""
        return np.count_nonzero(self.generated <= 0.5) / max(1, len(self.generated))

    def histograms(self, bins: np.ndarray = BINS) -> tuple[np.ndarray, np.ndarray]:
        """Counts of D(x) per bin for the real and for the generated digits."""
        return np.histogram(self.real, bins)[0], np.histogram(self.generated, bins)[0]


@functools.lru_cache(maxsize=8)
def view_questions(per_digit: int = DEFAULT_PER_DIGIT, seed: int = VIEW_SEED) -> tuple[torch.Tensor, ...]:
    """What every epoch of the view is asked, made once per process: the real test digits in
    the networks' scale (N, 1, 28, 28), their labels (N,) and the noise (N, 100) of as many
    generated digits with the same labels. Shared: never modify them in place."""
    images, labels = real_test_digits(per_digit, seed)
    return to_unit_range(images), torch.as_tensor(labels, dtype=torch.long), noise(seed, len(labels))


@contextlib.contextmanager
def one_thread():
    """Torch on one thread for the duration. The view's products are small, and beside any
    other busy process two threads wait on each other: measured on the 2-core machine with
    other work running, the 32 epochs of cgan-report took 1.1-1.3 s on one thread, 9-11 s on two."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


@torch.inference_mode()
def judge(epoch: int, discriminator: torch.nn.Module, generator: torch.nn.Module,
          per_digit: int = DEFAULT_PER_DIGIT, seed: int = VIEW_SEED) -> EpochView:
    """D's view at `epoch` from that epoch's two networks (already loaded)."""
    with one_thread():
        return _judge(epoch, discriminator, generator, per_digit, seed)


def _judge(epoch: int, discriminator: torch.nn.Module, generator: torch.nn.Module,
           per_digit: int, seed: int) -> EpochView:
    real, labels, z = view_questions(per_digit, seed)
    # D judges the generated digits as the page shows them: rounded to 8-bit pixels.
    drawn = to_unit_range(generate(generator, labels, z))
    device = next(discriminator.parameters()).device
    both = discriminator(torch.cat([real, drawn]).to(device), torch.cat([labels, labels]).to(device))
    probabilities = torch.sigmoid(both).cpu().numpy().astype(np.float64)
    return EpochView(epoch, probabilities[: len(labels)], probabilities[len(labels) :])


def epoch_view(run, epoch: int, per_digit: int = DEFAULT_PER_DIGIT, seed: int = VIEW_SEED) -> EpochView:
    """D of `epoch` (cgan.runs.Run) on real test digits and on the same epoch's generated digits
    (the same number, the same labels, noise named by `seed`)."""
    with one_thread():  # loading builds and fills the networks: torch work too
        return judge(epoch, run.load_discriminator(epoch), run.load_generator(epoch), per_digit, seed)


def view_per_digit(run) -> int:
    """How many digits of each label the app's view asks about at every epoch of `run`."""
    return VIEW_PER_DIGIT.get(run.config().get("model"), CONVOLUTIONAL_PER_DIGIT)


_views: OrderedDict[tuple, EpochView] = OrderedDict()
_views_lock = threading.Lock()


def _view_key(run, epoch: int, per_digit: int | None, seed: int) -> tuple:
    """The view's identity: both weight files' versions (path, mtime, size), its size and seed."""
    versions = []
    for path in (run.discriminator_path(epoch), run.weights_path(epoch)):
        try:
            stat = path.stat()
        except FileNotFoundError:
            role = "discriminator" if path == run.discriminator_path(epoch) else "generator"
            raise RunError(f"run {run.name}: epoch {epoch} has no {role} weights") from None
        versions.append((str(path), stat.st_mtime_ns, stat.st_size))
    return (*versions, view_per_digit(run) if per_digit is None else per_digit, seed)


def remembered_view(run, epoch: int, per_digit: int | None = None, seed: int = VIEW_SEED) -> EpochView:
    """epoch_view (with `view_per_digit` digits of each label unless told), computed once per
    process for each version of the epoch's two weight files: a rewritten file is judged again."""
    key = _view_key(run, epoch, per_digit, seed)
    with _views_lock:
        if key in _views:
            _views.move_to_end(key)
            return _views[key]
    # Computed outside the lock: a session never waits for another's (or the launcher's) work;
    # at worst two of them judge the same epoch once each.
    view = epoch_view(run, epoch, key[2], seed)
    with _views_lock:
        _views[key] = view
        while len(_views) > REMEMBERED_VIEWS:
            _views.popitem(last=False)
    return view


def is_remembered(run, epoch: int, per_digit: int | None = None, seed: int = VIEW_SEED) -> bool:
    """Whether remembered_view(run, epoch, ...) would answer without computing."""
    try:
        key = _view_key(run, epoch, per_digit, seed)
    except RunError:
        return False
    with _views_lock:
        return key in _views


def view_epochs(run, complete: list[int] | None = None) -> list[int]:
    """Complete epochs with both discriminator and generator weights: the ones D's view can show
    (`complete`: the run's complete epochs, if the caller has them at hand)."""
    complete = run.epochs() if complete is None else complete
    return sorted(set(run.discriminator_epochs(complete)) & set(run.weight_epochs(complete)))
