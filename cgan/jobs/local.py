"""The local backend (the default): each trainer is a process of this machine.

A trainer is launched as the command line a person would type (an argument list, never a shell),
from the repository root, in a session of its own with no stdin and its output in the run's
train.log, so closing the browser tab or restarting the app does not stop it. A thread of the
launching process waits on it, so a trainer that exits does not linger as a zombie.

At most $CGAN_MAX_JOBS trainers run at once (default 1: two trainers on a laptop's CPU only make
both slow); cgan.jobs queues the starts beyond it. Stop is SIGTERM to the trainer, sent only
when the pid in status.json is still this run's trainer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from cgan.messages import N_, Problem, RunError
from cgan.files import write_failure
from cgan.jobs.backend import REPO_ROOT, Backend, JobError, trainer_command
from cgan.processes import is_trainer_of, process_start_time, signal_trainer

if TYPE_CHECKING:
    from cgan.jobs.job import Job
    from cgan.runs import Run

DEFAULT_MAX_JOBS = 1
NOT_STARTED = N_("Could not start the trainer: {reason}.")

# Trainers this Python process started. A thread waits on each, so one that exits is reaped at
# once instead of lingering as a zombie for as long as the app runs; its exit status stays here.
_children: dict[int, subprocess.Popen] = {}


def max_jobs() -> int:
    """How many jobs may run at once on this machine: $CGAN_MAX_JOBS, else 1."""
    try:
        return max(1, int(os.environ.get("CGAN_MAX_JOBS", DEFAULT_MAX_JOBS)))
    except ValueError:
        return DEFAULT_MAX_JOBS


class LocalBackend(Backend):
    name = "local"

    def devices(self) -> list[str]:
        import torch  # only to ask for CUDA: the rest of the jobs package never needs torch

        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]

    def capacity(self, max_running: int | None) -> int | None:
        return max_running or max_jobs()

    def launch(self, run: Run, arguments: list[str], device: str, append: bool) -> None:
        launch_process(run, arguments, device, append)

    def stop(self, job: Job) -> None:
        stop_process(job)

    def exit_status(self, pid: int | None) -> int | None:
        """None while our child `pid` is still exiting (a trainer releases its run a moment
        before its process ends) or if it is not our child."""
        child = _children.get(pid) if pid else None
        return None if child is None else child.poll()


def launch_process(run: Run, arguments: list[str], device: str, append: bool) -> subprocess.Popen:
    """Start the trainer as a detached process of this machine and record it in status.json."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    launched_at = time.time()
    try:
        with open(run.log_path, "ab" if append else "wb") as log:
            process = subprocess.Popen(
                trainer_command(arguments),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: no signal from the app's terminal reaches it
            )
    except OSError as exc:
        raise JobError(Problem(NOT_STARTED, reason=write_failure(exc, run.path))) from None
    _children[process.pid] = process
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    # The trainer needs seconds to import torch before it writes its own status.
    try:
        run.write_status(
            "starting", pid=process.pid, pid_started=process_start_time(process.pid),
            arguments=arguments, device=device, launched_at=launched_at,
        )
    except RunError as exc:  # a full disk: a trainer nobody could follow must not go on
        process.kill()
        raise JobError(Problem(NOT_STARTED, reason=str(exc))) from None
    return process


def stop_process(job: Job) -> None:
    """SIGTERM to the job's trainer, if the pid its status names is still that trainer (status.json
    may name any process: its start time and command line must match). Asked again while it is
    stopping, the trainer stops at once; finished epochs are on disk either way."""
    if job.pid is None or process_start_time(job.pid) != job.pid_started:
        raise JobError(Problem(N_("{name} is starting; press Stop again in a moment."), name=job.name))
    if not is_trainer_of(job.pid, job.pid_started, job.run.path):
        raise JobError(Problem(N_("{name}: process {pid} named in its status is not this run's "
                                  "`python -m cgan.train`; nothing was signalled."),
                               name=job.name, pid=str(job.pid)))
    try:
        if job.run.stop_requested() is None:
            job.run.request_stop()
    except RunError as exc:
        raise JobError(str(exc)) from None
    # signal_trainer checks again on the pinned process; False: the trainer just ended.
    signal_trainer(job.pid, job.pid_started, job.run.path, signal.SIGTERM)
