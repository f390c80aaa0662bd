"""Noise, sampling and image tiling shared by the trainer, the CLI, the metrics and the app.

A noise *seed* names noise vectors: ``noise(seed, n)`` always gives the same n vectors (drawn on
the CPU, so every device agrees), and vector j is the same whatever n is. Feeding one vector with
different labels writes different digits in the same "handwriting".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from cgan.data import to_uint8
from cgan.files import write_bytes_atomic
from cgan.images import MAX_PNG_PIXELS, grid_columns, mosaic_shape, png_bytes, tile, upscale
from cgan.limits import MAX_SEED
from cgan.messages import one_line
from cgan.models import NOISE_DIM
from cgan.runs import Run, RunError


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
    generator = Run(run_path).load_generator(epoch)
    z = noise(seed, n).repeat(len(digits), 1)
    labels = torch.tensor(digits).repeat_interleave(n)
    return generate(generator, labels, z), labels.numpy()


# ---------------------------------------------------------------------------------------------
# The command line. Exit 2: the request is wrong (options, a run or epoch that is not there, a
# place that cannot take the output); exit 1: something failed (a damaged run, a full disk).

MOST_PER_DIGIT = 100_000
MOST_SCALE = 32


class UsageError(ValueError):
    """The request cannot be met as given: one line, exit 2."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def mosaic_columns(n: int, digit_count: int) -> int:
    """One row per digit while the mosaic is at most 10 times wider than tall; a near-square
    grid of all samples (in digit order) beyond that, so large requests stay viewable."""
    return n if n <= 10 * digit_count else grid_columns(n * digit_count)


def enclosing_run(path: Path) -> Path | None:
    """The run directory `path` lies in (or is), if any: runs hold only what training writes."""
    for folder in (path, *path.parents):
        if folder.is_dir() and Run(folder).launched():
            return folder
    return None


def check_run(run_path: Path, epoch: int | None) -> None:
    """Raise UsageError when --run is not a run or --epoch has no weights there."""
    run = Run(run_path)
    if not run.path.is_dir():
        raise UsageError(f"--run {run.path}: not a run (no such folder)")
    if not run.exists():
        raise UsageError(f"--run {run.path}: not a run (no config.json)")
    if epoch is not None:
        if epoch < 1:
            raise UsageError(f"--epoch {epoch}: epochs count from 1")
        if not run.weights_path(epoch).exists():
            raise UsageError(f"--epoch {epoch}: run {run.name} has no generator weights for it"
                             f"{saved_epochs_hint(run)}")


def saved_epochs_hint(run) -> str:
    try:
        saved = run.weight_epochs()
    except (RunError, OSError, ValueError):
        return ""  # a damaged history: the missing weights are the message
    if not saved:
        return " (it has none saved yet)"
    return f" (saved: {', '.join(map(str, saved[:12]))}{', ...' if len(saved) > 12 else ''})"


def check_out(out: Path, force: bool) -> None:
    """Raise UsageError when `out` cannot or must not take the output, before any slow work."""
    if out.suffix not in (".png", ".npz"):
        raise UsageError(f"--out {out}: must end in .png or .npz")
    absolute = Path(os.path.abspath(out))
    longest = max(absolute.parts, key=lambda part: len(os.fsencode(part)))
    if len(os.fsencode(longest)) > 255 or len(os.fsencode(absolute)) > 4000:
        raise UsageError(f"--out: a name in the path is {len(os.fsencode(longest))} bytes long "
                         "(at most 255), or the path is over 4000 bytes")
    # Where the file would really land, through any link in the path or a link at --out itself.
    real = Path(os.path.realpath(absolute))
    run = enclosing_run(absolute.parent) or enclosing_run(real.parent)
    if run is not None:
        raise UsageError(f"--out {out}: inside run {run.name}; runs hold only what training "
                         "writes, write elsewhere")
    if absolute.is_dir():
        raise UsageError(f"--out {out}: is a folder; name a file")
    if absolute.exists() and not force:
        raise UsageError(f"--out {out}: exists; add --force to replace it")
    for folder in absolute.parents:
        if folder.exists():
            if not folder.is_dir():
                raise UsageError(f"--out {out}: {folder} is a file, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK) or not can_create_in(folder):
                raise UsageError(f"--out {out}: {folder} cannot be written")
            break


def can_create_in(folder: Path) -> bool:
    """Whether a file can be made in `folder` (os.access alone misses read-only mounts)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def png_request(n: int, digit_count: int, scale: int) -> int:
    """The mosaic's columns for a PNG; UsageError when it would exceed MAX_PNG_PIXELS."""
    columns = mosaic_columns(n, digit_count)
    height, width = mosaic_shape(n * digit_count, columns, pad=2, scale=scale)
    if height * width > MAX_PNG_PIXELS:
        raise UsageError(
            f"--out .png: {n * digit_count} samples at --scale {scale} make a {width}x{height} "
            f"image, above the {MAX_PNG_PIXELS:,} pixels a PNG may hold here; lower --n or "
            "--scale, or write .npz"
        )
    return columns


def write_output(out: Path, images: np.ndarray, labels: np.ndarray, columns: int, scale: int) -> None:
    import io

    if out.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=images, labels=labels)
        data = buffer.getvalue()
    else:
        data = png_bytes(upscale(tile(images, columns=columns, pad=2), scale))
    write_bytes_atomic(out, data)  # a reader never sees half a file; a failed write leaves none


def parse_request(parser, argv: list[str] | None):
    args = parser.parse_args(argv)
    for name in ("run", "out"):
        if "\x00" in str(getattr(args, name)):
            parser.error(f"--{name}: the path holds a NUL character")
    try:
        digits = parse_digits(args.digit)
    except ValueError as exc:
        parser.error(str(exc))
    if not 1 <= args.n <= MOST_PER_DIGIT:
        parser.error(f"--n must be 1-{MOST_PER_DIGIT}")
    if not 1 <= args.scale <= MOST_SCALE:
        parser.error(f"--scale must be 1-{MOST_SCALE}")
    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be 0-{MAX_SEED}")
    try:
        columns = png_request(args.n, len(digits), args.scale) if args.out.suffix == ".png" else 0
        check_out(args.out, args.force)
        check_run(args.run, args.epoch)
    except UsageError as exc:
        parser.error(str(exc))
    return args, digits, columns


def main(argv: list[str] | None = None) -> int:
    from cgan.cli import OneLineParser

    parser = OneLineParser(prog="python -m cgan.sample", description="Sample digits from a run.")
    parser.add_argument("--run", required=True, type=Path, help="run directory")
    parser.add_argument("--epoch", type=int, default=None, help="epoch (default: last saved)")
    parser.add_argument("--digit", default="all", help="0-9, comma list, or all")
    parser.add_argument("--n", type=int, default=10, help=f"samples per digit (1-{MOST_PER_DIGIT})")
    parser.add_argument("--seed", type=int, default=0, help=f"noise seed (0-{MAX_SEED})")
    parser.add_argument("--out", required=True, type=Path,
                        help=".png mosaic (one row per digit; near-square when large) or .npz arrays")
    parser.add_argument("--scale", type=int, default=4, help="PNG upscaling (nearest neighbour)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args, digits, columns = parse_request(parser, argv)
    try:
        images, labels = sample(args.run, args.epoch, digits, args.n, args.seed)
        write_output(args.out, images, labels, columns, args.scale)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"error: out of memory for {args.n * len(digits)} samples; lower --n", file=sys.stderr)
        return 1
    except OSError as exc:
        print(one_line(f"error: --out {args.out}: {exc.strerror or exc}"), file=sys.stderr)
        return 1
    except Exception as exc:  # the last guard: a failure is one line, never a traceback
        reason = str(exc).splitlines()[0] if str(exc) else ""
        print(one_line(f"error: sampling failed: {type(exc).__name__}: {reason[:200]}"), file=sys.stderr)
        return 1
    print(f"wrote {len(images)} samples to {args.out}")
    return 0
