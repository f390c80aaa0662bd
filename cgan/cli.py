"""Command-line helpers shared by the `python -m cgan.*` entry points."""

from __future__ import annotations

import argparse
import re
import sys

import torch

DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d{1,3}))?$")


def resolve_device(requested: str) -> torch.device:
    """'auto' (CUDA when present, else the CPU), 'cpu' or 'cuda[:N]' as a torch device; anything
    else (meta, cpu:7, a CUDA index that is not here) is a ValueError with one line."""
    match = DEVICE.match(requested.strip().lower())
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"--device {requested}: use auto, cpu, cuda or cuda:N")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {requested}: no CUDA device is available here; use --device cpu")
    if index is not None and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    return torch.device(f"cuda:{int(index)}" if index is not None else "cuda")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        from cgan.messages import one_line

        print(f"{self.prog}: error: {one_line(message)}", file=sys.stderr)
        raise SystemExit(2)

    def device(self, requested: str) -> torch.device:
        """`requested` as a device, or exit 2 with one line saying why it cannot be used."""
        try:
            return resolve_device(requested)
        except (ValueError, RuntimeError) as exc:
            self.error(str(exc).splitlines()[0])
