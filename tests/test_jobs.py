"""Training jobs as real trainer processes: start, watch, stop, kill, resume, limits and races."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cgan import jobs
from cgan.config import TrainConfig
from cgan.jobs import local, settings
from cgan.limits import MIN_QUALITY_SAMPLES, QUALITY_SAMPLES
from cgan.processes import process_start_time
from cgan.runs import EpochRecord, Run
from cgan.training.cli import EXIT_STOPPED
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent


def settled(name: str, root: Path) -> jobs.Job:
    """The job once its process has gone (its exit status is known to this process, which
    launched it, once the process has ended, a moment after the run says how it ended)."""
    def ended():
        job = jobs.get_job(name, root)
        ours = job is not None and job.pid in local._children
        return job and not job.active and (job.returncode is not None or not ours) and job
    return wait_until(ended, message=f"{name} to end")


def quick(name: str, **overrides) -> jobs.JobRequest:
    """A run of a few seconds: 500 images, batches of 50."""
    return jobs.JobRequest(**{"name": name, "epochs": 2, "limit": 500, "batch_size": 50, **overrides})


def slow(name: str, epochs: int = 300) -> jobs.JobRequest:
    """A run that keeps going until told otherwise (10 iterations an epoch)."""
    return jobs.JobRequest(name=name, epochs=epochs, limit=1000, batch_size=100)


def assert_epochs_complete(run: Run) -> list[int]:
    """Every listed epoch has its grid and weights, and last.pt holds the newest one."""
    epochs = run.epochs()
    assert epochs == list(range(1, len(epochs) + 1))
    for epoch in epochs:
        assert run.grid(epoch).shape == (280, 280)
        assert run.weights_path(epoch).is_file()
    assert int(run.load_resume_state()["epoch"]) == epochs[-1]
    return epochs


@pytest.fixture
def root(tmp_path, monkeypatch, no_leftover_trainers) -> Path:
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    return no_leftover_trainers(tmp_path)


def test_a_job_trains_detached_and_its_epochs_are_listed(root):
    job = jobs.start(quick("demo"), root=root)
    assert job.state == "running"
    assert job.command[:3] == [sys.executable, "-m", "cgan.train"]
    assert job.arguments[job.arguments.index("--out") + 1] == str(root / "demo")
    # Detached: its own session, no stdin, run from the repository root, unbuffered output.
    assert os.getsid(job.pid) == job.pid
    assert os.readlink(f"/proc/{job.pid}/fd/0") == "/dev/null"
    assert Path(os.readlink(f"/proc/{job.pid}/cwd")) == ROOT
    assert b"PYTHONUNBUFFERED=1" in Path(f"/proc/{job.pid}/environ").read_bytes().split(b"\0")

    job = settled("demo", root)
    assert job.state == "finished" and job.returncode == 0
    run = Run(root / "demo")
    assert assert_epochs_complete(run) == [1, 2]
    assert [record.epoch for record in job.history] == [1, 2]
    assert (job.epochs_done, job.epochs_total) == (2, 2)
    assert run.status()["state"] == "finished"
    assert job.log_path == run.log_path
    assert "[  2/2] ptime:" in run.log_path.read_text()
    assert job.eta_seconds() is None
    # The process was reaped: no zombie left behind by the process that started it.
    wait_until(lambda: not Path(f"/proc/{job.pid}").exists(), timeout=10, message="the trainer to be reaped")
    # The launch request lives in the run itself: no record anywhere else.
    status = json.loads(run.status_path.read_text())
    assert status["pid"] == job.pid and status["arguments"] == job.arguments
    assert status["device"] == "cpu" and isinstance(status["launched_at"], float)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["demo"]
    assert [j.name for j in jobs.list_jobs(root)] == ["demo"]


def test_stop_ends_after_a_complete_epoch_and_the_limit_holds(root):
    job = jobs.start(slow("long"), root=root)
    wait_until(lambda: jobs.get_job("long", root).epochs_done >= 1, message="the first epoch")
    running = jobs.get_job("long", root)
    assert running.state == "running"
    eta = running.eta_seconds()
    assert eta is not None and eta > 0

    # The limit (one job) queues another start: it waits, first in line, with an estimated start.
    extra = jobs.start(quick("extra"), root=root, max_running=1)
    assert extra.state == "queued" and extra.place == 1 and extra.pid is None
    assert extra.starts_in is not None and extra.starts_in > 0
    assert not (root / ".jobs").exists()
    assert jobs.start_queued(root, max_running=1) == []  # no free slot yet
    jobs.cancel("extra", root)
    assert not (root / "extra").exists()
    # A running job is never deleted.
    with pytest.raises(jobs.JobError, match="stop it"):
        jobs.delete("long", root)
    assert (root / "long" / "config.json").is_file()

    assert jobs.stop("long", root).state == "stopping"
    job = settled("long", root)
    assert job.state == "stopped" and job.returncode == EXIT_STOPPED
    run = Run(root / "long")
    assert run.status()["state"] == "stopped"
    epochs = assert_epochs_complete(run)
    assert 1 <= epochs[-1] < 300
    assert job.resumable
    jobs.delete("long", root)
    assert not (root / "long").exists() and jobs.list_jobs(root) == []


def test_a_killed_job_is_interrupted_and_resume_completes_it(root, monkeypatch):
    epochs = 4
    job = jobs.start(slow("killed", epochs=epochs), root=root)
    wait_until(lambda: Run(root / "killed").epochs(), interval=0.01, message="the first epoch")
    os.kill(job.pid, signal.SIGKILL)
    job = settled("killed", root)
    assert job.state == "interrupted" and job.returncode == -signal.SIGKILL
    assert Run(root / "killed").status()["state"] == "running"  # the trainer never said otherwise

    # A later app process (no exit status known) sees the same from disk alone.
    monkeypatch.setattr(local, "_children", {})
    job = jobs.get_job("killed", root)
    assert job.returncode is None
    assert job.state == "interrupted" and job.resumable
    done_before = job.epochs_done
    assert done_before < epochs

    job = jobs.resume("killed", root)
    assert job.state == "running"
    assert b"--resume" in Path(f"/proc/{job.pid}/cmdline").read_bytes().split(b"\0")
    job = settled("killed", root)
    assert job.state == "finished", job.log_tail()
    assert assert_epochs_complete(Run(root / "killed")) == list(range(1, epochs + 1))
    log = Run(root / "killed").log_path.read_text()
    assert f"epochs {done_before + 1}-{epochs}" in log  # the second process continued, it did not restart


def test_a_trainer_that_refuses_to_start_is_failed_with_its_reason(root):
    # Offered CUDA on a machine without it, the trainer refuses before training.
    job = jobs.start(quick("no-gpu", device="cuda"), root=root, devices=["cpu", "cuda"])
    job = settled("no-gpu", root)
    if job.state == "finished":
        pytest.skip("this machine has CUDA")
    assert job.state == "failed" and job.returncode == 2
    assert "--device cuda: no CUDA device" in job.message
    assert not job.resumable
    jobs.delete("no-gpu", root)
    assert not (root / "no-gpu").exists()


def test_concurrent_starts_with_one_name_give_one_run(root):
    barrier = threading.Barrier(6)
    started, refused = [], []

    def press_start():
        barrier.wait()
        try:
            started.append(jobs.start(quick("race"), root=root, max_running=10))
        except jobs.JobError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=press_start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1 and len(refused) == 5
    assert all(exc.field == "name" and "already exists" in str(exc) for exc in refused)
    assert [path.name for path in root.iterdir() if not path.name.startswith(".")] == ["race"]
    assert jobs.get_job("race", root).pid == started[0].pid  # the record is the winner's


def test_a_recycled_pid_or_a_zombie_is_not_a_running_job(root):
    # A status whose pid now belongs to another live process (this one) with another start time.
    ghost = Run(root / "ghost")
    ghost.path.mkdir()
    ghost.write_status("running", pid=os.getpid(), pid_started="1", epochs_total=3, device="cpu")
    assert jobs.get_job("ghost", root).state == "interrupted"
    assert process_start_time(os.getpid()) is not None

    # An exited child nobody has waited for yet is a zombie: dead, though its pid still exists.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_until(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
                 timeout=30, message="a zombie")
        assert process_start_time(child.pid) is None
    finally:
        child.wait()


def test_the_command_is_one_the_trainer_accepts(tmp_path):
    from cgan.training.cli import build_parser, config_from_args

    cgan = quick("a").arguments(tmp_path / "a")
    # The configuration's own flags (those that differ from the model's defaults), then the job's.
    assert cgan == [
        "--model", "cgan", "--epochs", "2", "--limit", "500", "--batch-size", "50",
        "--device", "cpu", "--out", str(tmp_path / "a"),
    ]
    cdcgan = jobs.JobRequest(name="b", model="cdcgan", epochs=3, batch_size=100, lr=2e-4, width=0.25)
    assert cdcgan.arguments(tmp_path / "b")[:6] == ["--model", "cdcgan", "--epochs", "3", "--width", "0.25"]
    # The same request from a TrainConfig: the form's way.
    assert jobs.JobRequest("b", TrainConfig.for_model("cdcgan", epochs=3, batch_size=100, width=0.25)) == cdcgan
    for arguments, expected in [(cgan, dict(model="cgan", limit=500, width=1.0)),
                                (cdcgan.arguments(tmp_path / "b"), dict(model="cdcgan", limit=None, width=0.25))]:
        parser = build_parser()
        config, run = config_from_args(parser.parse_args(arguments), parser)
        assert {key: getattr(config, key) for key in expected} == expected
        assert run.path == Path(arguments[-1])


def test_eta_comes_from_the_steady_epochs_of_this_process():
    started = 1000.0
    record = lambda epoch, wall, at: EpochRecord(epoch, 1.0, 1.0, wall, wall, at)  # noqa: E731
    job = jobs.Job(Run("/nowhere/eta"), state="running", epochs_total=10, started_at=started)
    # Epochs 1-2 came from an earlier process; epoch 3 warmed up this one; 4 and 5 are steady.
    job.history = [record(1, 9.0, 500), record(2, 9.0, 509), record(3, 6.0, 1010),
                   record(4, 2.0, 1012), record(5, 4.0, 1016)]
    assert job.eta_seconds(now=1016) == pytest.approx(5 * 3.0)
    assert job.eta_seconds(now=1020) == pytest.approx(5 * 3.0 - 4)  # counts down between epochs
    assert job.eta_seconds(now=2000) == 0.0
    job.history = job.history[:3]  # only the warm-up epoch so far: it is all there is to go on
    assert job.eta_seconds(now=1010) == pytest.approx(7 * 6.0)
    job.state = "finished"
    assert job.eta_seconds(now=1010) is None


@pytest.mark.parametrize(
    "change, field, words",
    [
        (dict(name="../outside"), "name", "Run name"),
        (dict(name=""), "name", "Run name"),
        (dict(name="taken"), "name", "already exists"),
        (dict(epochs=0), "epochs", "Epochs: must be a whole number from 1 to"),
        (dict(epochs=100_001), "epochs", "Epochs: must be a whole number from 1 to"),
        (dict(batch_size=0), "batch_size", "Batch size"),
        (dict(batch_size=600), "batch_size", "(the training images)"),
        (dict(lr=0.0), "lr", "Learning rate"),
        (dict(lr=3.0), "lr", "Learning rate"),
        (dict(lr=float("inf")), "lr", "Learning rate"),
        (dict(lr=float("nan")), "lr", "Learning rate"),
        (dict(seed=-1), "seed", "Seed"),
        (dict(limit=0), "limit", "Training images"),
        (dict(limit=70_000), "limit", "Training images"),
        (dict(model="cdcgan", width=0.0), "width", "Width"),
        (dict(device="cuda"), "device", "not available"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_made(root, change, field, words):
    (root / "taken").mkdir()
    before = sorted(p.name for p in root.iterdir())
    request = quick(change.get("name", "fresh"), **{k: v for k, v in change.items() if k != "name"})
    problems = request.problems(root, devices=["cpu"])
    assert list(problems) == [field] and words in problems[field]
    with pytest.raises(jobs.JobError) as refused:
        jobs.start(request, root=root, devices=["cpu"])
    assert refused.value.field == field
    assert sorted(p.name for p in root.iterdir()) == before  # no run folder, no job record


def test_quality_is_measured_at_most_a_fifth_of_the_training_time():
    for model, images, width in [("cgan", 10_000, 1.0), ("cgan", 60_000, 1.0), ("cgan", 500, 1.0),
                                 ("cdcgan", 10_000, 1.0), ("cdcgan", 60_000, 0.25), ("cdcgan", 100, 0.125)]:
        every = jobs.measure_every(model, images, width)
        scale = jobs.cdcgan_cost(width) if model == "cdcgan" else 1.0
        epoch = jobs.EPOCH_SECONDS_PER_10K[model] * scale * images / 10_000
        measure = jobs.MEASURE_SECONDS[model] * scale
        assert measure / every <= 0.2 * epoch + 1e-9  # at most a fifth
        assert every == 1 or measure / (every - 1) > 0.2 * epoch  # and no rarer than that needs
    assert jobs.measure_every("cgan", 10_000) == 22  # 1.3 s against 0.3 s epochs
    assert jobs.measure_every("cgan", 60_000) == 4
    assert jobs.measure_every("cdcgan", 10_000) == 1
    # The trainer is told: the request's arguments carry it.
    request = quick("q", metrics_every=jobs.measure_every("cgan", 500))
    arguments = request.arguments(Path("/x/q"))
    assert arguments[arguments.index("--metrics-every") + 1] == "434"


def test_a_short_run_measures_on_fewer_samples_so_its_curves_grow_while_it_trains():
    # The Train page's default form: 10 epochs of 10,000 CGAN images (0.3 s each). A full
    # measurement (1.3 s) fits only after the last epoch; 100 samples of each digit fit every 3.
    plan = jobs.measure_plan("cgan", 10_000, 1.0, 10)
    assert plan == jobs.MeasurePlan(every=3, per_digit=100)
    for model, images, width, epochs in [("cgan", 10_000, 1.0, 10), ("cgan", 60_000, 1.0, 10),
                                         ("cgan", 10_000, 1.0, 100), ("cdcgan", 10_000, 0.25, 3)]:
        plan = jobs.measure_plan(model, images, width, epochs)
        request = quick("q", model=model, epochs=epochs, limit=images, width=width,
                        metrics_every=plan.every, metrics_samples=plan.per_digit)
        training = jobs.estimated_seconds(dataclasses.replace(request.config, metrics_every=0))
        measuring = jobs.estimated_seconds(request.config) - training
        one = measuring / (epochs / plan.every + 1)  # estimated_seconds counts one after the last
        assert measuring - one <= 0.2 * training + 1e-9  # at most a fifth of the training time
        points = len(range(plan.every, epochs + 1, plan.every)) + (epochs % plan.every != 0)
        assert points >= min(jobs.LIVE_POINTS - 1, epochs), (model, images, epochs, plan)
        assert request.config.problems() == {}
        assert MIN_QUALITY_SAMPLES <= plan.per_digit <= QUALITY_SAMPLES
    # The lecture's run (30 epochs of 30,000 images): a point after every epoch, on 100 samples.
    assert jobs.measure_plan("cgan", 30_000, 1.0, 30) == jobs.MeasurePlan(every=1, per_digit=100)
    assert jobs.measure_plan("cgan", 60_000, 1.0, 15) == jobs.MeasurePlan(every=1, per_digit=250)
    # Long runs keep full measurements: the shipped runs' curves and a new run's compare.
    assert jobs.measure_plan("cgan", 60_000, 1.0, 200) == jobs.MeasurePlan(every=4, per_digit=1000)
    # The trainer is told: --metrics-samples only when it is not the full size.
    request = quick("q", metrics_every=3, metrics_samples=100)
    assert request.arguments(Path("/x/q"))[-8:-4] == ["--metrics-every", "3", "--metrics-samples", "100"]
    assert "--metrics-samples" not in quick("q", metrics_every=3).arguments(Path("/x/q"))


def test_starts_beyond_the_limit_queue_in_order_and_start_as_slots_free(root, monkeypatch):
    monkeypatch.setenv("CGAN_MAX_JOBS", "1")
    first = jobs.start(slow("first"), root=root)
    second = jobs.start(quick("second"), root=root)
    third = jobs.start(quick("third"), root=root)
    assert first.state == "running"
    assert (second.state, second.place, third.state, third.place) == ("queued", 1, "queued", 2)
    assert third.starts_in >= second.starts_in + second.estimated_seconds - 1e-6
    # The queue lives in the runs: a new app process (no memory of these starts) sees it.
    monkeypatch.setattr(local, "_children", {})
    listed = {job.name: job for job in jobs.list_jobs(root)}
    assert (listed["second"].place, listed["third"].place) == (1, 2)
    assert Run(root / "second").state() == "queued"
    # A session limit refuses a start beyond it, with one line, and makes nothing.
    monkeypatch.setenv("CGAN_MAX_JOBS_PER_SESSION", "1")
    jobs.start(quick("mine"), root=root, session="tab-1")
    with pytest.raises(jobs.JobError, match="already have 1 of at most 1") as refused:
        jobs.start(quick("mine-too"), root=root, session="tab-1")
    assert refused.value.field == "capacity" and not (root / "mine-too").exists()
    jobs.cancel("mine", root)

    jobs.stop("first", root)
    settled("first", root)
    # Whoever looks next starts the oldest queued job, exactly once (here: the command line).
    env = {**os.environ, "CGAN_CHECKPOINTS": str(root),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    poll = subprocess.run([sys.executable, "-m", "cgan.jobs", "poll"], capture_output=True,
                          text=True, env=env, timeout=120, cwd=root)
    assert poll.returncode == 0 and poll.stdout.strip() == "started second", poll.stderr
    assert jobs.get_job("third", root).state == "queued"
    assert jobs.start_queued(root) == []
    wait_until(lambda: jobs.get_job("second", root).state == "finished", message="second to finish")
    assert jobs.start_queued(root) == ["third"]
    wait_until(lambda: jobs.get_job("third", root).state == "finished", message="third to finish")
    assert assert_epochs_complete(Run(root / "third")) == [1, 2]


def test_the_local_backend_never_imports_ray(tmp_path):
    """Ray is an optional, heavy install: the default backend lists, starts and stops without it."""
    script = (
        "import sys; from cgan import jobs\n"
        f"root = {str(tmp_path)!r}\n"
        "jobs.start(jobs.JobRequest(name='a', epochs=1, limit=500, batch_size=50), root=root)\n"
        "jobs.list_jobs(root); jobs.start_queued(root)\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CGAN_JOBS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    settled("a", tmp_path)


def test_adam_beta1_and_the_weight_average_reach_the_trainer(tmp_path):
    wrong = jobs.JobRequest(name="b", beta1=1.0, ema=1.5).problems(tmp_path, ["cpu"])
    assert wrong["beta1"].startswith("Adam beta1: must be a number from 0 up to")
    assert wrong["ema"].startswith("Weight average: must be a number from 0 (off)")
    jobs.start(quick("b", beta1=0.3, ema=0.99), root=tmp_path)
    job = settled("b", tmp_path)
    assert job.state == "finished", job.message
    config = job.run.config()
    assert (config["beta1"], config["ema"]) == (0.3, 0.99)


def test_a_problem_keeps_its_label_and_template_for_translation(tmp_path):
    (tmp_path / "taken").mkdir()
    problems = jobs.JobRequest(name="b", epochs=0, device="tpu").problems(tmp_path, ["cpu"])
    epochs = problems["epochs"]
    assert epochs == "Epochs: must be a whole number from 1 to 100,000."
    assert (epochs.label, epochs.problem.template) == ("Epochs", "must be a whole number from {low} to {high}")
    assert jobs.SENTENCE.format(label=epochs.label, problem=epochs.problem.template.format(
        **epochs.problem.values)) == epochs
    assert problems["device"] == "Device: tpu is not available here."
    assert problems["device"].problem.values == {"device": "tpu"}
    taken = jobs.JobRequest(name="taken", epochs=1).problems(tmp_path, ["cpu"])["name"]
    assert taken == "A run named taken already exists: choose another name." and taken.label is None
    bad = jobs.JobRequest(name="a/b").problems(tmp_path, ["cpu"])["name"]
    assert bad.startswith("Run name: 1-64 letters") and bad.label == "Run name"
    with pytest.raises(jobs.JobError) as refused:
        jobs.start(jobs.JobRequest(name="b", epochs=0), root=tmp_path, devices=["cpu"])
    assert refused.value.problem == epochs and refused.value.problem.label == "Epochs"


def test_one_duration_format_and_one_time_left():
    assert [jobs.duration(s) for s in (0, 40, 59.6, 185, 3599, 4800)] == [
        "0 s", "40 s", "1 min 00 s", "3 min 05 s", "59 min 59 s", "1 h 20 min"]
    chinese = {"{seconds} s": "{seconds} 秒", "{minutes} min {seconds} s": "{minutes} 分 {seconds} 秒"}
    assert jobs.duration(185, lambda text: chinese.get(text, text)) == "3 分 05 秒"
    record = lambda epoch, wall, at: EpochRecord(epoch, 1.0, 1.0, wall, wall, at)  # noqa: E731
    history = [record(1, 9.0, 500), record(2, 3.0, 1003), record(3, 3.0, 1006)]
    job = jobs.Job(Run("/nowhere/eta"), state="running", epochs_total=10, started_at=1000.0, history=history)
    assert job.eta_seconds(now=1008) == jobs.seconds_left(history, 10, 1000.0, now=1008) == 7 * 3.0 - 2
    assert jobs.seconds_left([], 10, 1000.0) is None


def test_a_launched_runs_configuration_reads_from_its_arguments(tmp_path):
    request = jobs.JobRequest(name="w", model="cdcgan", epochs=3, limit=600, width=0.5, ema=0.99)
    run = Run(tmp_path / "w")
    run.path.mkdir()
    run.write_status("queued", arguments=request.arguments(run.path), device="cpu", queued_at=1.0)
    assert jobs.get_job("w", tmp_path).config() == request.config
    assert jobs.config_of_arguments(["--resume", "--out", str(run.path), "--device", "cpu"]) is None
    assert jobs.config_of_arguments(["--epochs", "many"]) is None
    assert jobs.config_of_arguments(["--model", "gpt"]) is None


def test_one_backend_object_says_what_differs(monkeypatch):
    monkeypatch.delenv("CGAN_JOBS_BACKEND", raising=False)
    monkeypatch.setenv("CGAN_MAX_JOBS", "3")
    assert type(settings.backend()).__name__ == "LocalBackend"
    assert settings.backend().capacity(None) == 3 and settings.backend().capacity(2) == 2
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "ray")
    ray = settings.backend()
    assert (ray.name, ray.capacity(2), jobs.available_devices()) == ("ray", None, ["cpu", "cuda"])
    monkeypatch.setenv("CGAN_JOBS_BACKEND", "slurm")
    assert settings.reading_backend().name == "local"  # reading shows the run folders meanwhile
    with pytest.raises(jobs.JobError, match="CGAN_JOBS_BACKEND=slurm"):
        settings.backend()
