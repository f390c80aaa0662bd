"""Time for people: how long a training run has left, and a duration read at a glance.

The one estimate of "time left" (`seconds_left`, which Job.eta_seconds gives for a job) and the
one way to write a duration (`duration`), for the sidebar, the Train page and the command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cgan.messages import N_
from cgan.history import EpochRecord

RECENT_EPOCHS = 5  # the epochs the pace is taken from

SECONDS = N_("{seconds} s")
MINUTES = N_("{minutes} min {seconds} s")
HOURS = N_("{hours} h {minutes} min")


def seconds_left(history: Sequence[EpochRecord], epochs_total: int, started_at: float,
                 now: float | None = None) -> float | None:
    """Seconds until epoch `epochs_total` of a run being trained since `started_at` (when its
    trainer process began), from the wall time of its newest epochs; None before its first.

    A process's first epoch also warms up (allocations, CUDA graph capture): once later epochs of
    this process are measured, it is left out. The estimate counts down between epochs."""
    if not history:
        return None
    this_process = [r for r in history if r.finished_at >= started_at]
    steady = this_process[1:] or this_process or list(history)
    recent = steady[-RECENT_EPOCHS:]
    per_epoch = sum(r.wall_seconds for r in recent) / len(recent)
    since_last = (now or time.time()) - max(history[-1].finished_at, started_at)
    return max(0.0, (epochs_total - history[-1].epoch) * per_epoch - since_last)


def duration(seconds: float, gettext: Callable[[str], str] = str) -> str:
    """A time a student reads at a glance: "40 s", "3 min 05 s", "1 h 20 min". `gettext`
    translates the three templates (SECONDS, MINUTES, HOURS) for an interface."""
    seconds = int(round(seconds))
    if seconds < 60:
        return gettext(SECONDS).format(seconds=seconds)
    if seconds < 3600:
        return gettext(MINUTES).format(minutes=seconds // 60, seconds=f"{seconds % 60:02d}")
    return gettext(HOURS).format(hours=seconds // 3600, minutes=f"{seconds % 3600 // 60:02d}")
