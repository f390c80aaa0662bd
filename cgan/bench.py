"""Seconds per epoch: our trainer against a typical PyTorch port, in the same process.

    python -m cgan.bench [--model cgan] [--epochs 6] [--reference-epochs 1] [--device auto]
                         [--no-contended]

Both train the same model at the report's settings on all 60,000 images. The reference is the
port most tutorials write: torchvision's MNIST dataset with ToTensor + Normalize transforms, a
shuffling DataLoader, fresh noise and one-hot labels per batch on the host, and the losses read
back with ``.item()`` every iteration. Ours is cgan.training.trainer.Trainer (data on the device, pre-drawn
epoch plan, the hand-written CPU iteration, measured thread count, CUDA graph on GPUs). Prints
the machine, both figures and their ratio, each the median of the epochs after the first (which
pays for warm-up). On a CPU it then times ours again beside a busy process it starts itself (one
core spinning, like an app server or a browser): the case a lecture laptop is in.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from cgan.cli import OneLineParser
from cgan.data import MnistError, load_mnist, to_unit_range, write_idx_dir
from cgan.models import NOISE_DIM, get_model
from cgan.config import TrainConfig, option_named
from cgan.training.trainer import Trainer, configure_torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device: torch.device) -> str:
    parts = [
        f"cpu: {cpu_name()}",
        f"cores: {os.cpu_count()}",
        f"torch threads: {torch.get_num_threads()}",
        f"torch {torch.__version__}",
        f"device: {device}",
    ]
    if device.type == "cuda":
        parts.append(f"gpu: {torch.cuda.get_device_name(device)}")
    return " | ".join(parts)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ours(config: TrainConfig, mnist, device: torch.device, epochs: int) -> tuple[list[float], Trainer]:
    trainer = Trainer(config, to_unit_range(mnist.train_images), torch.as_tensor(mnist.train_labels), device)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch()  # reads the losses back: includes the final sync
        times.append(time.perf_counter() - start)
    return times, trainer


def busy_process() -> subprocess.Popen:
    """A process that keeps one core busy until it is killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def median_after_warmup(times: list[float]) -> float:
    return statistics.median(times[1:] or times)


def report(label: str, times: list[float], trainer: Trainer | None = None) -> float:
    median = median_after_warmup(times)
    line = f"{label} {median:7.3f} s/epoch median  (epochs: {', '.join(f'{t:.3f}' for t in times)})"
    if trainer is not None and trainer.tuner is not None:
        line += f"  threads {trainer.tuner.threads}"
    print(line, flush=True)
    return median


def time_reference(config: TrainConfig, mnist, device: torch.device, epochs: int) -> list[float]:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    family = get_model(config.model)
    torch.manual_seed(config.seed)
    generator = family.generator(config.width).to(device)
    discriminator = family.discriminator(config.width).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    bce = torch.nn.BCEWithLogitsLoss()
    times = []
    with tempfile.TemporaryDirectory() as root:
        write_idx_dir(mnist, os.path.join(root, "MNIST", "raw"))
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
        loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True)
        for _ in range(epochs):
            start = time.perf_counter()
            d_losses, g_losses = [], []
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                b = x.size(0)
                ones = torch.ones(b, device=device)
                zeros = torch.zeros(b, device=device)
                opt_d.zero_grad()
                fake = generator(torch.randn(b, NOISE_DIM, device=device), y)
                d_loss = bce(discriminator(x, y), ones) + bce(discriminator(fake.detach(), y), zeros)
                d_loss.backward()
                opt_d.step()
                d_losses.append(d_loss.item())
                opt_g.zero_grad()
                y_g = torch.randint(0, 10, (b,), device=device)
                g_loss = bce(discriminator(generator(torch.randn(b, NOISE_DIM, device=device), y_g), y_g), ones)
                g_loss.backward()
                opt_g.step()
                g_losses.append(g_loss.item())
            sync(device)
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    configure_torch()
    parser = OneLineParser(prog="python -m cgan.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cgan", choices=["cgan", "cdcgan"])
    parser.add_argument("--width", type=float, default=1.0, help="cdcgan width")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of our trainer (first is warm-up)")
    parser.add_argument("--reference-epochs", type=int, default=1, help="epochs of the reference port")
    parser.add_argument("--limit", type=int, help="train on the first N images only (smoke runs)")
    parser.add_argument("--no-contended", action="store_true", help="skip the run beside a busy process")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.reference_epochs < 0:
        parser.error("--epochs must be >= 1 and --reference-epochs >= 0")
    device = parser.device(args.device)
    config = TrainConfig.for_model(args.model, width=args.width, limit=args.limit)
    for field, message in config.problems().items():
        parser.error(f"{option_named(field).flag} {getattr(config, field)}: {message}")
    try:
        mnist = load_mnist()
    except MnistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2  # as the trainer: no MNIST here
    if args.limit:
        mnist = dataclasses.replace(
            mnist, train_images=mnist.train_images[: args.limit], train_labels=mnist.train_labels[: args.limit]
        )
    print(machine_line(device))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    n = len(mnist.train_images)
    print(f"model {config.model} | batch {config.batch_size} | {n} images | {n // config.batch_size} iterations/epoch")

    times, trainer = time_ours(config, mnist, device, args.epochs)
    ours_s = report("ours:     ", times, trainer)
    if args.reference_epochs:
        reference = time_reference(config, mnist, device, args.reference_epochs)
        ref_s = statistics.median(reference)
        print(f"reference: {ref_s:7.3f} s/epoch median  (epochs: {', '.join(f'{t:.3f}' for t in reference)})")
        print(f"speed-up:  {ref_s / ours_s:7.2f}x")
    if device.type == "cpu" and not args.no_contended:
        busy = busy_process()
        try:
            times, trainer = time_ours(config, mnist, device, args.epochs)
        finally:
            busy.kill()
            busy.wait()
        report("contended:", times, trainer)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
