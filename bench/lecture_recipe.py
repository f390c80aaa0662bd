"""The lecture's run, measured as the class would watch it: seconds from Start to the first
epoch, to the first quality measurement that reads at least 70 % of the asked digits right, and
the accuracy the run had measured 60 s after Start.

    .venv/bin/python -m bench.lecture_recipe [--recipe lecture] [--seeds 0 1 2] [--busy]

Each run (watched for at most 75 s, then stopped) goes through the Train page's own path:
cgan.jobs.start with the recipe's settings and
the quality plan the page adds (JobRequest.with_quality_plan), into a temporary folder; the
history is read ten times a second, and a measurement counts from the moment it is on disk (what
the app can show). --busy keeps one other process spinning on a core for the whole time, as a
lecturer's laptop doing something else. --recipe takes any name of cgan.presets, and
--set KEY=VALUE changes one setting (e.g. --set lr=0.002) to compare candidates.

Prints one table row per run and the medians, with the machine's load beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cgan import jobs
from cgan.presets import preset
from cgan.runs import Run

TARGET = 0.70
WINDOW = 60.0


@contextlib.contextmanager
def busy_process(on: bool):
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if process is not None:
            process.kill()
            process.wait()


def request_for(recipe: str, seed: int, name: str, changes: dict) -> jobs.JobRequest:
    config = preset(recipe).config(**changes)
    return jobs.JobRequest(
        name=name, model=config.model, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
        seed=seed, width=config.width, limit=config.limit, beta1=config.beta1, g_steps=config.g_steps,
    ).with_quality_plan()


def watch(request: jobs.JobRequest, root: Path, limit: float = 75.0) -> dict:
    """Start the run and read its history until it ends or `limit` seconds pass (then stop it)."""
    started = time.perf_counter()
    jobs.start(request, root=root, max_running=1)
    run = Run(root / request.name)
    first = reached = None
    seen: dict[int, tuple[float, float]] = {}  # epoch -> (seconds after Start it appeared, accuracy)
    while time.perf_counter() - started < limit:
        now = time.perf_counter() - started
        try:
            records = run.history()
        except Exception:  # noqa: BLE001 (being written: read again)
            records = []
        if records and first is None:
            first = now
        for record in records:
            accuracy = (record.metrics or {}).get("accuracy")
            if accuracy is not None and record.epoch not in seen:
                seen[record.epoch] = (now, float(accuracy))
                if reached is None and accuracy >= TARGET:
                    reached = now
        if run.state() != "running" and records:
            break
        time.sleep(0.1)
    if run.state() == "running":  # past the window: the next run needs the slot
        jobs.stop(request.name, root=root)
        while run.state() == "running":
            time.sleep(0.2)
    at_window = [acc for when, acc in seen.values() if when <= WINDOW]
    return {"first": first, "reached": reached, "at_60": at_window[-1] if at_window else None,
            "measured": {e: round(a, 3) for e, (_, a) in sorted(seen.items())},
            "total": time.perf_counter() - started, "epochs": len(run.history())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="lecture")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--busy", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    changes = {}
    for item in args.set:
        key, value = item.split("=", 1)
        changes[key] = float(value) if "." in value or "e" in value else int(value)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average before: {load}; recipe {args.recipe} {changes or ''}"
          f"{'; beside a busy process' if args.busy else '; quiet'}")
    print("| recipe | seed | first epoch | 70 % reached | accuracy at 60 s | epochs, total |")
    print("|---|---|---|---|---|---|")
    rows = []
    with busy_process(args.busy), tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            request = request_for(args.recipe, seed, f"lecture-{seed}", changes)
            row = watch(request, Path(folder))
            rows.append(row)
            reached = f"{row['reached']:.1f} s" if row["reached"] is not None else "not within 75 s"
            first = f"{row['first']:.1f} s" if row["first"] is not None else "none"
            at_60 = f"{row['at_60']:.1%}" if row["at_60"] is not None else "none measured"
            print(f"| {args.recipe} | {seed} | {first} | {reached} | {at_60} | "
                  f"{row['epochs']}, {row['total']:.0f} s |  measured: {row['measured']}", flush=True)
    firsts = [r["first"] for r in rows if r["first"] is not None] or [float("nan")]
    reached = [r["reached"] for r in rows if r["reached"] is not None]
    print(f"median first epoch {statistics.median(firsts):.1f} s; 70 % reached in {len(reached)} of "
          f"{len(rows)} runs" + (f", median {statistics.median(reached):.1f} s" if reached else ""))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
