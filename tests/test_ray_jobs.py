"""Training on a Ray cluster: a real local Ray head on loopback, a real trainer submitted as a Ray
job through cgan.jobs with CGAN_JOBS_BACKEND=ray (the code path the app uses), its epochs arriving
in the run directory, Stop (Ray's stop_job: SIGTERM, the epoch is written), Resume, a job waiting
for a node (queued) and cancelled, and a failed entrypoint. Nothing is kept beside the runs: the
run directory and Ray's own records are the whole truth.

The head gets its own ports and temporary folder and is torn down at the end (never `ray stop`,
which would end every Ray on the machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from cgan import jobs
from cgan.jobs import JobError, JobRequest
from cgan.runs import Run

try:
    import ray  # noqa: F401
except ImportError:
    if os.environ.get("CGAN_REQUIRE_RAY"):
        raise
    pytest.skip("Ray is not installed (pip install -r requirements-ray.txt)", allow_module_level=True)

from tests.browser_support import free_port, free_ports  # noqa: E402
from tests.conftest import wait_until  # noqa: E402

RAY = Path(sys.executable).parent / "ray"


def seen(what: str, root: Path):
    """wait_until's message: `what`, and every job in `root` as cgan.jobs lists it then."""
    return lambda: f"{what} {[(job.name, job.state, job.ray_status, job.message) for job in jobs.list_jobs(root)]}"


def job_in(state: str, name: str, root: Path):
    """The job once cgan.jobs says it is in `state` (for wait_until)."""
    job = jobs.get_job(name, root)
    return job if job is not None and job.state == state else None


@pytest.fixture(scope="module")
def ray_head():
    """A one-node Ray cluster on 127.0.0.1 with free ports; yields its job submission address."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
    names = ("port", "dashboard-port", "ray-client-server-port", "dashboard-agent-listen-port",
             "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port",
             "node-manager-port", "object-manager-port")
    ports = dict(zip(names, free_ports(len(names)), strict=True))  # no two the same: Ray refuses that
    # A hundred worker ports that none of the components' ports falls in (Ray refuses an overlap).
    worker_base = next(base for base in (free_port() // 100 * 100 % 50000 + 10000 for _ in range(100))
                       if not any(base <= port < base + 100 for port in ports.values()))
    command = [
        str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
        "--dashboard-host", "127.0.0.1", "--include-dashboard", "true", "--num-cpus", "2",
        "--temp-dir", temp, "--disable-usage-stats",
        "--min-worker-port", str(worker_base), "--max-worker-port", str(worker_base + 99),
        *[arg for name, port in ports.items() for arg in (f"--{name}", str(port))],
    ]
    log = open(Path(temp) / "ray-start.log", "w")  # noqa: SIM115 (closed below)
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    address = f"http://127.0.0.1:{ports['dashboard-port']}"

    def answers() -> bool:
        assert head.poll() is None, (Path(temp) / "ray-start.log").read_text()[-3000:]
        try:
            with urllib.request.urlopen(address + "/api/version", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_until(answers, 120, interval=0.5, message="the Ray dashboard")
        yield address
    finally:
        head.send_signal(signal.SIGTERM)  # --block: the launcher stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def on_ray(ray_head, monkeypatch):
    """The settings that make cgan.jobs (and so the app) train on the Ray head."""
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "ray")
    monkeypatch.setenv("CGAN_RAY_ADDRESS", ray_head)
    monkeypatch.setenv("CGAN_RAY_PYTHON", sys.executable)  # this venv stands for the nodes' Python
    return ray_head


def test_backend_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("CGAN_JOBS_BACKEND", raising=False)
    assert jobs.jobs_backend() == "local"
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "Ray")
    assert jobs.jobs_backend() == "ray"
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "slurm")
    with pytest.raises(JobError, match="CGAN_JOBS_BACKEND=slurm: must be one of local, ray"):
        jobs.jobs_backend()
    with pytest.raises(JobError, match="CGAN_JOBS_BACKEND=slurm"):
        jobs.start(JobRequest(name="nowhere", limit=600, epochs=3), root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_cluster_is_one_line(tmp_path, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "ray")
    monkeypatch.setenv("CGAN_RAY_ADDRESS", f"http://127.0.0.1:{port}")
    with pytest.raises(JobError, match=f"^Ray cluster at http://127.0.0.1:{port} does not answer"):
        jobs.start(JobRequest(name="nowhere", limit=600, epochs=3), root=tmp_path)
    assert not (tmp_path / "nowhere").exists()  # nothing left behind

    # A run the cluster trained earlier still reads from its directory, and says why Ray is silent.
    Run(tmp_path / "earlier").write_status("stopped", epochs_total=5)
    [job] = jobs.list_jobs(tmp_path)
    assert (job.name, job.state, job.ray_status) == ("earlier", "stopped", None)
    assert job.message.startswith(f"Ray cluster at http://127.0.0.1:{port} does not answer")


def test_train_stop_resume_on_ray(on_ray, tmp_path):
    request = JobRequest(name="on-ray", model="cgan", epochs=60, batch_size=100, limit=600, seed=3)
    job = jobs.start(request, root=tmp_path, session="tab-1")
    assert isinstance(job, jobs.Job)
    assert job.state in ("queued", "running") and job.submission_id, (job.state, job.message)
    assert not (tmp_path / ".ray-jobs").exists()  # the run directory is the only record

    # Its epochs arrive in the run directory, written by the trainer Ray started.
    run = Run(tmp_path / "on-ray")
    wait_until(lambda: len(run.history()) >= 2, 120, message=seen("two epochs in the run directory", tmp_path))
    job = jobs.get_job("on-ray", tmp_path)
    assert (job.state, job.ray_status) == ("running", "RUNNING"), (job.message, job.log_tail())
    assert job.epochs_total == 60 and job.epochs_done >= 2 and job.session == "tab-1"
    assert 0 < job.eta_seconds() < 600 and not job.resumable and not job.queued
    assert "[  1/60]" in job.log_tail(40)  # the trainer's output is in the run's train.log

    # Stop: Ray's SIGTERM; the trainer writes the epoch it is on and says it stopped.
    assert jobs.stop("on-ray", tmp_path).state in ("stopping", "stopped")
    job = wait_until(lambda: job_in("stopped", "on-ray", tmp_path), 60, message=seen("the job to stop", tmp_path))
    assert job.ray_status == "STOPPED" and job.resumable and job.eta_seconds() is None
    assert run.status()["state"] == "stopped"
    done = len(run.history())
    assert 2 <= done < 60
    assert [r.epoch for r in run.history()] == list(range(1, done + 1))
    assert "SIGTERM: stopping after this epoch is written" in job.log_tail(40)
    with pytest.raises(JobError, match="on-ray is not running"):
        jobs.stop("on-ray", tmp_path)

    # Resume: a new submission continues from the last complete epoch.
    first_submission = job.submission_id
    jobs.resume("on-ray", tmp_path)
    wait_until(lambda: len(run.history()) > done, 120, message=seen("the resumed trainer's first epoch", tmp_path))

    # A trainer killed on its node (kill -9: Ray says FAILED) is interrupted and resumable, as a
    # local one is; it did begin, so it is no failed start.
    os.kill(int(run.status()["pid"]), signal.SIGKILL)
    job = wait_until(lambda: job_in("interrupted", "on-ray", tmp_path), 60, message=seen("the kill to show", tmp_path))
    assert job.ray_status == "FAILED" and job.resumable
    jobs.resume("on-ray", tmp_path)
    job = wait_until(lambda: job_in("finished", "on-ray", tmp_path), 180, interval=0.5,
                     message=seen("the resumed job to finish", tmp_path))
    assert job.ray_status == "SUCCEEDED" and job.submission_id != first_submission
    history = run.history()
    assert [r.epoch for r in history] == list(range(1, 61))
    assert job.epochs_done == 60
    assert history[done].finished_at > history[done - 1].finished_at  # continued, not redone
    assert [(j.name, j.state) for j in jobs.list_jobs(tmp_path)] == [("on-ray", "finished")]
    with pytest.raises(JobError, match="on-ray is finished; only stopped or interrupted"):
        jobs.resume("on-ray", tmp_path)


def test_waiting_for_a_node_is_queued_and_can_be_cancelled(on_ray, tmp_path):
    # The head has no GPU: a job that asks for one waits (Ray's PENDING) and shows as queued.
    jobs.start(JobRequest(name="wants-gpu", epochs=3, limit=600, device="cuda"), root=tmp_path)
    job = wait_until(lambda: job_in("queued", "wants-gpu", tmp_path), 30, message=seen("the job to wait", tmp_path))
    assert job.ray_status == "PENDING" and job.submission_id
    [listed] = jobs.list_jobs(tmp_path)
    assert (listed.name, listed.queued, listed.place, listed.starts_in) == ("wants-gpu", True, 1, None)
    assert jobs.start_queued(tmp_path) == []  # Ray holds it: nothing for this machine to launch
    jobs.cancel("wants-gpu", tmp_path)
    assert not (tmp_path / "wants-gpu").exists()
    assert jobs.list_jobs(tmp_path) == []


def test_failed_entrypoint_says_why(on_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("CGAN_RAY_PYTHON", "/nonexistent/python")
    jobs.start(JobRequest(name="no-python", epochs=3, limit=600), root=tmp_path)
    job = wait_until(lambda: job_in("failed", "no-python", tmp_path), 60, message=seen("the job to fail", tmp_path))
    assert job.ray_status == "FAILED"
    assert "/nonexistent/python" in job.log_tail(5)  # the shell's error, in the run's log
    assert job.message and not job.resumable
