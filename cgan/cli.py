"""Command-line helpers shared by the `python -m cgan.*` entry points."""

from __future__ import annotations

import argparse
import sys

import torch


def resolve_device(requested: str) -> torch.device:
    """'auto' (CUDA when present, else the CPU), 'cpu' or 'cuda[:N]' as a torch device."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here; use --device cpu")
    return torch.device(requested)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)

    def device(self, requested: str) -> torch.device:
        """`requested` as a device, or exit 2 with one line saying why it cannot be used."""
        try:
            return resolve_device(requested)
        except (ValueError, RuntimeError) as exc:
            self.error(str(exc).splitlines()[0])
