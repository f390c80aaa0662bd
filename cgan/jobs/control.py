"""The verbs: list, start, stop, resume, cancel and delete jobs, and the queue.

The queue: a start beyond the backend's capacity ($CGAN_MAX_JOBS running at once here) is queued,
not refused: the run folder gets status.json "queued" with the trainer's arguments and the time it
was queued, so the queue survives a restart of the app. Queued runs start in the order they were
queued as slots free, launched by whoever looks next (the app on its next rerun, or ``python -m
cgan.jobs poll``, e.g. from cron); each shows its place and an estimated start, and can be
cancelled. A session (a browser tab) may hold at most $CGAN_MAX_JOBS_PER_SESSION running or queued
jobs (unset: no limit). A backend without a capacity (Ray: the cluster queues what it cannot place)
takes every queued job at once and decides itself when each starts.

``checkpoints_root()/.jobs.lock`` is held (fcntl.flock) while a start or resume checks the job
limit and launches, and while a cancel or delete removes a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import time
from pathlib import Path

from cgan.messages import N_, Problem, RunError
from cgan.files import checkpoints_root, open_lock_file, write_failure
from cgan.jobs.backend import RESUMABLE, Backend, JobError, JobNameError, finite, state_words
from cgan.jobs.job import Job
from cgan.jobs.plan import estimated_seconds
from cgan.jobs.request import JobRequest, taken
from cgan.jobs.settings import backend, max_jobs_per_session, reading_backend
from cgan.runs import Run, check_existing_run_name

LOCK_NAME = ".jobs.lock"

# The refusals, as templates an interface translates (each JobError holds its cgan.messages.Problem).
NOT_A_FOLDER = N_("Run name {shown}: not a run folder's name (one folder name, not hidden, no control "
                  "characters).")
NO_RUN = N_("No run named {name}.")
NOT_RESUMED = N_("Could not resume {name}: {reason}.")
STOP_FIRST = N_("{name} is {state}: stop it before deleting it.")
SESSION_FULL = (  # (one job allowed, more)
    N_("You already have {count} of at most {limit} job running or queued ({names}): cancel or stop "
       "one first."),
    N_("You already have {count} of at most {limit} jobs running or queued ({names}): cancel or stop "
       "one first."))
SLOTS_FULL = (
    N_("{count} of at most {limit} training job already running ({names}): stop one or wait for it "
       "to finish."),
    N_("{count} of at most {limit} training jobs already running ({names}): stop one or wait for it "
       "to finish."))


def _root(root: str | Path | None) -> Path:
    return Path(root if root is not None else checkpoints_root())


@contextlib.contextmanager
def _locked(root: Path):
    """One start, resume, cancel or delete at a time across threads and app processes (flock is
    per open file, so threads of one process exclude each other too)."""
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


# ---------------------------------------------------------------------------------------------
# Reading


def list_jobs(root: str | Path | None = None) -> list[Job]:
    """Every run under `root` that was trained here or is being trained (shipped runs, which
    cannot be continued, are not jobs), newest first, each with its current state; queued ones
    with their place and estimated start."""
    root = _root(root)
    if not root.is_dir():
        return []
    reader = reading_backend()
    seen = reader.observe()  # asked once for the whole listing
    jobs = []
    for path in root.iterdir():
        if path.name.startswith(".") or not path.is_dir():
            continue
        run = Run(path)
        if not run.launched():
            continue  # not a run, or a launch a moment before it records itself
        job = Job.read(run, seen)
        if job.slimmed and not job.active:
            continue
        jobs.append(job)
    _estimate_queue(jobs, reader.capacity(None))
    return sorted(jobs, key=_created_at, reverse=True)


def _created_at(job: Job) -> float:
    try:
        created = job.run.config().get("created_at")
    except RunError:
        created = None
    return finite(created) or finite(job.run.status().get("launched_at"))


def _estimate_queue(all_jobs: list[Job], capacity: int | None) -> None:
    """Each queued job's place and when it should start: slots free as running jobs end (their
    ETA), and each queued job, in order, takes the first free slot for its estimated time. A
    backend without a capacity decides itself when a job starts: the place is the order of
    submission, no start time."""
    queued = sorted((job for job in all_jobs if job.queued), key=lambda job: job.queued_at)
    if capacity is None:
        for place, job in enumerate(queued, start=1):
            job.place, job.starts_in = place, None
        return
    slots = sorted(
        (job.eta_seconds() or job.estimated_seconds or 0.0) for job in all_jobs if job.active
    )[:capacity]
    slots += [0.0] * (capacity - len(slots))
    for place, job in enumerate(queued, start=1):
        slots.sort()
        job.place, job.starts_in = place, slots[0]
        slots[0] += job.estimated_seconds


def get_job(name: str, root: str | Path | None = None) -> Job | None:
    """The job of the run folder `name` (any folder name: a run made at a terminal may have
    spaces in it), or None when there is no such run; JobNameError for a name that is no
    folder's (a control character, a path)."""
    try:
        check_existing_run_name(name)
    except ValueError as exc:  # its Problem (cgan.runs.NOT_A_FOLDER), said as a sentence
        raise JobNameError(Problem(NOT_A_FOLDER, **exc.args[0].values), field="name") from None
    run = Run(_root(root) / name)
    return Job.read(run) if run.launched() else None


# ---------------------------------------------------------------------------------------------
# Starting


def start(
    request: JobRequest,
    root: str | Path | None = None,
    max_running: int | None = None,
    devices: list[str] | None = None,
    session: str | None = None,
) -> Job:
    """Launch a new run, or queue it when `max_running` (default: the backend's capacity) jobs
    run or others wait already. Raises JobError when the request is invalid (its first problem,
    with `field` and `problem`), the name is taken (even by a start at the same moment) or the
    session's own limit is reached; nothing is created then."""
    chosen = backend()  # a wrong setting is the one line the user sees, before anything is made
    root = _root(root)
    problems = request.problems(root, devices)
    if problems:
        field_name, problem = next(iter(problems.items()))
        raise JobError(problem, field=field_name, problem=problem)
    run = Run(root / request.name)
    with _locked(root):
        _check_session(list_jobs(root), session)
        try:
            run.path.mkdir()  # atomic: of two starts with one name, exactly one gets here
        except FileExistsError:
            problem = taken(request.name)
            raise JobError(problem, field="name", problem=problem) from None
        except OSError as exc:
            raise JobError(Problem(N_("Could not start {name}: {reason}."), name=request.name,
                                   reason=write_failure(exc, root))) from None
        try:
            run.write_status(
                "queued", arguments=request.arguments(run.path), device=request.device,
                queued_at=time.time(), epochs_total=request.config.epochs, session=session,
                estimated_seconds=round(estimated_seconds(request.config), 1),
            )
            _start_queued(chosen, list_jobs(root), max_running)
        except BaseException as exc:
            shutil.rmtree(run.path, ignore_errors=True)  # nothing of it stays to block the name
            if isinstance(exc, (RunError, OSError)):
                reason = write_failure(exc, root) if isinstance(exc, OSError) else str(exc)
                raise JobError(Problem(N_("Could not start {name}: {reason}."), name=request.name,
                                       reason=reason)) from None
            raise
    job = Job.read(run)
    if job.queued:  # with its place in the queue
        job = next((j for j in list_jobs(root) if j.name == job.name), job)
    return job


def _check_session(all_jobs: list[Job], session: str | None) -> None:
    limit = max_jobs_per_session()
    if session is None or limit is None:
        return
    mine = [job.name for job in all_jobs if job.session == session and (job.active or job.queued)]
    if len(mine) >= limit:
        raise JobError(Problem(SESSION_FULL[limit > 1], count=str(len(mine)), limit=str(limit),
                               names=", ".join(mine)), field="capacity")


def _start_queued(chosen: Backend, all_jobs: list[Job], max_running: int | None) -> list[str]:
    """Launch queued jobs, oldest first, while slots are free (the caller holds the lock)."""
    capacity = chosen.capacity(max_running)
    free = (len(all_jobs) if capacity is None else capacity) - sum(job.active for job in all_jobs)
    started = []
    for job in sorted((j for j in all_jobs if j.waits_for_slot), key=lambda j: j.queued_at):
        if free <= 0:
            break
        chosen.launch(job.run, job.arguments, job.device or "cpu", append=False)
        started.append(job.name)
        free -= 1
    return started


def start_queued(root: str | Path | None = None, max_running: int | None = None) -> list[str]:
    """Start the queued jobs that have a free slot now; return their names. Called by the app
    whenever it looks at the jobs, and by ``python -m cgan.jobs poll``."""
    root = _root(root)
    if not any(job.waits_for_slot for job in list_jobs(root)):
        return []  # the common case: nothing waits, nothing to lock or write
    chosen = backend()
    with _locked(root):
        return _start_queued(chosen, list_jobs(root), max_running)


def cancel(name: str, root: str | Path | None = None) -> None:
    """Take a queued job out of the queue (its run folder, which holds nothing yet, goes)."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None or not job.queued:
            raise JobError(Problem(N_("{name} is not queued."), name=name))
        reading_backend().withdraw(job)
        shutil.rmtree(job.run.path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Stopping, resuming, deleting


def stop(name: str, root: str | Path | None = None) -> Job:
    """Ask a running job (or one waiting in the backend's own queue) to stop after the epoch it
    is training is written (SIGTERM). Asked again while it is stopping, it stops at once;
    finished epochs are on disk either way."""
    job = get_job(name, root)
    if job is None or not (job.active or (job.queued and job.submission_id)):
        raise JobError(Problem(N_("{name} is not running."), name=name))
    reading_backend().stop(job)
    return job.refresh()


def resume(name: str, root: str | Path | None = None, max_running: int | None = None) -> Job:
    """Continue a stopped or interrupted run from its last complete epoch."""
    root = _root(root)
    chosen = backend()
    with _locked(root):
        job = get_job(name, root)
        if job is None:
            raise JobError(Problem(NO_RUN, name=name))
        if job.slimmed:
            raise JobError(Problem(N_("{name} is a shipped run; only stopped or interrupted runs can be "
                                      "resumed."), name=name))
        if job.state not in RESUMABLE:
            raise JobError(Problem(N_("{name} is {state}; only stopped or interrupted runs can be resumed."),
                                   name=name, state=state_words(job.state)))
        capacity = chosen.capacity(max_running)
        if capacity is not None:
            running = [j.name for j in list_jobs(root) if j.active]
            if len(running) >= capacity:
                raise JobError(Problem(SLOTS_FULL[capacity > 1], count=str(len(running)),
                                       limit=str(capacity), names=", ".join(running)), field="capacity")
        device = job.device or _trained_on(job.run)
        if job.run.exists():
            arguments = ["--resume", "--out", str(job.run.path), "--device", device]
        elif job.arguments:  # killed before it wrote its configuration: start it again
            arguments = job.arguments
        else:
            raise JobError(Problem(N_("{name} has no configuration to continue from; delete it."), name=name))
        try:
            job.run.clear_stop_request()
            chosen.launch(job.run, arguments, device, append=True)
        except OSError as exc:
            raise JobError(Problem(NOT_RESUMED, name=name, reason=write_failure(exc, job.run.path))) from None
        except RunError as exc:
            raise JobError(Problem(NOT_RESUMED, name=name, reason=str(exc))) from None
    return Job.read(job.run)


def _trained_on(run: Run) -> str:
    """The device type a run's resume state was trained on (for a run whose status.json does
    not name its device)."""
    try:
        return str(run.load_resume_state().get("device_type", "cpu"))
    except RunError:
        return "cpu"


def delete(name: str, root: str | Path | None = None) -> None:
    """Delete a run. A running one, or a shipped one, is never deleted here."""
    root = _root(root)
    with _locked(root):
        job = get_job(name, root)
        if job is None:
            raise JobError(Problem(NO_RUN, name=name))
        if job.slimmed:
            raise JobError(Problem(N_("{name} is a shipped run; delete it by hand if you mean to."), name=name))
        path = job.run.path
        if path.is_symlink():
            raise JobError(Problem(N_("{name} is a link to {target}, not a run folder of {root}; remove the "
                                      "link, or delete its run by hand."),
                                   name=name, target=os.readlink(path), root=str(root)))
        if path.parent.resolve() != root.resolve():
            raise JobError(Problem(N_("{name}: its run is not in {root}; delete it by hand."),
                                   name=name, root=str(root)))
        if job.active:
            raise JobError(Problem(STOP_FIRST, name=name, state=state_words(job.state)))
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
                raise JobError(Problem(STOP_FIRST, name=name, state=state_words("running"))) from None
            raise JobError(Problem(N_("Could not delete {name}: {reason}."), name=name, reason=str(exc))) from None
        if path.exists() or path.is_symlink():
            if not failures:
                raise JobError(Problem(N_("Could not delete all of {name}: it is back."), name=name))
            raise JobError(Problem(N_("Could not delete all of {name}: {reason}."), name=name, reason=failures[0]))
