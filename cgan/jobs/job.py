"""A run seen as a training job: its state, progress and launch, read from its run folder.

Everything about a job lives in its run folder (cgan.runs): the configuration in config.json, the
launch (the trainer's arguments, device, pid) and how the trainer ended in status.json, a stop
request in .stop_requested, and whether a trainer is alive in the trainer lock. So a run started at
a terminal is listed, watched and stopped exactly like one started from the app, and any app
process (or a later one) sees the same jobs. The backend refines what the folder says (Ray knows
whether a trainer waits for a node).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgan.config import TrainConfig, add_arguments
from cgan.history import EpochRecord
from cgan.jobs.backend import ACTIVE, RESUMABLE, WAITING, finite, trainer_command
from cgan.jobs.settings import reading_backend
from cgan.jobs.timing import seconds_left
from cgan.messages import RunError
from cgan.runs import Run


@dataclass
class Job:
    """One run as a training job, read from its directory by `read(run)`."""

    run: Run
    state: str = "interrupted"
    history: list[EpochRecord] = field(default_factory=list)
    epochs_total: int = 0
    message: str = ""
    device: str = ""
    arguments: list[str] = field(default_factory=list)
    started_at: float = 0.0  # when the newest trainer process of the run began
    pid: int | None = None
    pid_started: str | None = None
    returncode: int | None = None  # known to the process that launched the trainer only
    session: str | None = None  # the app session that started it, if one did
    queued_at: float = 0.0
    ray_status: str | None = None  # Ray's word on the newest submission (Ray backend only)
    submission_id: str | None = None  # the backend's own record of the launch (Ray's job id)
    estimated_seconds: float = 0.0  # how long its training should take, judged when queued
    place: int | None = None  # 1 = next to start (queued jobs, filled by list_jobs)
    starts_in: float | None = None  # seconds until it should start (queued jobs, by list_jobs)

    @classmethod
    def read(cls, run: Run, seen: Any = None) -> Job:
        """The job of `run`; `seen`: the backend's observe() for a whole listing (else asked now)."""
        return cls(run).refresh(seen)

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def path(self) -> str:
        return str(self.run.path)

    @property
    def log_path(self) -> Path:
        return self.run.log_path

    @property
    def command(self) -> list[str]:
        return trainer_command(self.arguments)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def queued(self) -> bool:
        return self.state in WAITING

    @property
    def waits_for_slot(self) -> bool:
        """Queued in its run folder (status.json "queued"): ours to launch when a slot frees. A
        job in the backend's own queue (it has a submission) is the backend's to start."""
        return self.queued and self.submission_id is None

    @property
    def resumable(self) -> bool:
        return self.state in RESUMABLE and self.run.exists() and not self.slimmed

    @property
    def slimmed(self) -> bool:
        """A shipped run: its resume state was dropped, it cannot be continued."""
        try:
            return "slimmed" in self.run.config()
        except RunError:
            return False

    @property
    def epochs_done(self) -> int:
        return self.history[-1].epoch if self.history else 0

    def is_alive(self) -> bool:
        return self.run.trainer_alive()

    def refresh(self, seen: Any = None) -> Job:
        """Read the run directory again, and what the backend says of it (`seen`, else asked
        now). Never raises: a damaged run, or a cluster that does not answer, says so in
        `message`."""
        run = self.run
        backend = reading_backend()
        status = run.status()
        self.state = run.state()
        if self.state == "running" and run.stop_requested() is not None:
            self.state = "stopping"
        self.message = str(status.get("message") or "")
        try:
            self.history = run.history()
        except RunError as exc:
            self.history, self.message = [], str(exc)
        if self.state == "failed" and not self.message:
            self.message = run.failure_line()
        self.device = str(status.get("device") or "")
        arguments = status.get("arguments")
        self.arguments = [str(a) for a in arguments] if isinstance(arguments, list) else []
        try:
            self.pid = int(status["pid"]) if "pid" in status else None
        except (TypeError, ValueError):
            self.pid = None
        self.pid_started = status.get("pid_started")
        self.started_at = finite(status.get("updated_at") if status.get("state") == "running"
                                 else status.get("launched_at"))
        total = status.get("epochs_total")
        if total is None:
            try:
                total = run.config().get("epochs")
            except RunError:
                total = None
        self.epochs_total = int(min(max(finite(total), 0), 10**9))
        self.returncode = None if self.active else backend.exit_status(self.pid)
        self.session = status.get("session") if isinstance(status.get("session"), str) else None
        self.queued_at = finite(status.get("queued_at"))
        self.estimated_seconds = finite(status.get("estimated_seconds"))
        self.ray_status = self.submission_id = None
        backend.refine(self, backend.observe() if seen is None else seen, status)
        return self

    # -- what a page shows -----------------------------------------------------------------------
    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds until the last epoch while the job trains (timing.seconds_left); None when it
        does not train or has no epoch yet."""
        if not self.active:
            return None
        return seconds_left(self.history, self.epochs_total, self.started_at, now)

    def config(self) -> TrainConfig | None:
        """What the run trains: its config.json, or, before its trainer has written that, what its
        launch arguments ask for; None when neither reads."""
        try:
            return TrainConfig.from_json(self.run.config())
        except (RunError, ValueError, TypeError):
            pass
        return config_of_arguments(self.arguments)

    def log_tail(self, lines: int = 12) -> str:
        return self.run.log_tail(lines)


def config_of_arguments(arguments: list[str]) -> TrainConfig | None:
    """The configuration a new run's trainer arguments ask for (cgan.config's flags; --device,
    --out and the rest are left aside); None for a resume or arguments that do not read."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    add_arguments(parser)
    try:
        options, rest = parser.parse_known_args(arguments)
    except (argparse.ArgumentError, SystemExit):
        return None
    if "--resume" in rest:
        return None
    explicit = TrainConfig.explicit(options)
    try:
        return TrainConfig.for_model(explicit.pop("model", "cgan"), **explicit)
    except (ValueError, TypeError):
        return None
