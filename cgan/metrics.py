"""Measured quality from the command line: the classifier, the measures and the real reference.

The library lives in three modules, by what they hold:

* ``cgan.classifier``: the LeNet-style MNIST classifier, its training and ``classify``;
* ``cgan.quality``: accuracy, Fréchet distance, diversity, ``evaluate_generator``, the rejected
  samples, the floor, and the real-MNIST reference stored beside the classifier;
* ``cgan.neighbours``: nearest training images ("is it copying?").

Their public names are re-exported here, so ``from cgan.metrics import evaluate_generator`` keeps
working. Command line::

    python -m cgan.metrics train-classifier            # retrain checkpoints/classifier.pt (+ reference)
    python -m cgan.metrics reference                   # store real_reference.npz for the classifier
    python -m cgan.metrics test-accuracy               # the classifier on the 10,000 test images
    python -m cgan.metrics floor                       # real training images vs the test set
    python -m cgan.metrics evaluate checkpoints/RUN [--epochs 1,5,10 | all-saved] [--averaged]

Exit status: 0 done, 2 the arguments are wrong (one line), 1 something failed (one line).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cgan.classifier import (  # noqa: F401  (re-exported)
    BATCH, CLASSIFIER_PATH, FEATURES, DigitClassifier, MetricsError, Reading, classifier_id,
    classify, load_classifier, train_classifier,
)
from cgan.data import TRAIN_LABEL_COUNTS, mnist_in_memory
from cgan.limits import MAX_SEED
from cgan.neighbours import (  # noqa: F401  (re-exported)
    Neighbours, median_real_distance, nearest_training_images, nearest_training_images_batch,
)
from cgan.quality import (  # noqa: F401  (re-exported)
    DEFAULT_PER_DIGIT, EVAL_SEED, FLOOR_SEED, RealReference, Rejected, compute_reference,
    conditional_accuracy, evaluate_generator, evaluation_inputs, feature_statistics, floor_frechet,
    frechet_distance, frechet_floor, mean_pairwise_distance, measure, real_reference,
    real_training_sample, rejected_samples, save_reference,
)

AVERAGED_KEY = "averaged"  # history metrics of the weight-averaged generator: record.metrics[AVERAGED_KEY]


# ---------------------------------------------------------------------------------------------
# Epoch lists


def parse_epochs(spec: str, saved: list[int]) -> list[int]:
    """'all-saved' or a comma list of epochs / ranges (1,5,10 or 1-10); each must have weights.

    Ranges are checked against the saved epochs without being spelled out, so 1-10000000000
    costs no memory."""
    if spec.strip().lower() in ("all-saved", "all"):
        return list(saved)
    saved_set = set(saved)
    wanted: set[int] = set()
    missing: list[int] = []
    for token in spec.split(","):
        token = token.strip()
        try:
            lo, hi = (int(t) for t in token.split("-", 1)) if "-" in token[1:] else (int(token),) * 2
            if hi < lo:
                raise ValueError
        except ValueError:
            raise ValueError(f"--epochs {spec[:60]!r}: give all-saved or a list such as 1,5,10 or 1-10") from None
        inside = [e for e in saved if lo <= e <= hi]
        wanted.update(inside)
        # The first few epochs of the range without weights (at most len(inside) + 5 steps).
        epoch = lo
        while epoch <= hi and len(missing) < 6:
            if epoch not in saved_set:
                missing.append(epoch)
            epoch += 1
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"--epochs: no saved weights for epoch {shown} (saved: {_ranges(saved)})")
    return sorted(wanted)


def _ranges(epochs: list[int]) -> str:
    if not epochs:
        return "none"
    parts, start = [], epochs[0]
    for previous, current in zip(epochs, epochs[1:] + [None], strict=True):
        if current != previous + 1:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = current
    return ",".join(parts)


# ---------------------------------------------------------------------------------------------
# Evaluating a run


def format_line(epoch: int, total: int, metrics: dict, seconds: float) -> str:
    diversity = [v for v in metrics["diversity"] if v is not None]
    return (
        f"[{epoch:3d}/{total}] acc: {metrics['accuracy']:.3f} | fd: {metrics['frechet']:.2f} | "
        f"diversity: {np.mean(diversity):.2f} | {seconds:.1f}s"
    )


def measured(metrics: dict | None, averaged: bool = False) -> bool:
    """Whether a history record's metrics hold a measurement (of the averaged generator)."""
    if averaged and isinstance(metrics, dict):
        metrics = metrics.get(AVERAGED_KEY)
    return isinstance(metrics, dict) and isinstance(metrics.get("accuracy"), (int, float))


def writable(folder: Path) -> str | None:
    """None if a file can be created in `folder`, else why not (one line)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def evaluate_run(run, epochs: list[int], per_digit: int = DEFAULT_PER_DIGIT, seed: int = EVAL_SEED,
                 device: str | torch.device = "cpu", log=print, store: bool = True,
                 averaged: bool = False) -> dict[int, dict]:
    """Evaluate the run's saved epochs and (if `store`) merge each result into its history record;
    `averaged` measures the weight-averaged generator and stores it under metrics[AVERAGED_KEY]."""
    total = run.config().get("epochs", max(epochs, default=0))
    results = {}
    for epoch in epochs:
        started = time.perf_counter()
        generator = run.load_generator(epoch, device=device, averaged=averaged)
        metrics = evaluate_generator(generator, device=device, per_digit=per_digit, seed=seed)
        if store:
            run.update_metrics(epoch, {AVERAGED_KEY: metrics} if averaged else metrics)
        results[epoch] = metrics
        log(format_line(epoch, total, metrics, time.perf_counter() - started))
    return results


def averaged_epochs(run) -> list[int]:
    """Saved epochs that also have weight-averaged generator weights."""
    return [e for e in run.weight_epochs() if run.has_averaged(e)]


# ---------------------------------------------------------------------------------------------
# Command line


def _seed(text: str) -> int:
    """A seed argument: a whole number 0..MAX_SEED (argparse turns the ValueError into one line)."""
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise ValueError(text)
    return value


_seed.__name__ = f"seed (0-{MAX_SEED})"  # argparse names the type in its message


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
    train.add_argument("--seed", type=_seed, default=0, help="seed for weights, order and augmentation (0)")
    train.add_argument("--out", type=Path, default=CLASSIFIER_PATH, help="where to write the weights")

    commands.add_parser("reference", help="store the real-MNIST reference beside the classifier")

    test = commands.add_parser("test-accuracy", help="the classifier's accuracy on the 10,000 test images")
    test.add_argument("--classifier", type=Path, default=CLASSIFIER_PATH, help="weights to test")

    floor = commands.add_parser("floor", help="the measures for real training images vs the test set")
    floor.add_argument("--per-digit", type=int, default=DEFAULT_PER_DIGIT, help="images per digit (1000)")
    floor.add_argument("--seed", type=_seed, default=FLOOR_SEED, help="which training images (0)")

    evaluate = commands.add_parser("evaluate", help="measure a run's saved epochs and store the figures")
    evaluate.add_argument("run", type=Path, help="run directory, e.g. checkpoints/cgan-report")
    evaluate.add_argument("--epochs", default="all-saved", help="all-saved (default) or e.g. 1,5,10 or 1-10")
    evaluate.add_argument("--missing", action="store_true", help="skip epochs that already have metrics")
    evaluate.add_argument("--averaged", action="store_true",
                          help=f"measure the weight-averaged generator (stored as metrics.{AVERAGED_KEY})")
    evaluate.add_argument("--per-digit", type=int, default=DEFAULT_PER_DIGIT, help="samples per digit (1000)")
    evaluate.add_argument("--seed", type=_seed, default=EVAL_SEED, help=f"evaluation noise seed ({EVAL_SEED})")
    evaluate.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    return parser


def _store_reference(log) -> None:
    started = time.perf_counter()
    path = save_reference(compute_reference())
    log(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, {time.perf_counter() - started:.1f}s)")


def main(argv: list[str] | None = None) -> int:
    from cgan.data import MnistError
    from cgan.files import save_tensors_atomic
    from cgan.messages import one_line
    from cgan.runs import Run, RunError

    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("epochs", "per_digit"):
        value = getattr(args, name, None)
        if isinstance(value, int) and not 1 <= value <= 100_000:
            parser.error(f"--{name.replace('_', '-')} {value}: must be 1-100000")
    if getattr(args, "per_digit", 2) < 2:
        parser.error("--per-digit: must be at least 2")
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        if args.command == "train-classifier":
            if not args.out.parent.is_dir():
                parser.error(one_line(f"--out {args.out}: {args.out.parent} is not a folder"))
            model, accuracy = train_classifier(epochs=args.epochs, seed=args.seed, log=log)
            save_tensors_atomic(args.out, {k: v.detach().cpu() for k, v in model.state_dict().items()})
            print(f"test accuracy: {accuracy:.2%} | wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
            if args.out.resolve() == CLASSIFIER_PATH.resolve():
                _store_reference(log)  # the old reference belongs to the old weights
        elif args.command == "reference":
            load_classifier()
            _store_reference(log)
        elif args.command == "test-accuracy":
            if not args.classifier.is_file():
                parser.error(one_line(f"--classifier {args.classifier}: no such file"))
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
            return evaluate_command(parser, args, Run, log)
    except (MetricsError, RunError, MnistError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(one_line(f"error: {exc.filename or ''}: {exc.strerror or exc}"), file=sys.stderr)
        return 1
    return 0


def evaluate_command(parser, args, Run, log) -> int:
    from cgan.messages import one_line

    run = Run(args.run)
    if not run.exists():
        parser.error(one_line(f"{args.run}: not a run (no config.json)"))
    device = parser.device(args.device)
    if run.is_training():
        print(f"error: run {one_line(run.name)} is training now; evaluate it when it stops, or train "
              "with --metrics-every K", file=sys.stderr)
        return 1
    saved = averaged_epochs(run) if args.averaged else run.weight_epochs()
    if args.averaged and not saved:
        parser.error(f"--averaged: run {one_line(run.name)} has no weight-averaged generator (train it with "
                     "weight averaging on)")
    try:
        epochs = parse_epochs(args.epochs, saved)
    except ValueError as exc:
        parser.error(str(exc))
    if args.missing:
        done = {r.epoch for r in run.history() if measured(r.metrics, args.averaged)}
        epochs = [e for e in epochs if e not in done]
    if not epochs:
        print(f"{run.path}: nothing to evaluate (saved epochs: {_ranges(saved)})")
        return 0
    why = writable(run.path)
    if why is not None:
        print(f"note: {run.path} cannot be written ({why}): measuring without storing the figures",
              flush=True)
    evaluate_run(run, epochs, args.per_digit, args.seed, device, log=log, store=why is None,
                 averaged=args.averaged)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
