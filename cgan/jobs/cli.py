"""``python -m cgan.jobs poll|list``: start what the queue holds, or list the jobs, without the app.

`poll` starts the queued jobs that have a free slot (e.g. from cron, when no app page looks);
`list` prints each job's state and progress. A wrong setting or an unreadable folder is one line
on stderr: exit 2 for a wrong $CGAN_JOBS_BACKEND, 1 when a job cannot be read or started.
"""

from __future__ import annotations

import argparse
import sys

from cgan.files import checkpoints_root, write_failure
from cgan.jobs.backend import JobError
from cgan.jobs.control import list_jobs, start_queued
from cgan.jobs.settings import jobs_backend
from cgan.messages import RunError, one_line


def main(argv: list[str] | None = None) -> int:
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
            where = ""
            if job.queued:  # a backend that decides itself when a job starts gives no time
                when = "" if job.starts_in is None else f", starts in about {job.starts_in:.0f} s"
                where = f" (place {job.place}{when})"
            print(f"{one_line(job.name)}: {job.state}, epoch {job.epochs_done} of {job.epochs_total}{where}")
            if job.message:
                print(f"  {one_line(job.message)[:200]}")
    except (JobError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {one_line(write_failure(exc, checkpoints_root()))}", file=sys.stderr)
        return 1
    return 0
