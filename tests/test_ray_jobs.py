"""Training on a Ray cluster: a real local Ray head on loopback, a real trainer submitted as a Ray
job through cgan.ray_jobs (the code the app calls with CGAN_JOBS_BACKEND=ray), its epochs arriving
in the run directory, Stop (Ray's stop_job: SIGTERM, the epoch is written) and Resume.

The head gets its own ports and temporary folder and is torn down at the end (never `ray stop`,
which would end every Ray on the machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from cgan.jobs import JobError, JobRequest
from cgan.runs import Run

try:
    import ray  # noqa: F401
except ImportError:
    if os.environ.get("CGAN_REQUIRE_RAY"):
        raise
    pytest.skip("Ray is not installed (pip install -r requirements-ray.txt)", allow_module_level=True)

from browser_support import free_port  # noqa: E402
from cgan import ray_jobs  # noqa: E402

RAY = Path(sys.executable).parent / "ray"


def wait_until(condition, timeout: float, what: str, every: float = 0.2, root: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    jobs = [(job.name, job.state, job.ray_status, job.message) for job in ray_jobs.list_jobs(root)] if root else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} {jobs}")


@pytest.fixture(scope="module")
def ray_head():
    """A one-node Ray cluster on 127.0.0.1 with free ports; yields its job submission address."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
    ports = {name: free_port() for name in (
        "port", "dashboard-port", "ray-client-server-port", "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port",
        "node-manager-port", "object-manager-port",
    )}
    worker_base = free_port() // 100 * 100 % 50000 + 10000
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
        wait_until(answers, 120, "the Ray dashboard", every=0.5)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)  # --block: the launcher stops the processes it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        log.close()


def test_backend_setting(monkeypatch):
    monkeypatch.delenv("CGAN_JOBS_BACKEND", raising=False)
    assert ray_jobs.jobs_backend() == "local"
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "Ray")
    assert ray_jobs.jobs_backend() == "ray"
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "slurm")
    with pytest.raises(JobError, match="CGAN_JOBS_BACKEND=slurm: must be one of local, ray"):
        ray_jobs.jobs_backend()


def test_unreachable_cluster_is_one_line(tmp_path):
    port = free_port()  # nothing listens there
    with pytest.raises(JobError, match=f"Ray cluster at http://127.0.0.1:{port} does not answer"):
        ray_jobs.start(JobRequest(name="nowhere", limit=600, epochs=3), root=tmp_path,
                       address=f"http://127.0.0.1:{port}")
    assert not (tmp_path / "nowhere").exists()  # nothing left behind


def test_train_stop_resume_on_ray(ray_head, tmp_path, monkeypatch):
    monkeypatch.setenv("CGAN_RAY_PYTHON", sys.executable)  # this venv stands for the nodes' Python
    request = JobRequest(name="on-ray", model="cgan", epochs=60, batch_size=100, limit=600, seed=3)
    job = ray_jobs.start(request, root=tmp_path, address=ray_head)
    assert job.state in ("queued", "running")
    assert (tmp_path / ".ray-jobs" / "on-ray.json").is_file()

    # Its epochs arrive in the run directory, written by the trainer Ray started.
    run = Run(tmp_path / "on-ray")
    wait_until(lambda: len(run.history()) >= 2, 120, "two epochs in the run directory", root=tmp_path)
    job = ray_jobs.get_job("on-ray", tmp_path)
    assert job.state == "running" and job.ray_status == "RUNNING", (job.state, job.ray_status, job.message)
    assert "[  1/60]" in job.log_tail(40)  # the trainer's output is in the run's train.log

    # Stop: Ray's SIGTERM; the trainer writes the epoch it is on and says it stopped.
    ray_jobs.stop("on-ray", tmp_path)
    job = wait_until(lambda: (j := ray_jobs.get_job("on-ray", tmp_path)).state == "stopped" and j,
                     60, "the job to stop", root=tmp_path)
    assert job.ray_status == "STOPPED"
    assert run.status()["state"] == "stopped"
    done = len(run.history())
    assert 2 <= done < 60
    assert [r.epoch for r in run.history()] == list(range(1, done + 1))
    assert "SIGTERM: stopping after this epoch is written" in job.log_tail(40)
    with pytest.raises(JobError, match="on-ray is not running"):
        ray_jobs.stop("on-ray", tmp_path)

    # Resume: a new submission continues from the last complete epoch to the end.
    first_submission = job.submission_id
    job = ray_jobs.resume("on-ray", tmp_path)
    assert job.submission_id != first_submission
    job = wait_until(lambda: (j := ray_jobs.get_job("on-ray", tmp_path)).state == "finished" and j,
                     180, "the resumed job to finish", every=0.5, root=tmp_path)
    assert job.ray_status == "SUCCEEDED"
    history = run.history()
    assert [r.epoch for r in history] == list(range(1, 61))
    assert job.epochs_done == 60
    assert history[done].finished_at > history[done - 1].finished_at  # continued, not redone
    assert [j.name for j in ray_jobs.list_jobs(tmp_path)] == ["on-ray"]
    with pytest.raises(JobError, match="on-ray is finished; only stopped or interrupted"):
        ray_jobs.resume("on-ray", tmp_path)


def test_failed_entrypoint_says_why(ray_head, tmp_path, monkeypatch):
    monkeypatch.setenv("CGAN_RAY_PYTHON", "/nonexistent/python")
    job = ray_jobs.start(JobRequest(name="no-python", epochs=3, limit=600), root=tmp_path, address=ray_head)
    job = wait_until(lambda: (j := ray_jobs.get_job("no-python", tmp_path)).state == "failed" and j,
                     60, "the job to fail", root=tmp_path)
    assert job.ray_status == "FAILED"
    assert "/nonexistent/python" in job.log_tail(5)  # the shell's error, in the run's log
    assert job.message
