"""Noise, sampling and image tiling shared by the trainer, the CLI, the metrics and the app.

A noise *seed* names noise vectors: ``noise(seed, n)`` always gives the same n vectors (drawn on
the CPU, so every device agrees), and vector j is the same whatever n is. Feeding one vector with
different labels writes different digits in the same "handwriting".
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from cgan.data import to_uint8
from cgan.images import save_png, tile  # noqa: F401  (tile: also imported from here by older callers)
from cgan.models import NOISE_DIM


def noise(seed: int, n: int) -> torch.Tensor:
    """n noise vectors named by `seed`; the first k of noise(seed, n) equal noise(seed, k)."""
    generator = torch.Generator().manual_seed(int(seed))
    # torch fills normals 16 at a time and redraws a ragged tail, so a draw whose size is not a
    # multiple of 16 changes its last values with n; whole groups of 4 vectors (400 numbers) don't.
    drawn = -(-int(n) // 4) * 4
    return torch.randn(drawn, NOISE_DIM, generator=generator)[:n]


def fixed_grid_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise (100, 100) and labels (100,) for a run's 10x10 grid: row = digit, column = noise j."""
    columns = noise(seed, 10)
    return columns.repeat(10, 1), torch.arange(10).repeat_interleave(10)


@torch.no_grad()
def generate(generator: torch.nn.Module, labels, z: torch.Tensor, batch: int = 2000) -> np.ndarray:
    """uint8 images (N, 28, 28) for `labels` (N,) and noise `z` (N, 100), in batches."""
    device = next(generator.parameters()).device
    labels = torch.as_tensor(labels, dtype=torch.long)
    out = []
    for start in range(0, len(labels), batch):
        images = generator(
            z[start : start + batch].to(device), labels[start : start + batch].to(device)
        )
        out.append(to_uint8(images))
    return np.concatenate(out) if out else np.zeros((0, 28, 28), np.uint8)


def parse_digits(text: str) -> list[int]:
    if text == "all":
        return list(range(10))
    try:
        digits = [int(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"--digit {text!r}: give 0-9, a comma list such as 3,5, or all") from None
    if any(d < 0 or d > 9 for d in digits):
        raise ValueError(f"--digit {text!r}: digits are 0-9")
    return digits


def sample(run_path: Path, epoch: int | None, digits: list[int], n: int, seed: int):
    """n samples of each digit in `digits` from one noise seed: (images, labels)."""
    from cgan.runs import Run

    generator = Run(run_path).load_generator(epoch)
    z = noise(seed, n).repeat(len(digits), 1)
    labels = torch.tensor(digits).repeat_interleave(n)
    return generate(generator, labels, z), labels.numpy()


def main(argv: list[str] | None = None) -> int:
    from cgan.cli import OneLineParser
    from cgan.runs import RunError

    parser = OneLineParser(prog="python -m cgan.sample", description="Sample digits from a run.")
    parser.add_argument("--run", required=True, type=Path, help="run directory")
    parser.add_argument("--epoch", type=int, default=None, help="epoch (default: last saved)")
    parser.add_argument("--digit", default="all", help="0-9, comma list, or all")
    parser.add_argument("--n", type=int, default=10, help="samples per digit")
    parser.add_argument("--seed", type=int, default=0, help="noise seed")
    parser.add_argument("--out", required=True, type=Path, help=".png grid or .npz arrays")
    parser.add_argument("--scale", type=int, default=4, help="PNG upscaling (nearest neighbour)")
    args = parser.parse_args(argv)
    try:
        digits = parse_digits(args.digit)
    except ValueError as exc:
        parser.error(str(exc))
    if not 1 <= args.n <= 100_000:
        parser.error("--n must be 1-100000")
    if not 1 <= args.scale <= 32:
        parser.error("--scale must be 1-32")
    if args.out.suffix not in (".png", ".npz"):
        parser.error("--out must end in .png or .npz")
    try:
        images, labels = sample(args.run, args.epoch, digits, args.n, args.seed)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out.suffix == ".npz":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.out, images=images, labels=labels)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_png(tile(images, columns=args.n, pad=2), args.out, scale=args.scale)
    print(f"wrote {len(images)} samples to {args.out}")
    return 0
