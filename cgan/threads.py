"""How many CPU threads the app's own torch work should use (generating digits for a page).

One thread while a trainer runs on this machine, so the page and the job it feeds do not fight;
else every core. The trainer chooses its own count by measuring (cgan.training.threads).
"""

from __future__ import annotations

import os

import torch


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def for_interactive(trainer_running: bool | None = None, root=None) -> int:
    """Set and return the thread count for the app's own torch work: 1 while a trainer runs on
    this machine (it has measured what the cores can give it), else every core.
    `trainer_running` None: look for a live trainer among the runs under `root` (default: the
    checkpoints folder)."""
    if trainer_running is None:
        from cgan.runs import list_runs

        trainer_running = any(run.is_training() for run in list_runs(root))
    threads = 1 if trainer_running else cpu_cores()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
