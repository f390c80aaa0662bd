"""Train the runs the app ships with, at the report's settings, and slim them for shipping.

    python -m cgan.pretrained [--only cgan-report|cdcgan-report] [--device auto] [--root checkpoints]

* ``cgan-report``: the report's CGAN, 200 epochs, batch 150, lr 1e-3, seed 0, quality measured
  every epoch; it also keeps an average of the generator's weights (``--ema 0.9999``, which does
  not change the training itself), measured at epochs 1-10 and every 5th;
* ``cdcgan-report``: the full-width cDCGAN, 20 epochs, batch 100, lr 2e-4, seed 0 (a GPU's job:
  about 200 GFLOP per iteration; the shipped one took 42 s with ``--device cuda`` on an H200).

Every epoch keeps its grid and history record; generator, averaged generator and discriminator
weights are kept for the epochs in SHIPPED_KEEP and stored as float16 (loaded back as float32);
the resume state is dropped. A run
trained here is reproducible with the same command on the same device.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from cgan.cli import OneLineParser
from cgan.metrics import evaluate_run
from cgan.data import MnistError
from cgan.keep import parse_keep
from cgan.messages import one_line
from cgan.runs import Run, RunError, checkpoints_root
from cgan.config import TrainConfig
from cgan.training.cli import check_out
from cgan.training.loop import train

SHIPPED = {
    "cgan-report": TrainConfig.for_model("cgan", seed=0, metrics_every=1, ema=0.9999),
    "cdcgan-report": TrainConfig.for_model("cdcgan", seed=0, metrics_every=1),
}
SHIPPED_KEEP = {
    "cgan-report": "1-10,15,25,75,every10",
    "cdcgan-report": "1,5,20",
}


def averaged_epochs(epochs: list[int]) -> list[int]:
    """Where the averaged generator is measured: epochs 1-10, every 5th, and the last."""
    return [e for e in epochs if e <= 10 or e % 5 == 0 or e == epochs[-1]]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m cgan.pretrained", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SHIPPED), action="append")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--root", type=Path, default=None, help="where to write (default checkpoints/)")
    parser.add_argument("--no-metrics", action="store_true", help="skip the per-epoch quality figures")
    args = parser.parse_args(argv)
    device = parser.device(args.device)
    root = args.root or checkpoints_root()
    for name in args.only or sorted(SHIPPED):
        config = SHIPPED[name]
        if args.no_metrics:
            config = dataclasses.replace(config, metrics_every=0)
        run = Run(root / name)
        check_out(run.path, parser)  # a root that is a file or cannot be written: one line, exit 2
        if run.path.exists():
            parser.error(f"{run.path} exists; move it away first")
        started = time.time()
        try:
            train(config, run, device, log=lambda line: print(line, flush=True))
            if config.ema and config.metrics_every:
                evaluate_run(run, averaged_epochs(run.epochs()), device=device, averaged=True)
            run.prune(parse_keep(SHIPPED_KEEP[name]), drop_resume_state=True, half=True)
        except MnistError as exc:
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return 2
        except RunError as exc:
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return 1
        print(f"= {name}: {time.time() - started:.1f} s, {run.size_bytes() / 1e6:.1f} MB after slimming", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
