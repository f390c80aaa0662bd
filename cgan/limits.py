"""Bounds every entry point shares: one place for the numbers a form, a CLI and a check agree on."""

TRAIN_IMAGES = 60_000  # images in MNIST's training set
TEST_IMAGES = 10_000  # images in MNIST's test set
MAX_SEED = 2**31 - 1  # largest seed accepted anywhere (training, sampling, metrics, the app)
QUALITY_SAMPLES = 1000  # samples of each digit in a full quality measurement
MIN_QUALITY_SAMPLES = 100  # the fewest a measurement uses (the Fréchet distance gets noisy below)
