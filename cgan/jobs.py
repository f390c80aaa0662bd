"""Training jobs: runs of ``python -m cgan.train`` started from the app, detached and listed from disk.

A job is one trainer process writing one run directory. It is launched as the command line a person
would type (an argument list, never a shell), from the repository root, in a session of its own
with no stdin, so closing the browser tab or restarting the app does not stop it. Everything about
it is on disk, so any app process (or a later one) can list and control it::

    checkpoints_root()/.jobs/
        lock            held (fcntl.flock) while a start or resume checks the job limit and launches,
                        and while a delete removes a run
        <run>.json      {"name", "path", "arguments", "device", "epochs", "created_at",
                         "started_at", "pid", "pid_started", "stop_requested_at"}

A job's state combines its process with the run's status.json (see cgan.runs):

    running, stopping              the process is alive (stopping: Stop was pressed)
    finished, stopped, failed      the trainer wrote so in status.json before it exited
    interrupted                    the process is gone without saying so (killed, machine off):
                                   resume continues from the last complete epoch

"Alive" means: a process with the recorded pid exists, started at the recorded kernel start time
(so a recycled pid does not count) and is not a zombie. A thread of the process that launched a
trainer waits on it, so a trainer that exits does not linger as a zombie while the app runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cgan.models import MODELS
from cgan.runs import (
    EpochRecord, Run, check_run_name, checkpoints_root, process_start_time, write_json_atomic,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
JOBS_FOLDER = ".jobs"
ACTIVE = ("running", "stopping")
RESUMABLE = ("stopped", "interrupted")
DEFAULT_MAX_JOBS = 1  # two trainers on a laptop's CPU only make both slow

# Bounds for a run started from the app (the CLI is more permissive).
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 4096
TRAIN_IMAGES = 60000
MAX_SEED = 2**31 - 1
MAX_WIDTH = 4.0


class JobError(RuntimeError):
    """A job cannot be started or changed as asked. `field` names the form field it is about."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def max_jobs() -> int:
    """How many jobs may run at once: $CGAN_MAX_JOBS, else 1."""
    try:
        return max(1, int(os.environ.get("CGAN_MAX_JOBS", DEFAULT_MAX_JOBS)))
    except ValueError:
        return DEFAULT_MAX_JOBS


def available_devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def jobs_dir(root: str | Path | None = None) -> Path:
    return Path(root if root is not None else checkpoints_root()) / JOBS_FOLDER


# ---------------------------------------------------------------------------------------------
# What to train


@dataclass(frozen=True)
class JobRequest:
    """A new run as asked for in the form; `problems()` says what is wrong with it, per field."""

    name: str
    model: str = "cgan"
    epochs: int = 10
    batch_size: int = 150
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    width: float = 1.0
    limit: int | None = None

    def problems(self, root: str | Path | None = None, devices: list[str] | None = None) -> dict[str, str]:
        root = Path(root if root is not None else checkpoints_root())
        problems: dict[str, str] = {}
        try:
            check_run_name(self.name)
            if (root / self.name).exists():
                problems["name"] = f"A run named {self.name} already exists: choose another name."
        except ValueError as exc:
            problems["name"] = f"{str(exc)[0].upper()}{str(exc)[1:]}."
        if self.model not in MODELS:
            problems["model"] = f"Model: one of {', '.join(sorted(MODELS))}."
        if not 1 <= self.epochs <= MAX_EPOCHS:
            problems["epochs"] = f"Epochs: 1 to {MAX_EPOCHS}."
        images = self.limit or TRAIN_IMAGES
        if self.limit is not None and not 1 <= self.limit <= TRAIN_IMAGES:
            problems["limit"] = f"Training images: 1 to {TRAIN_IMAGES:,}, or empty for all of them."
            images = TRAIN_IMAGES
        largest_batch = min(MAX_BATCH_SIZE, images)
        if not 1 <= self.batch_size <= largest_batch:
            problems["batch_size"] = (
                f"Batch size: 1 to {largest_batch:,}"
                + (" (no more than the training images)." if largest_batch == images else ".")
            )
        if not 0 < self.lr <= 1:
            problems["lr"] = "Learning rate: more than 0 and at most 1."
        if not 0 <= self.seed <= MAX_SEED:
            problems["seed"] = f"Seed: 0 to {MAX_SEED:,}."
        if self.model == "cdcgan" and not 0 < self.width <= MAX_WIDTH:
            problems["width"] = f"Width: more than 0 and at most {MAX_WIDTH:g} (1 = the report's channels)."
        if self.device not in (devices or available_devices()):
            problems["device"] = f"Device: {self.device} is not available here."
        return problems

    def arguments(self, path: Path) -> list[str]:
        """The trainer's command-line arguments (after ``python -m cgan.train``)."""
        args = [
            "--model", self.model,
            "--epochs", str(self.epochs),
            "--batch-size", str(self.batch_size),
            "--lr", repr(float(self.lr)),
            "--seed", str(self.seed),
            "--device", self.device,
        ]
        if self.model == "cdcgan":
            args += ["--width", repr(float(self.width))]
        if self.limit is not None:
            args += ["--limit", str(self.limit)]
        return args + ["--out", str(path)]


# ---------------------------------------------------------------------------------------------
# Processes



# Trainers this Python process started. A thread waits on each, so one that exits is reaped at
# once instead of lingering as a zombie for as long as the app runs; its exit status stays here.
_children: dict[int, subprocess.Popen] = {}


def _adopt(process: subprocess.Popen) -> None:
    _children[process.pid] = process
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()


def _exit_status(pid: int) -> int | None:
    """The exit status of our child `pid`, which has exited; None if it is not our child."""
    child = _children.get(pid)
    if child is None:
        return None
    try:
        return child.wait(timeout=2)  # its waiting thread reaps it within moments
    except subprocess.TimeoutExpired:
        return None


# ---------------------------------------------------------------------------------------------
# The job record


@dataclass
class Job:
    name: str
    path: str
    arguments: list[str]
    device: str
    epochs: int
    created_at: float
    started_at: float
    pid: int
    pid_started: str | None
    stop_requested_at: float | None = None
    # Read from the process and the run directory by refresh(), not stored:
    returncode: int | None = field(default=None, compare=False)  # known to the launching process
    state: str = field(default="running", compare=False)
    history: list[EpochRecord] = field(default_factory=list, compare=False)
    message: str = field(default="", compare=False)
    epochs_total: int = field(default=0, compare=False)

    STORED = (
        "name", "path", "arguments", "device", "epochs", "created_at", "started_at", "pid",
        "pid_started", "stop_requested_at",
    )

    @property
    def run(self) -> Run:
        return Run(self.path)

    @property
    def record_path(self) -> Path:
        return Path(self.path).parent / JOBS_FOLDER / f"{self.name}.json"

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
    def resumable(self) -> bool:
        return self.state in RESUMABLE

    @property
    def epochs_done(self) -> int:
        return self.history[-1].epoch if self.history else 0

    def save(self) -> None:
        write_json_atomic(self.record_path, {key: getattr(self, key) for key in self.STORED})

    @classmethod
    def load(cls, record_path: Path) -> "Job | None":
        try:
            data = json.loads(record_path.read_text())
            return cls(**{key: data[key] for key in cls.STORED})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def is_alive(self) -> bool:
        return self.pid_started is not None and process_start_time(self.pid) == self.pid_started

    def refresh(self) -> "Job":
        """Read the process and the run directory again; record the exit status once known."""
        alive = self.is_alive()
        self.returncode = None if alive else _exit_status(self.pid)
        run = self.run
        status = run.status()
        if status.get("updated_at", 0) < self.started_at:
            status = {}  # written by an earlier process of this run
        self.history = run.history()
        self.epochs_total = int(status.get("epochs_total") or self.epochs)
        self.message = str(status.get("message") or "")
        if alive:
            self.state = "stopping" if self.stop_requested_at else "running"
        elif status.get("state") in ("finished", "stopped", "failed"):
            self.state = status["state"]
        elif self.stop_requested_at:
            self.state = "stopped"  # Stop reached it before it could write its status
        elif (self.returncode is not None and self.returncode > 0) or self._failure_line():
            self.state = "failed"  # refused its arguments or its data before it began
            self.message = self.message or self._failure_line()
        else:
            self.state = "interrupted"
        return self

    # -- what the page shows ---------------------------------------------------------------------
    def eta_seconds(self, now: float | None = None) -> float | None:
        """Seconds until the last epoch, from the newest measured epoch times; None if unknown."""
        if not self.active or not self.history:
            return None
        # A process's first epoch also warms up (allocations, CUDA graph capture): once later
        # epochs are measured, leave it out.
        this_process = [r for r in self.history if r.finished_at >= self.started_at]
        steady = this_process[1:] or this_process or self.history
        recent = steady[-5:]
        per_epoch = sum(r.wall_seconds for r in recent) / len(recent)
        since_last = (now or time.time()) - max(self.history[-1].finished_at, self.started_at)
        return max(0.0, (self.epochs_total - self.epochs_done) * per_epoch - since_last)

    def log_tail(self, lines: int = 12) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _failure_line(self) -> str:
        """The trainer's own error line (arguments, data, run), or a traceback's last line."""
        lines = [line.strip() for line in self.log_tail(40).splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith("error:") or ": error: " in line:
                return line[:200]
            if line.startswith("Traceback"):
                return lines[-1][:200]
        return ""


# ---------------------------------------------------------------------------------------------
# Listing and control


@contextlib.contextmanager
def _locked(root: Path):
    """One start or resume at a time across threads and app processes (flock is per open file)."""
    folder = jobs_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _root(root: str | Path | None) -> Path:
    return Path(root if root is not None else checkpoints_root())


def list_jobs(root: str | Path | None = None) -> list[Job]:
    """Every job under `root`, newest first, with its current state."""
    folder = jobs_dir(root)
    if not folder.is_dir():
        return []
    jobs = []
    for record_path in folder.glob("*.json"):
        job = Job.load(record_path)
        if job is None:
            continue
        job.refresh()
        if not job.active and not Path(job.path).exists():
            # The run was deleted by hand: forget the job too.
            record_path.unlink(missing_ok=True)
            continue
        jobs.append(job)
    return sorted(jobs, key=lambda job: job.created_at, reverse=True)


def get_job(name: str, root: str | Path | None = None) -> Job | None:
    check_run_name(name)
    job = Job.load(jobs_dir(root) / f"{name}.json")
    return job.refresh() if job else None


def _check_capacity(root: Path, max_running: int | None) -> None:
    limit = max_running or max_jobs()
    running = [job.name for job in list_jobs(root) if job.active]
    if len(running) >= limit:
        raise JobError(
            f"{len(running)} of at most {limit} training job{'s' if limit > 1 else ''} already "
            f"running ({', '.join(running)}): stop one or wait for it to finish.",
            field="capacity",
        )


def trainer_command(arguments: list[str]) -> list[str]:
    """The command line a person would type, as an argument list (never through a shell)."""
    return [sys.executable, "-m", "cgan.train", *arguments]


def _launch(arguments: list[str], log_path: Path, append: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab" if append else "wb") as log:
        process = subprocess.Popen(
            trainer_command(arguments),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: no signal from the app's terminal reaches it
        )
    _adopt(process)
    return process


def start(
    request: JobRequest,
    root: str | Path | None = None,
    max_running: int | None = None,
    devices: list[str] | None = None,
) -> Job:
    """Launch a new run. Raises JobError when the request is invalid, the name is taken (even by a
    start at the same moment) or the job limit is reached; nothing is created then."""
    root = _root(root)
    problems = request.problems(root, devices)
    if problems:
        field_name, message = next(iter(problems.items()))
        raise JobError(message, field=field_name)
    path = root / request.name
    with _locked(root):
        _check_capacity(root, max_running)
        try:
            path.mkdir()  # atomic: of two starts with one name, exactly one gets here
        except FileExistsError:
            raise JobError(
                f"A run named {request.name} already exists: choose another name.", field="name"
            ) from None
        now = time.time()
        job = Job(
            name=request.name, path=str(path), arguments=request.arguments(path),
            device=request.device, epochs=request.epochs, created_at=now, started_at=now,
            pid=0, pid_started=None,
        )
        try:
            process = _launch(job.arguments, job.log_path, append=False)
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)  # the launch log may already be there
            raise JobError(f"Could not start the trainer: {exc}") from None
        job.pid, job.pid_started = process.pid, process_start_time(process.pid)
        job.save()
    return job.refresh()


def resume(name: str, root: str | Path | None = None, max_running: int | None = None) -> Job:
    """Continue a stopped or interrupted job from its last complete epoch."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None:
            raise JobError(f"No job named {name}.")
        if not job.resumable:
            raise JobError(f"{name} is {job.state}; only stopped or interrupted runs can be resumed.")
        _check_capacity(root, max_running)
        if job.run.exists():
            arguments = ["--resume", "--out", job.path, "--device", job.device]
        else:  # killed before it wrote its configuration: nothing to continue, start it again
            arguments = job.arguments
        job.started_at = time.time()
        try:
            process = _launch(arguments, job.log_path, append=True)
        except OSError as exc:
            raise JobError(f"Could not start the trainer: {exc}") from None
        job.pid, job.pid_started = process.pid, process_start_time(process.pid)
        job.stop_requested_at = None
        job.save()
    return job.refresh()


def stop(name: str, root: str | Path | None = None) -> Job:
    """Ask a running job to stop after the epoch it is training is written (SIGTERM). Asked again
    while it is stopping, it stops at once; finished epochs are on disk either way."""
    job = get_job(name, root)
    if job is None or not job.active:
        raise JobError(f"{name} is not running.")
    try:
        os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:  # it ended between the check and the signal
        raise JobError(f"{name} is not running.") from None
    job.stop_requested_at = job.stop_requested_at or time.time()
    job.save()
    return job.refresh()


def delete(name: str, root: str | Path | None = None) -> None:
    """Delete a job's run directory and record. A running job is never deleted."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None:
            raise JobError(f"No job named {name}; only runs trained from here can be deleted here.")
        if job.active:
            raise JobError(f"{name} is {job.state}: stop it before deleting it.")
        path = Path(job.path)
        if path.parent.resolve() != root.resolve():
            raise JobError(f"{name}: its run is not in {root}; delete it by hand.")
        shutil.rmtree(path, ignore_errors=True)
        job.record_path.unlink(missing_ok=True)

