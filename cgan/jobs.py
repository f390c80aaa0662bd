"""Training jobs: start, stop, resume and delete runs of ``python -m cgan.train``.

A job is a run being trained, and everything about it lives in the run directory (cgan.runs): the
configuration in config.json, the launch (the trainer's arguments, device, pid) and how the
trainer ended in status.json, a stop request in .stop_requested, and whether a trainer is alive in
the trainer lock. ``Run.state()`` reads them for every page and command, so a run started at a
terminal is listed, watched and stopped exactly like one started from the app, and any app
process (or a later one) sees the same jobs.

A trainer is launched as the command line a person would type (an argument list, never a shell),
from the repository root, in a session of its own with no stdin and its output in the run's
train.log, so closing the browser tab or restarting the app does not stop it. A thread of the
launching process waits on it, so a trainer that exits does not linger as a zombie.

The job states are the run's (queued, running, finished, stopped, interrupted, failed) plus
"stopping": a running trainer that was asked to stop after the epoch it is training.

The queue: a start beyond the limit ($CGAN_MAX_JOBS running at once) is queued, not refused: the
run folder gets status.json "queued" with the trainer's arguments and the time it was queued, so
the queue survives a restart of the app. Queued runs start in the order they were queued as slots
free, launched by whoever looks next (the app on its next rerun, or ``python -m cgan.jobs poll``,
e.g. from cron); each shows its place and an estimated start, and can be cancelled. A session (a
browser tab) may hold at most $CGAN_MAX_JOBS_PER_SESSION running or queued jobs (unset: no limit).

Backends ($CGAN_JOBS_BACKEND): "local" (the default) runs each trainer as a process of this
machine; "ray" submits the same command line to a Ray cluster ($CGAN_RAY_ADDRESS, see
cgan.ray_jobs), which decides where and when it runs. Either way the trainer writes the same run
directory, so every reader, and this module's Job, reads a Ray-trained run like a local one; with Ray,
Ray's word on the newest submission of the run refines it (waiting for a node: "queued"; running;
ended), and Stop and Resume go through Ray. The job limits of this machine do not apply to Ray
(the cluster queues what it cannot place), the per-session limit does.

``checkpoints_root()/.jobs.lock`` is held (fcntl.flock) while a start or resume checks the job
limit and launches, and while a delete removes a run. (Older versions kept job records in
``checkpoints/.jobs/``; that folder is no longer read.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cgan.limits import MIN_QUALITY_SAMPLES, QUALITY_SAMPLES, TRAIN_IMAGES
from cgan.files import checkpoints_root, open_lock_file, write_failure
from cgan.history import EpochRecord
from cgan.messages import RunError, one_line
from cgan.processes import is_trainer_of, process_start_time, signal_trainer
from cgan.runs import Run, check_existing_run_name, check_run_name
from cgan.train import TrainConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_NAME = ".jobs.lock"
ACTIVE = ("running", "stopping")
WAITING = ("queued",)
RESUMABLE = ("stopped", "interrupted")
DEFAULT_MAX_JOBS = 1  # two trainers on a laptop's CPU only make both slow
BACKENDS = ("local", "ray")

# How the form names each configuration field in its messages.
FIELD_LABELS = {
    "model": "Model", "epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate",
    "beta1": "Adam beta1", "beta2": "Adam beta2", "seed": "Seed", "width": "Width",
    "limit": "Training images", "keep": "Weights kept", "metrics_every": "Quality every",
    "metrics_samples": "Quality samples per digit", "g_steps": "G steps per D step",
    "ema": "Weight average",
}


class JobError(RuntimeError):
    """A job cannot be started or changed as asked. `field` names the form field it is about."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(one_line(message))
        self.field = field


class JobNameError(JobError, ValueError):
    """A name that is no run folder's (a control character, a path, a hidden name)."""


def _existing_name(name: str) -> str:
    try:
        return check_existing_run_name(name)
    except ValueError as exc:
        raise JobNameError(f"{str(exc)[0].upper()}{str(exc)[1:]}.", field="name") from None


def jobs_backend() -> str:
    """$CGAN_JOBS_BACKEND: "local" (default) or "ray"."""
    backend = os.environ.get("CGAN_JOBS_BACKEND", "local").strip().lower() or "local"
    if backend not in BACKENDS:
        raise JobError(f"CGAN_JOBS_BACKEND={backend}: must be one of {', '.join(BACKENDS)}.")
    return backend


def _on_ray() -> bool:
    return jobs_backend() == "ray"


def max_jobs() -> int:
    """How many jobs may run at once: $CGAN_MAX_JOBS, else 1."""
    try:
        return max(1, int(os.environ.get("CGAN_MAX_JOBS", DEFAULT_MAX_JOBS)))
    except ValueError:
        return DEFAULT_MAX_JOBS


def max_jobs_per_session() -> int | None:
    """How many jobs one session may have running or queued: $CGAN_MAX_JOBS_PER_SESSION, else
    no limit."""
    try:
        value = int(os.environ.get("CGAN_MAX_JOBS_PER_SESSION", "0"))
    except ValueError:
        return None
    return value if value > 0 else None


def available_devices() -> list[str]:
    """The devices a job may ask for: this machine's, or with Ray the cluster's (a job that asks
    for a GPU waits until a GPU node is free)."""
    if _backend_or_local() == "ray":
        return ["cpu", "cuda"]
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _root(root: str | Path | None) -> Path:
    return Path(root if root is not None else checkpoints_root())


# ---------------------------------------------------------------------------------------------
# How often a run started from the app measures its quality

# Measuring quality while training (the classifier's accuracy and Fréchet distance on generated digits)
# may cost at most this share of the training time.
MEASURE_SHARE = 0.2
# Seconds on the 2-core Xeon this project is developed on: a CGAN epoch on 10,000 images and one
# full measurement (QUALITY_SAMPLES of each digit: CGAN 1.3 s, cDCGAN at full width 8 s; a
# measurement's cost grows with its samples). The cDCGAN's epoch comes from its measured ratio to
# its measurement (about 10 to 1, timed side by side on the same busy machine), and its cost at
# other widths from the same runs at width 1 and 0.25 (a quarter width costs about half):
# estimates, good enough to choose how often to measure.
MEASURE_SECONDS = {"cgan": 1.3, "cdcgan": 8.0}
EPOCH_SECONDS_PER_10K = {"cgan": 0.3, "cdcgan": 80.0}
# A run shows at least this many points on its Quality curves while it trains, where full
# measurements that often would cost more than their share: it measures on fewer samples.
LIVE_POINTS = 5


def cdcgan_cost(width: float) -> float:
    """The cDCGAN's cost at `width` relative to full width (fitted to width 1 and 0.25)."""
    return 0.445 + 0.555 * width**2


def _seconds(model: str, images: int, width: float, per_digit: int) -> tuple[float, float]:
    """(an epoch, a measurement on per_digit samples of each digit), in seconds."""
    scale = cdcgan_cost(width) if model == "cdcgan" else 1.0
    epoch = EPOCH_SECONDS_PER_10K.get(model, 0.3) * scale * images / 10_000
    measure = MEASURE_SECONDS.get(model, 1.3) * scale * per_digit / QUALITY_SAMPLES
    return max(epoch, 1e-6), measure


def measure_every(model: str, images: int, width: float = 1.0, per_digit: int = QUALITY_SAMPLES) -> int:
    """Epochs between quality measurements so that measuring costs at most MEASURE_SHARE of the
    training time, from the seconds per epoch and per measurement above."""
    epoch, measure = _seconds(model, images, width, per_digit)
    return max(1, math.ceil(measure / (MEASURE_SHARE * epoch)))


@dataclass(frozen=True)
class MeasurePlan:
    every: int  # epochs between measurements (and one after the last epoch)
    per_digit: int  # samples of each digit per measurement


def measure_plan(model: str, images: int, width: float = 1.0, epochs: int | None = None) -> MeasurePlan:
    """How often, and on how many samples, a run measures its quality while it trains: full
    measurements when they fit LIVE_POINTS times into MEASURE_SHARE of the run; else, for a short
    run, after every epoch on as many samples as fit (at least MIN_QUALITY_SAMPLES of each digit,
    rounded down to fifties), so a class watching it sees the accuracy climb epoch by epoch; else
    as often as MIN_QUALITY_SAMPLES fit."""
    every = measure_every(model, images, width)
    if epochs is None or epochs < 1 or epochs // every >= LIVE_POINTS:  # (bad epochs: the form says)
        return MeasurePlan(every, QUALITY_SAMPLES)
    epoch, full = _seconds(model, images, width, QUALITY_SAMPLES)
    each_epoch = int(QUALITY_SAMPLES * MEASURE_SHARE * epoch / full) // 50 * 50
    if each_epoch >= MIN_QUALITY_SAMPLES:
        return MeasurePlan(1, min(QUALITY_SAMPLES, each_epoch))
    per_point = MEASURE_SHARE * epoch * epochs / min(LIVE_POINTS, epochs)
    per_digit = int(QUALITY_SAMPLES * per_point / full) // 50 * 50
    per_digit = min(QUALITY_SAMPLES, max(MIN_QUALITY_SAMPLES, per_digit))
    return MeasurePlan(measure_every(model, images, width, per_digit), per_digit)


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
    metrics_every: int = 0
    beta1: float | None = None  # None: the model's own (the report's 0.5)
    ema: float = 0.0  # decay of the generator's weight average (0: none)
    metrics_samples: int = QUALITY_SAMPLES  # samples of each digit per quality measurement
    g_steps: int = 1  # generator steps per discriminator step (1: the report's)

    def config(self) -> TrainConfig:
        given = {} if self.beta1 is None else {"beta1": self.beta1}
        return TrainConfig(
            model=self.model, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            seed=self.seed, width=self.width, limit=self.limit, metrics_every=self.metrics_every,
            metrics_samples=self.metrics_samples, ema=self.ema, g_steps=self.g_steps, **given,
        )

    def with_quality_plan(self) -> JobRequest:
        """This request measuring its quality as a run started from the app does (measure_plan)."""
        plan = measure_plan(self.model, self.limit or TRAIN_IMAGES, self.width, self.epochs)
        return dataclasses.replace(self, metrics_every=plan.every, metrics_samples=plan.per_digit)

    def problems(self, root: str | Path | None = None, devices: list[str] | None = None) -> dict[str, str]:
        """Field -> one line: the training configuration's own check (TrainConfig.problems),
        then what only a job adds (a free, safe run name; a device this machine has)."""
        problems: dict[str, str] = {}
        try:
            check_run_name(self.name)
            if (_root(root) / self.name).exists():
                problems["name"] = f"A run named {self.name} already exists: choose another name."
        except ValueError as exc:
            problems["name"] = f"{str(exc)[0].upper()}{str(exc)[1:]}."
        for name, message in self.config().problems().items():
            problems[name] = f"{FIELD_LABELS.get(name, name)}: {message}."
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
        if self.metrics_every:
            args += ["--metrics-every", str(self.metrics_every)]
            if self.metrics_samples != QUALITY_SAMPLES:
                args += ["--metrics-samples", str(self.metrics_samples)]
        if self.beta1 is not None:
            args += ["--beta1", repr(float(self.beta1))]
        if self.ema:
            args += ["--ema", repr(float(self.ema))]
        if self.g_steps != 1:
            args += ["--g-steps", str(self.g_steps)]
        return args + ["--out", str(path)]


# ---------------------------------------------------------------------------------------------
# Processes

# Trainers this Python process started. A thread waits on each, so one that exits is reaped at
# once instead of lingering as a zombie for as long as the app runs; its exit status stays here.
_children: dict[int, subprocess.Popen] = {}


def _adopt(process: subprocess.Popen) -> None:
    _children[process.pid] = process
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()


def _exit_status(pid: int | None) -> int | None:
    """The exit status of our child `pid` once it has exited; None while it is still exiting (a
    trainer releases its run a moment before its process ends) or if it is not our child."""
    child = _children.get(pid) if pid else None
    return None if child is None else child.poll()


def trainer_command(arguments: list[str]) -> list[str]:
    """The command line a person would type, as an argument list (never through a shell)."""
    return [sys.executable, "-m", "cgan.train", *arguments]


def _launch(run: Run, arguments: list[str], device: str, append: bool) -> None:
    """Start the trainer (here, or on the Ray cluster) and record the launch in status.json."""
    if _on_ray():
        _submit_to_ray(run, arguments, device, append)
    else:
        _launch_process(run, arguments, device, append)


def _submit_to_ray(run: Run, arguments: list[str], device: str, append: bool) -> None:
    from cgan import ray_jobs  # only with the Ray backend: the local one never imports Ray

    if not append:
        run.log_path.write_bytes(b"")
    before = run.status()
    # Written before the submission: a node may start the trainer at once, and its own status
    # must not be overwritten by this one. No pid: the trainer's process is on another machine.
    run.write_status("starting", arguments=arguments, device=device, launched_at=time.time(),
                     pid=None, pid_started=None)
    try:
        ray_jobs.submit(run.path, arguments, device, run.log_path)
    except JobError:  # not submitted: the run stays as it was (a queued one keeps its place)
        if before:
            run.write_status(before.get("state", "queued"),
                             **{k: v for k, v in before.items() if k not in ("state", "updated_at")})
        raise


def _launch_process(run: Run, arguments: list[str], device: str, append: bool) -> subprocess.Popen:
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
        raise JobError(f"Could not start the trainer: {write_failure(exc, run.path)}.") from None
    _adopt(process)
    # The trainer needs seconds to import torch before it writes its own status.
    try:
        run.write_status(
            "starting", pid=process.pid, pid_started=process_start_time(process.pid),
            arguments=arguments, device=device, launched_at=launched_at,
        )
    except RunError as exc:  # a full disk: a trainer nobody could follow must not go on
        process.kill()
        raise JobError(f"Could not start the trainer: {exc}.") from None
    return process


# ---------------------------------------------------------------------------------------------
# A run seen as a job


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
    submission_id: str | None = None
    estimated_seconds: float = 0.0  # how long its training should take, judged when queued
    place: int | None = None  # 1 = next to start (queued jobs, filled by list_jobs)
    starts_in: float | None = None  # seconds until it should start (queued jobs, by list_jobs)

    @classmethod
    def read(cls, run: Run, ray: RaySnapshot | None = None) -> Job:
        return cls(run).refresh(ray)

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
        """Queued here (status.json "queued"), not by Ray: ours to launch when a slot frees."""
        return self.queued and self.ray_status is None

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

    def refresh(self, ray: RaySnapshot | None = None) -> Job:
        """Read the run directory again (and, with the Ray backend, what Ray says of the run's
        newest submission: `ray`, else asked now). Never raises: a damaged run, or a cluster that
        does not answer, says so in `message`."""
        run = self.run
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
        self.started_at = _number(status.get("updated_at") if status.get("state") == "running"
                                  else status.get("launched_at"))
        total = status.get("epochs_total")
        if total is None:
            try:
                total = run.config().get("epochs")
            except RunError:
                total = None
        self.epochs_total = int(min(max(_number(total), 0), 10**9))
        self.returncode = None if self.active else _exit_status(self.pid)
        self.session = status.get("session") if isinstance(status.get("session"), str) else None
        self.queued_at = _number(status.get("queued_at"))
        self.estimated_seconds = _number(status.get("estimated_seconds"))
        self.ray_status = self.submission_id = None
        if _backend_or_local() == "ray":
            self._refine_with_ray(ray if ray is not None else RaySnapshot.ask(), status)
        return self

    def _refine_with_ray(self, ray: RaySnapshot, status: dict) -> None:
        """Ray knows whether the trainer waits for a node, runs or has ended; the run's files say
        how a trainer ended (finished, stopped after Stop, failed, or killed: interrupted)."""
        submission = ray.submissions.get(ray.key(self.run))
        if submission is None:  # never submitted (a local run), or the cluster does not answer
            if ray.error and not self.message:
                self.message = ray.error
            return
        self.submission_id, self.ray_status = submission.submission_id, submission.status
        stop_asked = self.run.stop_requested() is not None
        if submission.status == "PENDING":
            self.state = "queued"
            self.queued_at = self.queued_at or _number(status.get("launched_at"))
        elif submission.status == "RUNNING":
            self.state = "stopping" if stop_asked else "running"
        else:
            if self.state in ACTIVE:
                self.state = "interrupted"  # Ray says it ended: a stale status.json is no trainer
            began = status.get("state") not in ("starting", "queued", None)
            if self.state == "interrupted" and submission.status == "FAILED" and not began:
                # It never began (no Python, no code on the node): Ray says why. A trainer that
                # began and was killed stays interrupted, resumable, as it would be here.
                self.state = "failed"
                self.message = self.run.failure_line() or submission.message[:200]
            if self.state == "interrupted" and stop_asked:
                self.state = "stopped"  # killed by Stop before it could write its status

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
        return self.run.log_tail(lines)


def _backend_or_local() -> str:
    """The backend for reading: a wrong setting is reported by the actions, and reading shows
    the run directory alone meanwhile."""
    try:
        return jobs_backend()
    except JobError:
        return "local"


@dataclass
class RaySnapshot:
    """What the Ray cluster says of every run it trained, asked once for a whole listing."""

    submissions: dict = field(default_factory=dict)  # run key -> ray_jobs.Submission
    error: str = ""

    @classmethod
    def ask(cls) -> RaySnapshot:
        from cgan import ray_jobs

        try:
            return cls(ray_jobs.submissions())
        except JobError as exc:
            return cls(error=str(exc))

    @staticmethod
    def key(run: Run) -> str:
        from cgan import ray_jobs

        return ray_jobs.run_key(run.path)


def _number(value) -> float:
    """A finite number from a file's field, else 0."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _created_at(job: Job) -> float:
    try:
        created = job.run.config().get("created_at")
    except RunError:
        created = None
    return _number(created) or _number(job.run.status().get("launched_at"))


# ---------------------------------------------------------------------------------------------
# Listing and control


@contextlib.contextmanager
def _locked(root: Path):
    """One start, resume or delete at a time across threads and app processes (flock is per
    open file, so threads of one process exclude each other too)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open_lock_file(root / LOCK_NAME)
    except OSError as exc:
        raise JobError(f"{write_failure(exc, root)}.") from None
    except RunError as exc:
        raise JobError(f"{exc}.") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def list_jobs(root: str | Path | None = None) -> list[Job]:
    """Every run under `root` that was trained here or is being trained (shipped runs, which
    cannot be continued, are not jobs), newest first, each with its current state."""
    root = _root(root)
    if not root.is_dir():
        return []
    jobs = []
    ray = RaySnapshot.ask() if _backend_or_local() == "ray" else None
    for path in root.iterdir():
        if path.name.startswith(".") or not path.is_dir():
            continue
        run = Run(path)
        if not (run.config_path.exists() or run.status_path.exists()):
            continue  # not a run, or a launch a moment before it records itself
        job = Job.read(run, ray)
        if job.slimmed and not job.active:
            continue
        jobs.append(job)
    _estimate_queue(jobs, max_jobs())
    return sorted(jobs, key=_created_at, reverse=True)


def _estimate_queue(all_jobs: list[Job], limit: int) -> None:
    """Each queued job's place and when it should start: slots free as running jobs end (their
    ETA), and each queued job, in order, takes the first free slot for its estimated time. On Ray
    the cluster decides when a job starts: the place is the order of submission, no start time."""
    if any(job.ray_status for job in all_jobs if job.queued):
        queued = sorted((job for job in all_jobs if job.queued), key=lambda job: job.queued_at)
        for place, job in enumerate(queued, start=1):
            job.place, job.starts_in = place, None
        return
    slots = sorted(
        (job.eta_seconds() or job.estimated_seconds or 0.0) for job in all_jobs if job.active
    )[:limit]
    slots += [0.0] * (limit - len(slots))
    queued = sorted((job for job in all_jobs if job.queued), key=lambda job: job.queued_at)
    for place, job in enumerate(queued, start=1):
        slots.sort()
        job.place, job.starts_in = place, slots[0]
        slots[0] += job.estimated_seconds


def get_job(name: str, root: str | Path | None = None) -> Job | None:
    """The job of the run folder `name` (any folder name: a run made at a terminal may have
    spaces in it), or None when there is no such run; JobNameError for a name that is no
    folder's (a control character, a path)."""
    run = Run(_root(root) / _existing_name(name))
    if not (run.config_path.exists() or run.status_path.exists()):
        return None
    return Job.read(run)


def _check_capacity(root: Path, max_running: int | None) -> None:
    limit = max_running or max_jobs()
    running = [job.name for job in list_jobs(root) if job.active]
    if len(running) >= limit:
        raise JobError(
            f"{len(running)} of at most {limit} training job{'s' if limit > 1 else ''} already "
            f"running ({', '.join(running)}): stop one or wait for it to finish.",
            field="capacity",
        )


def _check_session(all_jobs: list[Job], session: str | None) -> None:
    limit = max_jobs_per_session()
    if session is None or limit is None:
        return
    mine = [job.name for job in all_jobs if job.session == session and (job.active or job.queued)]
    if len(mine) >= limit:
        raise JobError(
            f"You already have {len(mine)} of at most {limit} job{'s' if limit > 1 else ''} running "
            f"or queued ({', '.join(mine)}): cancel or stop one first.", field="capacity",
        )


def estimated_seconds(request: JobRequest) -> float:
    """How long a request should train, from the seconds per epoch and per measurement above."""
    epoch, measure = _seconds(request.model, request.limit or TRAIN_IMAGES, request.width,
                              request.metrics_samples)
    measures = request.epochs / request.metrics_every + 1 if request.metrics_every else 0
    return request.epochs * epoch + measures * measure


def start(
    request: JobRequest,
    root: str | Path | None = None,
    max_running: int | None = None,
    devices: list[str] | None = None,
    session: str | None = None,
) -> Job:
    """Launch a new run, or queue it when `max_running` (default $CGAN_MAX_JOBS) jobs run or
    others wait already. Raises JobError when the request is invalid, the name is taken (even by
    a start at the same moment) or the session's own limit is reached; nothing is created then."""
    jobs_backend()  # a wrong setting is the one line the user sees, before anything is made
    root = _root(root)
    problems = request.problems(root, devices)
    if problems:
        field_name, message = next(iter(problems.items()))
        raise JobError(message, field=field_name)
    run = Run(root / request.name)
    with _locked(root):
        all_jobs = list_jobs(root)
        _check_session(all_jobs, session)
        try:
            run.path.mkdir()  # atomic: of two starts with one name, exactly one gets here
        except FileExistsError:
            raise JobError(
                f"A run named {request.name} already exists: choose another name.", field="name"
            ) from None
        except OSError as exc:
            raise JobError(f"Could not start {request.name}: {write_failure(exc, root)}.") from None
        try:
            run.write_status(
                "queued", arguments=request.arguments(run.path), device=request.device,
                queued_at=time.time(), epochs_total=request.epochs, session=session,
                estimated_seconds=round(estimated_seconds(request), 1),
            )
            _start_queued(root, list_jobs(root), max_running)
        except BaseException as exc:
            shutil.rmtree(run.path, ignore_errors=True)  # nothing of it stays to block the name
            if isinstance(exc, (RunError, OSError)):
                reason = write_failure(exc, root) if isinstance(exc, OSError) else str(exc)
                raise JobError(f"Could not start {request.name}: {reason}.") from None
            raise
    job = Job.read(run)
    job.returncode = None if job.active or job.queued else _exit_status(job.pid)
    if job.queued:
        job = next((j for j in list_jobs(root) if j.name == job.name), job)
    return job


def _start_queued(root: Path, all_jobs: list[Job], max_running: int | None) -> list[str]:
    """Launch queued jobs, oldest first, while slots are free (the caller holds the lock). Ray
    takes every one: the cluster queues what it cannot place yet."""
    limit = len(all_jobs) if _on_ray() else (max_running or max_jobs())
    free = limit - sum(job.active for job in all_jobs)
    started = []
    for job in sorted((j for j in all_jobs if j.waits_for_slot), key=lambda j: j.queued_at):
        if free <= 0:
            break
        _launch(job.run, job.arguments, job.device or "cpu", append=False)
        started.append(job.name)
        free -= 1
    return started


def start_queued(root: str | Path | None = None, max_running: int | None = None) -> list[str]:
    """Start the queued jobs that have a free slot now; return their names. Called by the app
    whenever it looks at the jobs, and by ``python -m cgan.jobs poll``."""
    root = _root(root)
    if not any(job.waits_for_slot for job in list_jobs(root)):
        return []  # the common case: nothing waits, nothing to lock or write
    with _locked(root):
        return _start_queued(root, list_jobs(root), max_running)


def cancel(name: str, root: str | Path | None = None) -> None:
    """Take a queued job out of the queue (its run folder, which holds nothing yet, goes). A job
    waiting for a node of the Ray cluster is stopped there first."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None or not job.queued:
            raise JobError(f"{name} is not queued.")
        if job.submission_id:
            from cgan import ray_jobs

            try:
                job.run.request_stop()
            except RunError as exc:
                raise JobError(str(exc)) from None
            ray_jobs.stop(job.submission_id)
            if not job.run.is_unstarted():  # a node took it meanwhile: Ray's stop ends it there
                raise JobError(f"{name} had just started; it stops after the epoch it is training.")
        shutil.rmtree(job.run.path, ignore_errors=True)


def resume(name: str, root: str | Path | None = None, max_running: int | None = None) -> Job:
    """Continue a stopped or interrupted run from its last complete epoch."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None:
            raise JobError(f"No run named {name}.")
        if job.state not in RESUMABLE or job.slimmed:
            what = "a shipped run" if job.slimmed else job.state
            raise JobError(f"{name} is {what}; only stopped or interrupted runs can be resumed.")
        if not _on_ray():
            _check_capacity(root, max_running)
        device = job.device or _trained_on(job.run)
        if job.run.exists():
            arguments = ["--resume", "--out", str(job.run.path), "--device", device]
        elif job.arguments:  # killed before it wrote its configuration: start it again
            arguments = job.arguments
        else:
            raise JobError(f"{name} has no configuration to continue from; delete it.")
        try:
            job.run.clear_stop_request()
            _launch(job.run, arguments, device, append=True)
        except OSError as exc:
            raise JobError(f"Could not resume {name}: {write_failure(exc, job.run.path)}.") from None
        except RunError as exc:
            raise JobError(f"Could not resume {name}: {exc}.") from None
    return Job.read(job.run)


def _trained_on(run: Run) -> str:
    """The device type a run's resume state was trained on (runs from before status.json kept
    the device)."""
    try:
        return str(run.load_resume_state().get("device_type", "cpu"))
    except RunError:
        return "cpu"


def stop(name: str, root: str | Path | None = None) -> Job:
    """Ask a running job to stop after the epoch it is training is written (SIGTERM). Asked again
    while it is stopping, it stops at once; finished epochs are on disk either way."""
    job = get_job(name, root)
    if job is None or not (job.active or job.ray_status == "PENDING"):
        raise JobError(f"{name} is not running.")
    if job.ray_status in ("PENDING", "RUNNING"):
        from cgan import ray_jobs

        job.run.request_stop()
        ray_jobs.stop(job.submission_id)
        return job.refresh()
    if job.pid is None or process_start_time(job.pid) != job.pid_started:
        if _on_ray() and job.message:  # a trainer on another node, and Ray does not answer
            raise JobError(f"{name} cannot be stopped now: {job.message}")
        raise JobError(f"{name} is starting; press Stop again in a moment.")
    # Signalled only if that pid is this run's trainer (start time and command line): status.json
    # may name any process. signal_trainer checks again on the pinned process.
    if not is_trainer_of(job.pid, job.pid_started, job.run.path):
        raise JobError(f"{name}: process {job.pid} named in its status is not this run's "
                       "`python -m cgan.train`; nothing was signalled.")
    try:
        if job.run.stop_requested() is None:
            job.run.request_stop()
    except RunError as exc:
        raise JobError(str(exc)) from None
    signal_trainer(job.pid, job.pid_started, job.run.path, signal.SIGTERM)  # False: it just ended
    return job.refresh()


def delete(name: str, root: str | Path | None = None) -> None:
    """Delete a run. A running one, or a shipped one, is never deleted here."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None:
            raise JobError(f"No run named {name}.")
        if job.slimmed:
            raise JobError(f"{name} is a shipped run; delete it by hand if you mean to.")
        path = job.run.path
        if path.is_symlink():
            raise JobError(f"{name} is a link to {os.readlink(path)}, not a run folder of {root}; "
                           "remove the link, or delete its run by hand.")
        if path.parent.resolve() != root.resolve():
            raise JobError(f"{name}: its run is not in {root}; delete it by hand.")
        if job.active:
            raise JobError(f"{name} is {job.state}: stop it before deleting it.")
        failures: list[str] = []

        def note(_function, failed_path, error) -> None:
            error = error[1] if isinstance(error, tuple) else error
            failures.append(f"{failed_path}: {getattr(error, 'strerror', None) or error}")

        try:
            with job.run.trainer_lock(writing=False):  # no trainer may start in it while it goes
                if sys.version_info >= (3, 12):
                    shutil.rmtree(path, onexc=note)
                else:
                    shutil.rmtree(path, onerror=note)
        except RunError as exc:
            if "already being trained" in str(exc):
                raise JobError(f"{name} is running: stop it before deleting it.") from None
            raise JobError(f"Could not delete {name}: {exc}.") from None
        if path.exists() or path.is_symlink():
            raise JobError(f"Could not delete all of {name}: {failures[0] if failures else 'it is back'}.")


# ---------------------------------------------------------------------------------------------
# Command line: start what the queue holds, without the app


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m cgan.jobs",
        description="Start queued training jobs that have a free slot (poll), or list the jobs.",
    )
    parser.add_argument("command", choices=["poll", "list"])
    args = parser.parse_args(argv)
    try:
        jobs_backend()
    except JobError as exc:  # a wrong setting: one line before anything is read or started
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "poll":
            for name in start_queued():
                print(f"started {name}")
            return 0
        for job in list_jobs():
            where = f" (place {job.place}, starts in about {job.starts_in:.0f} s)" if job.queued else ""
            print(f"{one_line(job.name)}: {job.state}, epoch {job.epochs_done} of {job.epochs_total}{where}")
            if job.message:
                print(f"  {one_line(job.message)[:200]}")
    except (JobError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {one_line(write_failure(exc, _root(None)))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run as the module cgan.jobs, not as __main__: cgan.ray_jobs raises cgan.jobs.JobError, and
    # under `python -m` this file would otherwise be a second module with a second JobError class
    # that its handlers do not catch.
    from cgan.jobs import main as module_main

    raise SystemExit(module_main())
