"""From Start to the first epoch: how long a job started from the app takes to show its first
epoch, and where that time goes.

    .venv/bin/python -m bench.first_epoch [--repeats 3]

1. Through the app's own path (cgan.jobs.start, as the Train page's Start button calls it, with
   the form's defaults: the CGAN on 10,000 images, 10 epochs, quality planned as the page plans
   it): seconds from the call to the first epoch's record in the run's history, median of
   --repeats fresh runs in a temporary folder.
2. The same steps inside one fresh Python process, each timed: import torch, import the trainer,
   load MNIST, build the trainer (models, optimizers, buffers), train the first epoch.

Prints the machine's load average beside the figures: compare only figures of one quiet run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PHASES = """
import json, time
marks = [("start", time.perf_counter())]
import torch
marks.append(("import torch", time.perf_counter()))
from cgan.data import load_mnist, to_unit_range
from cgan.config import TrainConfig
from cgan.training.trainer import Trainer
marks.append(("import the trainer", time.perf_counter()))
mnist = load_mnist()
images, labels = mnist.train_images[:10_000], mnist.train_labels[:10_000]
marks.append(("load MNIST", time.perf_counter()))
trainer = Trainer(TrainConfig.for_model("cgan", limit=10_000, epochs=10), to_unit_range(images),
                  torch.as_tensor(labels), torch.device("cpu"))
marks.append(("build the trainer", time.perf_counter()))
trainer.train_epoch()
marks.append(("first epoch", time.perf_counter()))
print(json.dumps([(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])]))
"""


def through_the_app(root: Path, name: str) -> float:
    """Seconds from jobs.start to the first epoch in the run's history."""
    from cgan import jobs
    from cgan.runs import Run

    request = jobs.JobRequest(name=name, limit=10_000).with_quality_plan()  # the Train page's defaults
    started = time.perf_counter()
    jobs.start(request, root=root, max_running=1)
    run = Run(root / name)
    while not run.history():
        if time.perf_counter() - started > 120:
            raise TimeoutError(f"no epoch after 120 s: {run.status()}")
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    jobs.stop(name, root=root)  # the rest of the run is not measured
    while run.state() == "running":  # the next measurement starts on an idle machine
        time.sleep(0.1)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as folder:
        seconds = [through_the_app(Path(folder), f"first-{i}") for i in range(args.repeats)]
    print(f"Start to first epoch through cgan.jobs.start: {statistics.median(seconds):.2f} s median "
          f"({', '.join(f'{s:.2f}' for s in seconds)})")
    phases = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", PHASES], cwd=ROOT, capture_output=True, text=True,
                             check=True)
        phases.append(dict(json.loads(out.stdout.splitlines()[-1])))
    for name in phases[0]:
        print(f"  {name:<20} {statistics.median(p[name] for p in phases):.2f} s")
    print(f"  {'total':<20} {statistics.median(sum(p.values()) for p in phases):.2f} s "
          f"(in one process, median of {args.repeats})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
