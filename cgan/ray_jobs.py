"""Training jobs on a Ray cluster: the trainer's command line submitted with Ray's job submission.

Selected by settings (the local process backend of cgan.jobs stays the default)::

    CGAN_JOBS_BACKEND=ray                      local (default) or ray
    CGAN_RAY_ADDRESS=http://HEAD:8265          the cluster's dashboard (job submission) address
    CGAN_RAY_PYTHON=python                     the Python that runs the trainer on the nodes
    CGAN_RAY_STOP_WAIT_S=900                   how long Stop lets an epoch finish before Ray kills

A job is one submission of ``python -m cgan.train ... --out <run>`` as a Ray job entrypoint. The
code travels with it (Ray's working_dir: this repository without .venv, checkpoints and data); the
run directory does not: it is on storage every node and the app server see at the same path (an NFS
mount, CGAN_CHECKPOINTS). The trainer writes its run exactly as it does locally, its output goes to
the run's train.log, so the app follows a run trained on another node through the same files.

Ray decides where and when a job runs: a job waits (state "queued", Ray's PENDING) until a node has
the CPU (or GPU, for --device cuda) it asks for. Stop is Ray's stop_job, which sends SIGTERM to the
trainer (it finishes and writes the current epoch, then exits) and SIGKILL after
$RAY_JOB_STOP_WAIT_TIME_S, which this module sets from CGAN_RAY_STOP_WAIT_S for the job. Resume is
a new submission with ``--resume``. Which submission trains which run is recorded beside the runs,
in ``<checkpoints>/.ray-jobs/<run>.json`` (a dot folder: no run), written under
``.ray-jobs/lock``::

    {"name", "path", "arguments", "device", "epochs", "created_at", "started_at",
     "submission_id", "address", "stop_requested_at"}
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from cgan.jobs import REPO_ROOT, JobError, JobRequest
from cgan.runs import EpochRecord, Run, check_run_name, checkpoints_root, write_json_atomic

BACKENDS = ("local", "ray")
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
DEFAULT_STOP_WAIT_S = 900  # longest epoch we expect (cDCGAN, full MNIST, on a CPU node)
RECORDS = ".ray-jobs"
# What the nodes need of this repository: the code. Runs, data and environments stay behind.
WORKING_DIR_EXCLUDES = [
    ".git", ".venv", "checkpoints", "data", "test-output", ".cache", ".pytest_cache", "__pycache__",
]
RAY_ACTIVE = ("PENDING", "RUNNING")


def jobs_backend() -> str:
    """$CGAN_JOBS_BACKEND: "local" (default) or "ray"."""
    backend = os.environ.get("CGAN_JOBS_BACKEND", "local").strip().lower() or "local"
    if backend not in BACKENDS:
        raise JobError(f"CGAN_JOBS_BACKEND={backend}: must be one of {', '.join(BACKENDS)}.")
    return backend


def ray_address() -> str:
    return os.environ.get("CGAN_RAY_ADDRESS") or DEFAULT_ADDRESS


def _stop_wait_seconds() -> int:
    try:
        return max(1, int(os.environ.get("CGAN_RAY_STOP_WAIT_S", DEFAULT_STOP_WAIT_S)))
    except ValueError:
        return DEFAULT_STOP_WAIT_S


@functools.lru_cache(maxsize=4)
def _client(address: str):
    """Ray's job submission client for `address` (one per address and process)."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise JobError("The Ray backend needs Ray: pip install -r requirements-ray.txt") from None
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # ConnectionError, or Ray's own RuntimeError for a wrong address
        raise JobError(f"Ray cluster at {address} does not answer: {str(exc).splitlines()[0][:160]}") from None


def entrypoint(arguments: list[str], log_path: Path) -> str:
    """The shell command Ray runs on a node: the trainer, its output appended to the run's log.

    `exec` makes the trainer the entrypoint's own process, so Ray's SIGTERM reaches it directly and
    the job's exit status is the trainer's."""
    python = os.environ.get("CGAN_RAY_PYTHON") or "python"
    command = shlex.join([python, "-u", "-m", "cgan.train", *arguments])
    return f"exec {command} >> {shlex.quote(str(log_path))} 2>&1"


def _runtime_env() -> dict:
    env_vars = {
        "PYTHONUNBUFFERED": "1",
        # Read by Ray's job supervisor: SIGKILL only this long after Stop's SIGTERM.
        "RAY_JOB_STOP_WAIT_TIME_S": str(_stop_wait_seconds()),
    }
    for name in ("CGAN_MNIST_DIR", "CGAN_CHECKPOINTS"):
        if os.environ.get(name):
            env_vars[name] = os.environ[name]
    return {"working_dir": str(REPO_ROOT), "excludes": WORKING_DIR_EXCLUDES, "env_vars": env_vars}


def _submit(address: str, name: str, arguments: list[str], device: str, log_path: Path) -> str:
    submission_id = f"cgan-{name}-{time.time_ns()}"
    resources = {"entrypoint_num_gpus": 1} if device == "cuda" else {"entrypoint_num_cpus": 1}
    try:
        return _client(address).submit_job(
            entrypoint=entrypoint(arguments, log_path),
            submission_id=submission_id,
            runtime_env=_runtime_env(),
            metadata={"run": name},
            **resources,
        )
    except JobError:
        raise
    except Exception as exc:
        raise JobError(f"Ray did not accept the job: {str(exc).splitlines()[0][:200]}") from None


# ---------------------------------------------------------------------------------------------
# The job record


@dataclass
class RayJob:
    name: str
    path: str
    arguments: list[str]
    device: str
    epochs: int
    created_at: float
    started_at: float
    submission_id: str
    address: str
    stop_requested_at: float | None = None
    # Read from Ray and the run directory by refresh(), not stored (the same names as cgan.jobs.Job):
    ray_status: str | None = field(default=None, compare=False)
    state: str = field(default="queued", compare=False)
    history: list[EpochRecord] = field(default_factory=list, compare=False)
    message: str = field(default="", compare=False)
    epochs_total: int = field(default=0, compare=False)

    STORED = (
        "name", "path", "arguments", "device", "epochs", "created_at", "started_at",
        "submission_id", "address", "stop_requested_at",
    )

    @property
    def run(self) -> Run:
        return Run(self.path)

    @property
    def record_path(self) -> Path:
        return records_dir(Path(self.path).parent) / f"{self.name}.json"

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running", "stopping")

    @property
    def resumable(self) -> bool:
        return self.state in ("stopped", "interrupted")

    @property
    def epochs_done(self) -> int:
        return self.history[-1].epoch if self.history else 0

    def save(self) -> None:
        write_json_atomic(self.record_path, {key: getattr(self, key) for key in self.STORED})

    @classmethod
    def load(cls, record_path: Path) -> RayJob | None:
        try:
            data = json.loads(record_path.read_text())
            return cls(**{key: data[key] for key in cls.STORED})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def refresh(self) -> RayJob:
        """Ask Ray where the submission is, and read the run directory.

        Ray knows whether the entrypoint waits, runs or has ended; the run's files say how the
        trainer ended (finished, stopped after Stop, failed, or killed: interrupted)."""
        run = self.run
        self.history = run.history()
        status = run.status()
        self.epochs_total = int(status.get("epochs_total") or self.epochs)
        try:
            info = _client(self.address).get_job_info(self.submission_id)
            self.ray_status = str(getattr(info.status, "value", info.status))
            ray_message = str(info.message or "")
        except Exception as exc:  # cluster gone: the files alone say what is known
            self.ray_status = None
            ray_message = f"Ray cluster at {self.address} does not answer: {str(exc).splitlines()[0][:120]}"
        self.message = str(status.get("message") or "") if status.get("updated_at", 0) >= self.started_at else ""
        if self.ray_status == "PENDING":
            self.state = "queued"
        elif self.ray_status == "RUNNING":
            self.state = "stopping" if self.stop_requested_at else "running"
        else:
            self.state = run.state()
            if self.state == "running" and self.ray_status is not None:
                self.state = "interrupted"  # Ray says it ended; a stale status.json is no trainer
            if self.state == "interrupted" and self.ray_status == "FAILED":
                self.state = "failed"  # it never began (no Python, no code): Ray says why
                self.message = run.failure_line() or ray_message
            if self.state == "interrupted" and self.stop_requested_at:
                self.state = "stopped"  # killed by Stop before it could write its status
        if self.ray_status is None and not self.message:
            self.message = ray_message
        return self

    def log_tail(self, lines: int = 12) -> str:
        """The trainer's output, from the run's train.log (written by the node)."""
        return self.run.log_tail(lines)

    def ray_logs(self) -> str:
        """What Ray recorded for the entrypoint (a shell or environment error shows here)."""
        try:
            return _client(self.address).get_job_logs(self.submission_id)
        except JobError:
            raise
        except Exception as exc:
            raise JobError(f"Ray has no logs for {self.name}: {str(exc).splitlines()[0][:160]}") from None


# ---------------------------------------------------------------------------------------------
# Listing and control: the same calls as cgan.jobs


def _root(root: str | Path | None) -> Path:
    return Path(root if root is not None else checkpoints_root())


def records_dir(root: str | Path | None = None) -> Path:
    return _root(root) / RECORDS


@contextlib.contextmanager
def _locked(root: Path):
    """One submission or record change at a time across app processes (and their threads)."""
    folder = records_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def list_jobs(root: str | Path | None = None) -> list[RayJob]:
    """Every Ray job under `root`, newest first, with its current state."""
    records = records_dir(root).glob("*.json")
    jobs = [job.refresh() for job in map(RayJob.load, records) if job is not None]
    return sorted(jobs, key=lambda job: job.created_at, reverse=True)


def get_job(name: str, root: str | Path | None = None) -> RayJob | None:
    """The Ray job training run `name`, or None when that run was not submitted to Ray."""
    check_run_name(name)
    job = RayJob.load(records_dir(root) / f"{name}.json")
    return job.refresh() if job else None


def start(
    request: JobRequest, root: str | Path | None = None, address: str | None = None,
    devices: list[str] | None = None,
) -> RayJob:
    """Submit a new run to the cluster. Raises JobError when the request is invalid, the name is
    taken or Ray refuses; nothing is left behind then. Devices are the cluster's (cpu, cuda)."""
    root, address = _root(root), address or ray_address()
    problems = request.problems(root, devices or ["cpu", "cuda"])
    if problems:
        field_name, message = next(iter(problems.items()))
        raise JobError(message, field=field_name)
    path = root / request.name
    with _locked(root):
        try:
            path.mkdir()  # atomic: of two starts with one name, exactly one gets here
        except FileExistsError:
            raise JobError(f"A run named {request.name} already exists: choose another name.", field="name") from None
        arguments = request.arguments(path)
        now = time.time()
        # What the app lists before the trainer writes anything, as for a local launch.
        Run(path).write_status("starting", arguments=arguments, device=request.device, launched_at=now)
        try:
            submission_id = _submit(address, request.name, arguments, request.device, Run(path).log_path)
        except JobError:
            shutil.rmtree(path, ignore_errors=True)
            raise
        job = RayJob(
            name=request.name, path=str(path), arguments=arguments, device=request.device,
            epochs=request.epochs, created_at=now, started_at=now, submission_id=submission_id,
            address=address,
        )
        job.save()
    return job.refresh()


def resume(name: str, root: str | Path | None = None) -> RayJob:
    """Continue a stopped or interrupted run from its last complete epoch: a new submission."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None:
            raise JobError(f"No Ray job named {name}.")
        if not job.resumable:
            raise JobError(f"{name} is {job.state}; only stopped or interrupted runs can be resumed.")
        if job.run.exists():
            arguments = ["--resume", "--out", job.path, "--device", job.device]
        else:  # ended before it wrote its configuration: nothing to continue, start it again
            arguments = job.arguments
        job.submission_id = _submit(job.address, name, arguments, job.device, job.run.log_path)
        job.started_at = time.time()
        job.stop_requested_at = None
        job.save()
    return job.refresh()


def stop(name: str, root: str | Path | None = None) -> RayJob:
    """Ask Ray to stop the job: SIGTERM, so the trainer writes the epoch it is training and exits
    (a queued job is simply dropped). Finished epochs are on disk either way."""
    job = get_job(name, root)
    if job is None or not job.active:
        raise JobError(f"{name} is not running.")
    try:
        _client(job.address).stop_job(job.submission_id)
    except Exception as exc:
        raise JobError(f"Ray could not stop {name}: {str(exc).splitlines()[0][:160]}") from None
    job.stop_requested_at = job.stop_requested_at or time.time()
    job.save()
    return job.refresh()
