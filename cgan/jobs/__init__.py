"""Training jobs: start, stop, resume, cancel and delete runs of ``python -m cgan.train``.

A job is a run being trained, and everything about it lives in its run folder (cgan.runs), so a
run started at a terminal is listed, watched and stopped like one started from the app. The job
states are the run's (queued, running, finished, stopped, interrupted, failed) plus "stopping": a
running trainer asked to stop after the epoch it is training.

The package, read top to bottom:

    request.py   JobRequest: name + device + cgan.config.TrainConfig; its problems and arguments
    plan.py      the cost model: how long a run trains, how often it measures its quality
    timing.py    the one "time left" (seconds_left) and the one duration format (duration)
    backend.py   the Backend interface, JobError, the job states
    local.py     the local backend: trainers as processes of this machine (the default)
    ray.py       the Ray backend: trainers submitted to a Ray cluster
    settings.py  $CGAN_JOBS_BACKEND (one backend object) and the per-session limit
    job.py       Job: a run as a job, read from its folder and refined by the backend
    control.py   the verbs and the queue: list_jobs, get_job, start, start_queued, stop,
                 resume, cancel, delete
    cli.py       ``python -m cgan.jobs poll|list``

The app and the tests use the names below: ``from cgan import jobs; jobs.start(...)``. Nothing here
imports the trainer (cgan.train): a job runs it as a separate process.
"""

from cgan.jobs.backend import ACTIVE, RESUMABLE, WAITING, JobError, JobNameError, trainer_command
from cgan.jobs.cli import main
from cgan.jobs.control import (
    LOCK_NAME, cancel, delete, get_job, list_jobs, resume, start, start_queued, stop,
)
from cgan.jobs.job import Job, config_of_arguments
from cgan.jobs.local import max_jobs
from cgan.jobs.plan import (
    EPOCH_SECONDS_PER_10K, LIVE_POINTS, MEASURE_SECONDS, MEASURE_SHARE, MeasurePlan, cdcgan_cost,
    estimated_seconds, measure_every, measure_plan, quality_plan,
)
from cgan.jobs.request import SENTENCE, JobProblem, JobRequest
from cgan.jobs.settings import available_devices, jobs_backend, max_jobs_per_session
from cgan.jobs.timing import duration, seconds_left

__all__ = [
    "ACTIVE", "EPOCH_SECONDS_PER_10K", "LIVE_POINTS", "LOCK_NAME", "MEASURE_SECONDS", "MEASURE_SHARE",
    "RESUMABLE", "SENTENCE", "WAITING", "Job", "JobError", "JobNameError", "JobProblem", "JobRequest",
    "MeasurePlan", "available_devices", "cancel", "cdcgan_cost", "config_of_arguments", "delete",
    "duration", "estimated_seconds", "get_job", "jobs_backend", "list_jobs", "main", "max_jobs",
    "max_jobs_per_session", "measure_every", "measure_plan", "quality_plan", "resume",
    "seconds_left", "start", "start_queued", "stop", "trainer_command",
]
