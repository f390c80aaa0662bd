"""Seconds per epoch: our trainer against a typical PyTorch port, in the same process.

    python -m cgan.bench [--model cgan] [--epochs 2] [--reference-epochs 1] [--device auto]

Both train the same model at the report's settings on all 60,000 images. The reference is the
port most tutorials write: torchvision's MNIST dataset with ToTensor + Normalize transforms, a
shuffling DataLoader, fresh noise and one-hot labels per batch on the host, and the losses read
back with ``.item()`` every iteration. Ours is cgan.train.Trainer (data on the device, pre-drawn
epoch plan, fused Adam, CUDA graph on GPUs). Prints the machine, both figures and their ratio.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import torch

from cgan.cli import OneLineParser
from cgan.data import load_mnist, to_unit_range, write_idx_dir
from cgan.models import NOISE_DIM, get_model
from cgan.train import TrainConfig, Trainer


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


def time_ours(config: TrainConfig, mnist, device: torch.device, epochs: int) -> list[float]:
    trainer = Trainer(config, to_unit_range(mnist.train_images), torch.as_tensor(mnist.train_labels), device)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch()  # reads the losses back: includes the final sync
        times.append(time.perf_counter() - start)
    return times


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
    parser = OneLineParser(prog="python -m cgan.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cgan", choices=["cgan", "cdcgan"])
    parser.add_argument("--width", type=float, default=1.0, help="cdcgan width")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of our trainer (first is warm-up)")
    parser.add_argument("--reference-epochs", type=int, default=1, help="epochs of the reference port")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.reference_epochs < 0:
        parser.error("--epochs must be >= 1 and --reference-epochs >= 0")
    device = parser.device(args.device)
    config = TrainConfig.for_model(args.model, width=args.width)
    mnist = load_mnist()
    print(machine_line(device))
    print(f"model {config.model} | batch {config.batch_size} | 60000 images | {60000 // config.batch_size} iterations/epoch")

    ours = time_ours(config, mnist, device, args.epochs)
    steady = ours[1:] or ours  # the first epoch pays for warm-up (and CUDA graph capture)
    ours_s = min(steady)
    print(f"ours:      {ours_s:7.3f} s/epoch  (epochs: {', '.join(f'{t:.3f}' for t in ours)})")
    if args.reference_epochs:
        reference = time_reference(config, mnist, device, args.reference_epochs)
        ref_s = min(reference)
        print(f"reference: {ref_s:7.3f} s/epoch  (epochs: {', '.join(f'{t:.3f}' for t in reference)})")
        print(f"speed-up:  {ref_s / ours_s:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
