"""The jobs' settings, read from the environment: the backend, and how many jobs a session may hold.

    CGAN_JOBS_BACKEND=local | ray         where trainers run (cgan.jobs.local, cgan.jobs.ray)
    CGAN_MAX_JOBS=1                       trainers running at once on this machine (local only)
    CGAN_MAX_JOBS_PER_SESSION=0           running or queued jobs per browser session (0: no limit)
"""

from __future__ import annotations

import functools
import os

from cgan.jobs.backend import Backend, JobError
from cgan.jobs.local import LocalBackend

BACKENDS = ("local", "ray")


def jobs_backend() -> str:
    """$CGAN_JOBS_BACKEND: "local" (default) or "ray"; JobError (one line) for anything else."""
    name = os.environ.get("CGAN_JOBS_BACKEND", "local").strip().lower() or "local"
    if name not in BACKENDS:
        raise JobError(f"CGAN_JOBS_BACKEND={name}: must be one of {', '.join(BACKENDS)}.")
    return name


def backend() -> Backend:
    """The backend $CGAN_JOBS_BACKEND names, for an action; JobError for a wrong setting."""
    return _backend_named(jobs_backend())


def reading_backend() -> Backend:
    """The backend for reading jobs: a wrong setting is reported by the actions, and reading
    shows the run folders alone (the local backend) meanwhile."""
    try:
        return backend()
    except JobError:
        return _backend_named("local")


@functools.cache
def _backend_named(name: str) -> Backend:
    if name == "ray":
        from cgan.jobs.ray import RayBackend  # only with the Ray backend

        return RayBackend()
    return LocalBackend()


def available_devices() -> list[str]:
    """The devices a job may ask for: this machine's, or with Ray the cluster's."""
    return reading_backend().devices()


def max_jobs_per_session() -> int | None:
    """How many jobs one session may have running or queued: $CGAN_MAX_JOBS_PER_SESSION, else
    no limit."""
    try:
        value = int(os.environ.get("CGAN_MAX_JOBS_PER_SESSION", "0"))
    except ValueError:
        return None
    return value if value > 0 else None
