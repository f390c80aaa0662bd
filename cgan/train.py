"""Train a conditional GAN on MNIST the way the report does, fast, into a crash-safe run directory.

    python -m cgan.train --model cgan --epochs 200 --seed 0 --out checkpoints/NAME
    python -m cgan.train --out checkpoints/NAME --resume --epochs 250

`python -m cgan.train --help` lists the options (cgan.config). The trainer itself is the
cgan.training package; from Python: ``cgan.training.loop.train(config, run, device)``.
"""

from cgan.training.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
