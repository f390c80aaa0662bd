"""The Ray backend: a trainer's command line submitted with Ray's job submission.

Chosen by settings (the local backend stays the default)::

    CGAN_JOBS_BACKEND=ray                      local (default) or ray
    CGAN_RAY_ADDRESS=http://HEAD:8265          the cluster's dashboard (job submission) address
    CGAN_RAY_PYTHON=python                     the Python that runs the trainer on the nodes
    CGAN_RAY_STOP_WAIT_S=900                   how long Stop lets an epoch finish before Ray kills

A launch is one submission of ``python -m cgan.train ... --out <run>`` as a Ray job entrypoint. The
code travels with it (Ray's working_dir: this repository without .venv, checkpoints and data); the
run directory does not: it is on storage every node and the app server see at the same path (an
NFS mount, CGAN_CHECKPOINTS). The trainer writes its run exactly as it does locally, its output
goes to the run's train.log, so the app follows a run trained on another node through the same
files.

Nothing about a submission is kept beside the run: each one carries the run's path in its Ray
metadata, and the newest submission for a path is the run's (``submissions``). So the run directory
stays the one record of the run, and Ray the one record of where its job is: waiting for a node
(PENDING: "queued"), running, or ended. Stop is Ray's stop_job, which sends SIGTERM to the trainer
(it finishes and writes the current epoch, then exits) and SIGKILL after $RAY_JOB_STOP_WAIT_TIME_S,
which this module sets from CGAN_RAY_STOP_WAIT_S for the job. Resume is a new submission with
``--resume``. The cluster queues what it cannot place, so this machine's job limit does not apply.

Ray itself is imported only when a cluster is asked (`_client`): this module loads without it.
"""

from __future__ import annotations

import functools
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cgan.jobs.backend import ACTIVE, REPO_ROOT, TRAINER, Backend, JobError, finite
from cgan.jobs.local import stop_process
from cgan.messages import RunError
from cgan.processes import process_start_time

if TYPE_CHECKING:
    from cgan.jobs.job import Job
    from cgan.runs import Run

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
DEFAULT_STOP_WAIT_S = 900  # longest epoch we expect (cDCGAN, full MNIST, on a CPU node)
# What the nodes need of this repository: the code. Runs, data and environments stay behind.
WORKING_DIR_EXCLUDES = [
    ".git", ".venv", "checkpoints", "data", "test-output", ".cache", ".pytest_cache", "__pycache__",
]
IN_RAY = ("PENDING", "RUNNING")  # a submission Ray still holds: waiting for a node, or running


def ray_address() -> str:
    return os.environ.get("CGAN_RAY_ADDRESS") or DEFAULT_ADDRESS


def _stop_wait_seconds() -> int:
    try:
        return max(1, int(os.environ.get("CGAN_RAY_STOP_WAIT_S", DEFAULT_STOP_WAIT_S)))
    except ValueError:
        return DEFAULT_STOP_WAIT_S


def _first_line(exc: Exception, length: int = 160) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:length]


@functools.lru_cache(maxsize=4)
def _client(address: str):
    """Ray's job submission client for `address` (one per address and process)."""
    try:
        from ray.job_submission import JobSubmissionClient  # the Ray package, not this module
    except ImportError:
        raise JobError("The Ray backend needs Ray: pip install -r requirements-ray.txt") from None
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # ConnectionError, or Ray's own RuntimeError for a wrong address
        raise JobError(f"Ray cluster at {address} does not answer: {_first_line(exc)}") from None


def entrypoint(arguments: list[str], log_path: Path) -> str:
    """The shell command Ray runs on a node: the trainer, its output appended to the run's log.

    `exec` makes the trainer the entrypoint's own process, so Ray's SIGTERM reaches it directly and
    the job's exit status is the trainer's."""
    python = os.environ.get("CGAN_RAY_PYTHON") or "python"
    command = shlex.join([python, "-u", "-m", TRAINER, *arguments])
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


def run_key(path: str | Path) -> str:
    """How a submission names its run: the run's absolute path (the same on every node)."""
    return str(Path(path).resolve())


def submit(path: Path, arguments: list[str], device: str, log_path: Path) -> str:
    """Submit the trainer for the run at `path`; return the submission id. JobError if Ray refuses
    or does not answer."""
    address = ray_address()
    submission_id = f"cgan-{Path(path).name}-{time.time_ns()}"
    resources = {"entrypoint_num_gpus": 1} if device == "cuda" else {"entrypoint_num_cpus": 1}
    client = _client(address)
    try:
        return client.submit_job(
            entrypoint=entrypoint(arguments, log_path),
            submission_id=submission_id,
            runtime_env=_runtime_env(),
            metadata={"run": Path(path).name, "path": run_key(path)},
            **resources,
        )
    except Exception as exc:
        raise JobError(f"Ray did not accept the job: {_first_line(exc, 200)}") from None


@dataclass(frozen=True)
class Submission:
    """What Ray says about the newest submission of one run."""

    submission_id: str
    status: str  # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED
    message: str
    submitted_ns: int


def _submitted_ns(submission_id: str) -> int:
    try:
        return int(submission_id.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def submissions() -> dict[str, Submission]:
    """Run path -> its newest submission, for every run this cluster has trained (one request).
    JobError when the cluster does not answer."""
    address = ray_address()
    try:
        details = _client(address).list_jobs()
    except JobError:
        raise
    except Exception as exc:
        raise JobError(f"Ray cluster at {address} does not answer: {_first_line(exc, 120)}") from None
    newest: dict[str, Submission] = {}
    for info in details:
        path = (info.metadata or {}).get("path")
        if not path or not info.submission_id:
            continue
        found = Submission(
            submission_id=info.submission_id,
            status=str(getattr(info.status, "value", info.status)),
            message=str(info.message or ""),
            submitted_ns=_submitted_ns(info.submission_id),
        )
        if path not in newest or found.submitted_ns > newest[path].submitted_ns:
            newest[path] = found
    return newest


def stop_submission(submission_id: str) -> None:
    """Ray's stop_job: SIGTERM to the trainer (a waiting job is simply dropped)."""
    try:
        _client(ray_address()).stop_job(submission_id)
    except JobError:
        raise
    except Exception as exc:
        raise JobError(f"Ray could not stop {submission_id}: {_first_line(exc)}") from None


@dataclass
class Snapshot:
    """What the cluster says of every run it trained, asked once for a whole listing."""

    submissions: dict[str, Submission] = field(default_factory=dict)  # run_key -> newest
    error: str = ""  # why the cluster did not answer


class RayBackend(Backend):
    name = "ray"

    def devices(self) -> list[str]:
        """The cluster's: a job that asks for a GPU waits until a GPU node is free."""
        return ["cpu", "cuda"]

    def capacity(self, max_running: int | None) -> int | None:
        return None  # the cluster queues what it cannot place yet

    def launch(self, run: Run, arguments: list[str], device: str, append: bool) -> None:
        if not append:
            run.log_path.write_bytes(b"")
        before = run.status()
        # Written before the submission: a node may start the trainer at once, and its own status
        # must not be overwritten by this one. No pid: the trainer's process is on another machine.
        run.write_status("starting", arguments=arguments, device=device, launched_at=time.time(),
                         pid=None, pid_started=None)
        try:
            submit(run.path, arguments, device, run.log_path)
        except JobError:  # not submitted: the run stays as it was (a queued one keeps its place)
            if before:
                run.write_status(before.get("state", "queued"),
                                 **{k: v for k, v in before.items() if k not in ("state", "updated_at")})
            raise

    def observe(self) -> Snapshot:
        try:
            return Snapshot(submissions())
        except JobError as exc:
            return Snapshot(error=str(exc))

    def refine(self, job: Job, seen: Snapshot, status: dict) -> None:
        """Ray knows whether the trainer waits for a node, runs or has ended; the run's files say
        how a trainer ended (finished, stopped after Stop, failed, or killed: interrupted)."""
        submission = seen.submissions.get(run_key(job.run.path))
        if submission is None:  # never submitted (a local run), or the cluster does not answer
            if seen.error and not job.message:
                job.message = seen.error
            return
        job.submission_id, job.ray_status = submission.submission_id, submission.status
        stop_asked = job.run.stop_requested() is not None
        if submission.status == "PENDING":
            job.state = "queued"
            job.queued_at = job.queued_at or finite(status.get("launched_at"))
        elif submission.status == "RUNNING":
            job.state = "stopping" if stop_asked else "running"
        else:
            if job.state in ACTIVE:
                job.state = "interrupted"  # Ray says it ended: a stale status.json is no trainer
            began = status.get("state") not in ("starting", "queued", None)
            if job.state == "interrupted" and submission.status == "FAILED" and not began:
                # It never began (no Python, no code on the node): Ray says why. A trainer that
                # began and was killed stays interrupted, resumable, as it would be here.
                job.state = "failed"
                job.message = job.run.failure_line() or submission.message[:200]
            if job.state == "interrupted" and stop_asked:
                job.state = "stopped"  # killed by Stop before it could write its status

    def stop(self, job: Job) -> None:
        """Through Ray for a submission it holds; a trainer this machine started before the
        backend was Ray is signalled as the local backend does."""
        if job.ray_status in IN_RAY:
            job.run.request_stop()
            stop_submission(job.submission_id)
            return
        if job.message and (job.pid is None or process_start_time(job.pid) != job.pid_started):
            # A trainer on another node, and Ray does not answer.
            raise JobError(f"{job.name} cannot be stopped now: {job.message}")
        stop_process(job)

    def withdraw(self, job: Job) -> None:
        """A job waiting for a node is stopped there first."""
        if not job.submission_id:
            return  # queued here, never submitted
        try:
            job.run.request_stop()
        except RunError as exc:
            raise JobError(str(exc)) from None
        stop_submission(job.submission_id)
        if not job.run.is_unstarted():  # a node took it meanwhile: Ray's stop ends it there
            raise JobError(f"{job.name} had just started; it stops after the epoch it is training.")
