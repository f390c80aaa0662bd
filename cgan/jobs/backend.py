"""Where trainers run: the Backend interface, and what both backends share.

A backend does the few things that differ between training on this machine (cgan.jobs.local) and
on a Ray cluster (cgan.jobs.ray): which devices a job may ask for, how many jobs run at once,
launching a trainer, what it knows of runs beyond their folders, stopping a trainer and taking a
job out of its own queue. Everything else about a job is read from its run folder, the same for
both. One backend object is chosen once, by $CGAN_JOBS_BACKEND (cgan.jobs.settings).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgan.messages import N_, one_line, Problem

if TYPE_CHECKING:
    from cgan.jobs.job import Job
    from cgan.runs import Run

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINER = "cgan.train"  # the module a trainer runs: `python -m cgan.train ...`

# The states of a job: a run's states (cgan.runs) plus "stopping", a running trainer that was
# asked to stop after the epoch it is training.
ACTIVE = ("running", "stopping")
WAITING = ("queued",)
RESUMABLE = ("stopped", "interrupted")


# A state's words, for messages that name it (an interface translates them; see state_words).
STATE_WORDS = {
    "queued": N_("queued"), "running": N_("running"), "stopping": N_("stopping"),
    "finished": N_("finished"), "stopped": N_("stopped"), "interrupted": N_("interrupted"),
    "failed": N_("failed"),
}


def state_words(state: str) -> str:
    """A job state as a message's value: a Problem of its marked words when it is a known state
    (so an interface can translate it), else the text as it is."""
    return Problem(STATE_WORDS[state]) if state in STATE_WORDS else str(state)


class JobError(RuntimeError):
    """A job cannot be started or changed as asked, said in one English line. `field` names the
    form field it is about. `problem` says the same for translation: the request's JobProblem
    (label and problem) when its check refused it, else the cgan.messages.Problem the message was
    made from (its template and values), or None for a message made otherwise."""

    def __init__(self, message: str, field: str | None = None, problem: Any = None):
        super().__init__(one_line(message))
        self.field = field
        self.problem = problem if problem is not None or not isinstance(message, Problem) else message


class JobNameError(JobError, ValueError):
    """A name that is no run folder's (a control character, a path, a hidden name)."""


def trainer_command(arguments: list[str]) -> list[str]:
    """The command line a person would type, as an argument list (never through a shell)."""
    return [sys.executable, "-m", TRAINER, *arguments]


def finite(value: Any) -> float:
    """A finite number from a file's field, else 0."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


class Backend:
    """What a backend does; the methods here are the defaults a backend keeps when they fit."""

    name = ""

    def devices(self) -> list[str]:
        """The devices a job may ask for."""
        raise NotImplementedError

    def capacity(self, max_running: int | None) -> int | None:
        """How many jobs may run at once (`max_running` if given, else the backend's setting);
        None: no limit here, the backend queues what it cannot place and decides when it starts."""
        raise NotImplementedError

    def launch(self, run: Run, arguments: list[str], device: str, append: bool) -> None:
        """Start the trainer for `run` (its output to train.log, appended to if `append`) and
        record the launch in status.json; JobError when it cannot start."""
        raise NotImplementedError

    def observe(self) -> Any:
        """What the backend knows of every run beyond its folder, asked once for a whole listing
        and handed to `refine` (None: nothing)."""
        return None

    def refine(self, job: Job, seen: Any, status: dict) -> None:
        """Correct `job`, read from its run folder (`status`: its status.json), with `seen`."""

    def stop(self, job: Job) -> None:
        """Ask the trainer of an active `job` to stop after the epoch it is training is written;
        JobError when it cannot be asked now."""
        raise NotImplementedError

    def withdraw(self, job: Job) -> None:
        """Take a queued `job` out of the backend's own queue, before its folder goes."""

    def exit_status(self, pid: int | None) -> int | None:
        """The exit status of a trainer this process launched, once it has exited; else None."""
        return None
