"""Inputs a hostile user (or a damaged disk) hands the library and its command lines: huge keep
ranges, PIDs on disk that are not the run's trainer, odd run names, non-finite and deeply nested
JSON, special files, full disks and read-only folders, symlinks out of a run, a lying last.pt, and
settings that used to end in a traceback. The rule everywhere: one line and a clear exit status,
nothing left behind, and no process or file outside the run touched."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from cgan.keep import parse_keep
from cgan.processes import is_trainer_of, process_start_time, signal_trainer
from cgan.runs import Run, RunError
from cgan import jobs
from tests.conftest import wait_until
from tests.fuzz_support import assert_clean_outcome, cli_env, run_module

ROOT = Path(__file__).resolve().parent.parent


def quick_argv(out: Path, *extra: str) -> list[str]:
    return ["--out", str(out), "--epochs", "2", "--limit", "150", "--seed", "5",
            "--device", "cpu", *extra]


@pytest.fixture
def tiny(tiny_run) -> Run:
    """A real 2-epoch CGAN run on 150 images (the session's; tests change only copies of it)."""
    return tiny_run


def copy_of(run: Run, where: Path, name: str = "run") -> Run:
    shutil.copytree(run.path, where / name)
    return Run(where / name)


# ---------------------------------------------------------------------------------------------
# 1. --keep ranges are checked and held without being spelled out


def test_a_huge_keep_range_costs_no_memory():
    tracemalloc.start()
    try:
        policy = parse_keep("1-3000000,every7,10000000000-10000000005")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000, f"parse_keep held {peak:,} bytes"
    kept = [e for e in (1, 2_999_999, 3_000_000, 3_000_001, 3_000_004, 10**10, 10**10 + 5, 10**10 + 6)
            if policy.keeps(e, final_epoch=10**11)]
    assert kept == [1, 2_999_999, 3_000_000, 3_000_004, 10**10, 10**10 + 5]


def limited_memory(gigabytes: float):
    limit = int(gigabytes * 2**30)
    return lambda: resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def test_a_huge_keep_range_trains_within_bounded_memory(tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "cgan.train", *quick_argv(out, "--keep", "1-10000000000")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=cli_env(),
                            preexec_fn=limited_memory(3))
    assert result.returncode == 0, result.stderr[-2000:]
    assert Run(out).weight_epochs() == [1, 2]
    # The same keep written into config.json: --resume reads it back without spelling it out.
    result = subprocess.run([sys.executable, "-m", "cgan.train", "--out", str(out), "--resume", "--epochs", "3",
                             "--device", "cpu"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env=cli_env(), preexec_fn=limited_memory(3))
    assert result.returncode == 0, result.stderr[-2000:]
    assert Run(out).weight_epochs() == [1, 2, 3]
    assert Run(out).config()["keep"] == "1-10000000000"


# ---------------------------------------------------------------------------------------------
# 2. A pid read from disk is signalled only when it is this run's trainer


def sleeper(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_stop_signals_only_the_runs_own_trainer(tmp_path, tiny):
    root = tmp_path / "checkpoints"
    root.mkdir()
    run = copy_of(tiny, root, "victim")
    bystanders = [
        sleeper("sleep", "120"),
        # A command line that names the run but is not the trainer module (code given with -c).
        sleeper(sys.executable, "-c", "import time; time.sleep(120)", "-m", "cgan.train", "--out", str(run.path)),
        # The trainer module, but of another run.
        sleeper(sys.executable, "-c", "import time; time.sleep(120)", "--out", str(run.path)),
    ]
    try:
        for process in bystanders:
            started = process_start_time(process.pid)
            assert started is not None
            run.write_status("running", pid=process.pid, pid_started=started, epochs_total=3, device="cpu")
            assert run.state() == "interrupted", process.args
            with pytest.raises(jobs.JobError) as info:
                jobs.stop("victim", root)
            assert "\n" not in str(info.value)  # "not running" (no trainer is alive), one line
            assert not signal_trainer(process.pid, started, run.path, signal.SIGTERM)
            time.sleep(0.2)
            assert process.poll() is None, f"{process.args} was signalled"
        # While the run's lock is held (a trainer is alive), a status naming another process
        # still gets no signal sent to it.
        started = process_start_time(bystanders[0].pid)
        with run.trainer_lock():
            run.write_status("running", pid=bystanders[0].pid, pid_started=started)
            with pytest.raises(jobs.JobError) as info:
                jobs.stop("victim", root)
            assert "nothing was signalled" in str(info.value)
        time.sleep(0.2)
        assert bystanders[0].poll() is None
        # A status without the start time names no trainer either.
        run.write_status("running", pid=bystanders[0].pid, pid_started=None)
        assert run.state() == "interrupted" and not run.trainer_alive()
    finally:
        for process in bystanders:
            process.kill()
            process.wait()


def test_a_trainer_started_at_a_terminal_with_a_relative_out_is_recognised_and_stopped(tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    log = open(tmp_path / "train.log", "wb")  # noqa: SIM115 (closed below)
    trainer = subprocess.Popen(
        [sys.executable, "-m", "cgan.train", "--out", "checkpoints/by hand", "--epochs", "1000", "--limit", "150",
         "--device", "cpu"], cwd=tmp_path, env=cli_env(), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        run = Run(root / "by hand")
        wait_until(lambda: len(run.history()) >= 1, 120, message="the first epoch", ignore=(RunError,))
        status = run.status()
        assert status["pid"] == trainer.pid
        assert is_trainer_of(trainer.pid, status["pid_started"], run.path)
        assert not is_trainer_of(trainer.pid, status["pid_started"], tmp_path / "another")
        job = jobs.stop("by hand", root)  # a name with a space
        assert job.state == "stopping"
        assert trainer.wait(timeout=120) == 130
    finally:
        trainer.kill()
        trainer.wait()
        log.close()


# ---------------------------------------------------------------------------------------------
# 4. Run names: control characters refused by every job control; spaces work for stop, resume
# and delete


BAD_NAMES = ["new\n", "a\rb", "tab\there", "nul\x00", "esc\x1b[31m", "zero\u200bwidth", "line\u2028sep",
             "../up", "a/b", ".hidden", "..", "", "x" * 300]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
def test_job_controls_refuse_names_that_are_no_folders_name(tmp_path, name):
    root = tmp_path / "checkpoints"
    root.mkdir()
    calls = {
        "start": lambda: jobs.start(jobs.JobRequest(name=name, epochs=1, limit=150), root=root),
        "stop": lambda: jobs.stop(name, root),
        "resume": lambda: jobs.resume(name, root),
        "delete": lambda: jobs.delete(name, root),
        "cancel": lambda: jobs.cancel(name, root),
        "get_job": lambda: jobs.get_job(name, root),
    }
    for verb, call in calls.items():
        with pytest.raises(jobs.JobError) as info:
            call()
        message = str(info.value)
        assert message and "\n" not in message and "\r" not in message, (verb, message)
    assert [p.name for p in root.iterdir() if p.name != jobs.LOCK_NAME] == []


def test_a_run_whose_name_has_a_space_is_stopped_resumed_and_deleted(tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    name = "my run"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "cgan.train", "--out", str(root / name), "--epochs", "1000", "--limit", "150",
         "--device", "cpu"], cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        run = Run(root / name)
        wait_until(lambda: len(run.history()) >= 1, 120, message="the first epoch", ignore=(RunError,))
        assert jobs.get_job(name, root).state == "running"
        assert jobs.stop(name, root).state == "stopping"
        assert trainer.wait(timeout=120) == 130
        assert jobs.get_job(name, root).state == "stopped"
        done = len(run.history())
        resumed = jobs.resume(name, root)
        assert resumed.state == "running"
        wait_until(lambda: len(run.history()) > done, 120, message="an epoch after the resume", ignore=(RunError,))
        jobs.stop(name, root)
        wait_until(lambda: not jobs.get_job(name, root).active, 120, message="the resumed trainer to stop",
                   ignore=(RunError,))
        assert run.epochs() == list(range(1, len(run.epochs()) + 1))
        jobs.delete(name, root)
        assert not (root / name).exists()
    finally:
        trainer.kill()
        trainer.wait()
        for job in jobs.list_jobs(root):
            if job.pid and job.is_alive():
                os.kill(job.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# 5. Non-finite numbers, deep nesting and impossible epochs are damage, read in one line


DEEP = "[" * 100_000 + "]" * 100_000


def record(epoch, **changes) -> str:
    data = {"epoch": epoch, "d_loss": 1.0, "g_loss": 1.0, "epoch_seconds": 0.5, "wall_seconds": 0.6,
            "finished_at": 1.7e9}
    data.update(changes)
    return json.dumps(data)


HISTORY_LINES = {
    "deeply nested line": DEEP,
    "deeply nested metrics": record(2, metrics={"a": json.loads("[" * 50 + "]" * 50)}),
    "wall seconds Infinity": record(2, wall_seconds=float("inf")),
    "epoch seconds NaN": record(2, epoch_seconds=float("nan")),
    "finished at -1e400": record(2, finished_at=float("-inf")),
    "negative epoch": record(-2),
    "epoch 1e400": record(2).replace('"epoch": 2', '"epoch": 1e400'),
    "epoch a float": record(2).replace('"epoch": 2', '"epoch": 2.0'),
    "epoch true": record(2).replace('"epoch": 2', '"epoch": true'),
    "loss text": record(2, d_loss="1.0"),
    "metrics a list": record(2, metrics=[1, 2]),
}


@pytest.mark.parametrize("damage", list(HISTORY_LINES))
def test_history_lines_that_are_no_record_end_the_listing(tiny, tmp_path, damage):
    run = copy_of(tiny, tmp_path)
    first = run.history_path.read_text().splitlines()[0]
    run.history_path.write_text(first + "\n" + HISTORY_LINES[damage] + "\n")
    assert run.epochs() == [1]
    job = jobs.Job.read(run)
    assert job.epochs_done == 1 and job.eta_seconds() is None
    with pytest.raises(RunError) as info:
        run.update_metrics(1, {"accuracy": 0.5})
    assert "damaged after epoch 1" in str(info.value) and "\n" not in str(info.value)


def test_a_history_that_starts_below_epoch_one_lists_nothing(tiny, tmp_path):
    run = copy_of(tiny, tmp_path)
    run.history_path.write_text(record(-1) + "\n" + record(0) + "\n" + record(1) + "\n")
    assert run.epochs() == []


@pytest.mark.parametrize("width", ["Infinity", "-Infinity", "NaN", "1e400", "1e6", "5", "0", "-1", '"wide"',
                                   "[1]", "true"])
@pytest.mark.parametrize("model", ["cgan", "cdcgan"])
def test_a_config_width_no_network_has_is_one_line(tiny, tmp_path, model, width):
    run = copy_of(tiny, tmp_path)
    config = json.loads(run.config_path.read_text())
    text = json.dumps({**config, "model": model, "width": 1.0}).replace('"width": 1.0', f'"width": {width}')
    run.config_path.write_text(text)
    started = time.perf_counter()
    for load in (run.load_generator, lambda: run.load_discriminator(2)):
        with pytest.raises(RunError) as info:
            load()
        assert "width" in str(info.value) and "\n" not in str(info.value)
    assert time.perf_counter() - started < 5  # refused, not built


@pytest.mark.parametrize("field,value", [("epochs", "Infinity"), ("epochs", "1e400"), ("epochs", "-5"),
                                         ("created_at", "NaN"), ("epochs", '"x"')])
def test_a_config_number_no_job_can_use_leaves_the_job_listed(tiny, tmp_path, field, value):
    root = tmp_path / "checkpoints"
    root.mkdir()
    run = copy_of(tiny, root)
    config = json.loads(run.config_path.read_text())
    config.pop(field, None)
    run.config_path.write_text(json.dumps(config)[:-1] + f', "{field}": {value}}}')
    run.status_path.unlink()
    (job,) = jobs.list_jobs(root)
    assert 0 <= job.epochs_total < 10**10


def test_a_status_with_fields_of_the_wrong_kind_says_less(tiny, tmp_path):
    run = copy_of(tiny, tmp_path)
    run.status_path.write_text('{"state": "stopped", "updated_at": "now", "pid": 1e400, "epochs_total": Infinity,'
                               ' "launched_at": NaN, "arguments": [1, 2], "pid_started": 5}')
    run.request_stop()
    assert run.status() == {"state": "stopped"}
    assert run.state() == "stopped"
    run.status_path.write_text('{"state": "running", "updated_at": "now"}')
    assert run.state() == "stopped"  # the stop request is newer than any status time it can read
    run.status_path.write_text("[" * 50_000)
    assert run.status() == {}


# ---------------------------------------------------------------------------------------------
# 6. Special files: read only regular files, never blocking, never without bound


def finishes(call, seconds: float, unblock: Path | None = None):
    """call() in a thread: its result, or AssertionError if it is still running after `seconds`
    (a FIFO `unblock` is then opened for writing so the stuck reader ends)."""
    import threading

    outcome: dict = {}

    def work():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back below
            outcome["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        raise AssertionError(f"still blocked after {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def test_a_fifo_in_place_of_any_run_file_never_blocks_a_reader(tiny, tmp_path):
    run = copy_of(tiny, tmp_path)
    pipe = fifo(run.status_path)
    assert finishes(run.status, 5, pipe) == {}
    assert finishes(run.state, 5, pipe) == "interrupted"
    root = tmp_path
    assert [job.name for job in finishes(lambda: jobs.list_jobs(root), 5, pipe)] == ["run"]
    for path, read in [
        (run.history_path, run.history),
        (run.config_path, run.config),
        (run.weights_path(2), lambda: run.load_generator(2)),
        (run.last_path, run.load_resume_state),
        (run.grid_path(2), lambda: run.grid(2)),
    ]:
        saved = path.read_bytes()
        pipe = fifo(path)
        with pytest.raises(RunError) as info:
            finishes(read, 5, pipe)
        assert "named pipe" in str(info.value) and "\n" not in str(info.value), path
        pipe.unlink()
        path.write_bytes(saved)
    for path, read, nothing in [(run.log_path, run.log_tail, ""), (run.stop_request_path, run.stop_requested, None),
                                (run.lock_path, run.trainer_alive, False)]:
        pipe = fifo(path)
        assert finishes(read, 5, pipe) == nothing, path
        pipe.unlink()
    pipe = fifo(run.lock_path)
    with pytest.raises(RunError):
        finishes(lambda: run.trainer_lock().__enter__(), 5, pipe)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_run_file_linked_to_a_device_is_refused_unread(tiny, tmp_path, device):
    run = copy_of(tiny, tmp_path)
    for path, read in [(run.history_path, run.history), (run.config_path, run.config),
                       (run.weights_path(2), lambda: run.load_generator(2)), (run.last_path, run.load_resume_state),
                       (run.grid_path(2), lambda: run.grid(2))]:
        saved = path.read_bytes()
        path.unlink()
        path.symlink_to(device)
        with pytest.raises(RunError) as info:
            finishes(read, 5)
        assert "a device" in str(info.value) and "\n" not in str(info.value), path
        path.unlink()
        path.write_bytes(saved)
    run.status_path.unlink()
    run.status_path.symlink_to(device)
    assert finishes(run.status, 5) == {}


def test_a_file_beyond_its_cap_is_damage(tiny, tmp_path):
    run = copy_of(tiny, tmp_path)
    with open(run.config_path, "r+b") as f:
        f.truncate(2 << 20)  # sparse: no disk used
    with pytest.raises(RunError) as info:
        run.config()
    assert "more than a run's file holds" in str(info.value)


# ---------------------------------------------------------------------------------------------
# 7. A full disk and a read-only folder: one line, the finished epochs kept, nothing left behind


def mount_tmpfs(path: Path, size: str, read_only: bool = False) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small disk needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs: {done.stderr.decode()[:100]}")
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


@pytest.fixture
def small_disks(tmp_path):
    """mount(name, size, read_only) -> a folder on a disk of its own; unmounted afterwards."""
    mounted = []

    def mount(name: str, size: str, read_only: bool = False) -> Path:
        path = tmp_path / name
        mount_tmpfs(path, size, read_only)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(disk: Path) -> None:
    """Use up every byte of `disk`."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError:
            pass


def test_training_onto_a_full_disk_ends_in_one_line_and_keeps_its_epochs(small_disks, tmp_path):
    disk = small_disks("disk", "8M")
    out = disk / "run"
    argv = ["--out", str(out), "--epochs", "50", "--limit", "150", "--device", "cpu"]
    outcome = run_module("cgan.train", argv, cwd=tmp_path, timeout=300)
    assert_clean_outcome(outcome, allowed=(1,), context=f"cgan.train {argv}")
    line = outcome.lines()[0]
    assert "no space left on the device of" in line and "epoch" in line, line
    kept = int(line.rsplit("epoch ", 1)[1].split()[0])
    run = Run(out)
    assert kept >= 1 and run.epochs() == list(range(1, kept + 1)), (line, run.epochs())
    assert run.weight_epochs() == run.epochs()
    assert sorted(p.name for p in (out / "grids").iterdir()) == [f"epoch_{e:04d}.png" for e in run.epochs()]
    assert not [p for p in out.rglob("*.tmp")], "a temporary file was left behind"
    assert run.load_resume_state()["epoch"] in (kept, kept + 1)
    status = run.status()
    assert status["state"] == "failed" and "\n" not in status["message"]
    assert "no space left" in status["message"] and "enforce fail" not in status["message"]
    # Once there is room again, the run resumes from its kept epochs.
    (disk / "room").mkdir()
    resumed = run_module("cgan.train", ["--out", str(out), "--resume", "--epochs", str(kept + 1), "--device", "cpu"],
                         cwd=tmp_path, timeout=300)
    if resumed.code == 1:
        assert "no space left" in resumed.lines()[0]  # still too full for one more epoch: one line
    else:
        assert resumed.code == 0 and run.epochs() == list(range(1, kept + 2))


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_start_on_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(small_disks, how):
    root = small_disks("checkpoints", "1M")
    if how == "full":
        fill(root)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(jobs.JobError) as info:
        jobs.start(jobs.JobRequest(name="demo", epochs=1, limit=150), root=root)
    message = str(info.value)
    assert "\n" not in message
    assert ("no space left" in message) if how == "full" else ("read-only" in message), message
    assert sorted(p.name for p in root.iterdir() if p.name != jobs.LOCK_NAME) == [
        name for name in before if name != jobs.LOCK_NAME]


def test_a_failed_trainer_status_message_is_one_line(tmp_path):
    from cgan.config import TrainConfig
    from cgan.training.loop import StopFlag, train

    run = Run(tmp_path / "run")

    class Exploding(StopFlag):
        def __bool__(self):
            raise RuntimeError("first line\n  second line of a long native error\nthird")

    with pytest.raises(RuntimeError):
        train(TrainConfig(epochs=2, limit=150), run, torch_cpu(), stop=Exploding(), log=lambda _: None)
    assert run.status()["state"] == "failed" and run.status()["message"] == "first line"


def torch_cpu():
    import torch

    return torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# 8. The cDCGAN resumes bit for bit on the CPU, whatever thread count the process starts with


def test_the_cdcgan_resumes_bit_for_bit_on_the_cpu(tmp_path):
    import torch

    settings = ["--model", "cdcgan", "--width", "0.125", "--batch-size", "100", "--limit", "1200", "--seed", "5",
                "--device", "cpu"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    for out, epochs in ((straight, 3), (split, 2)):
        outcome = run_module("cgan.train", [*settings, "--epochs", str(epochs), "--out", str(out)], cwd=tmp_path,
                             timeout=600)
        assert outcome.code == 0, outcome.stderr[-2000:]
    shutil.copytree(split, tmp_path / "split-one-thread")
    resumes = [(split, {})]
    from cgan.threads import cpu_cores

    if cpu_cores() >= 2:  # a resume that starts with one thread trains on with the run's count
        resumes.append((tmp_path / "split-one-thread", {"OMP_NUM_THREADS": "1"}))
    for out, env in resumes:
        outcome = run_module("cgan.train", ["--out", str(out), "--resume", "--epochs", "3", "--device", "cpu"],
                             cwd=tmp_path, timeout=600, env=cli_env(**env))
        assert outcome.code == 0, outcome.stderr[-2000:]
        a, b = Run(straight).load_resume_state(), Run(out).load_resume_state()
        for key in ("generator", "discriminator"):
            for name, tensor in a[key].items():
                assert torch.equal(tensor, b[key][name]), (out.name, key, name)
        assert [r.d_loss for r in Run(straight).history()] == [r.d_loss for r in Run(out).history()]


# ---------------------------------------------------------------------------------------------
# 9. Symlinks never let a command write into a run that is not its own


def test_sample_out_through_a_link_into_a_run_is_refused(tiny, tmp_path):
    from cgan import sampling
    from tests.fuzz_support import call_main, fingerprint

    run = copy_of(tiny, tmp_path)
    before = fingerprint(run.path)
    (tmp_path / "into-grids").symlink_to(run.path / "grids")
    (tmp_path / "pic.png").symlink_to(run.grid_path(2))
    for out in (tmp_path / "into-grids" / "epoch_0002.png", tmp_path / "into-grids" / "new.png", tmp_path / "pic.png"):
        outcome = call_main(sampling.main, ["--run", str(run.path), "--out", str(out), "--force", "--n", "1"])
        assert_clean_outcome(outcome, allowed=(2,), context=str(out))
        assert "inside run" in outcome.stderr
    assert fingerprint(run.path) == before


def test_resume_through_a_linked_weights_folder_is_refused(tiny, tmp_path):
    from tests.fuzz_support import fingerprint

    other = copy_of(tiny, tmp_path, "other")
    run = copy_of(tiny, tmp_path, "run")
    shutil.rmtree(run.path / "weights")
    (run.path / "weights").symlink_to(other.path / "weights")
    before = fingerprint(other.path)
    outcome = run_module("cgan.train", ["--out", str(run.path), "--resume", "--epochs", "3", "--device", "cpu"],
                         cwd=tmp_path)
    assert_clean_outcome(outcome, allowed=(1,))
    assert "a link out of the run" in outcome.stderr
    assert fingerprint(other.path) == before


def test_deleting_a_linked_run_is_refused_and_a_run_with_a_link_out_deletes_only_the_link(tiny, tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    elsewhere = copy_of(tiny, tmp_path, "elsewhere")
    (root / "alias").symlink_to(elsewhere.path)
    with pytest.raises(jobs.JobError) as info:
        jobs.delete("alias", root)
    assert "is a link" in str(info.value)
    assert (root / "alias").is_symlink() and elsewhere.exists()
    # A run whose weights folder links to another run's: deleting it removes the link, not them.
    run = copy_of(tiny, root, "linked")
    shutil.rmtree(run.path / "weights")
    (run.path / "weights").symlink_to(elsewhere.path / "weights")
    jobs.delete("linked", root)
    assert not run.path.exists()
    assert elsewhere.weight_epochs() == [1, 2]


# ---------------------------------------------------------------------------------------------
# 10. Resume checks last.pt: its record is its epoch's, its fields have their types


def edit_last(run: Run, change) -> None:
    import torch

    state = torch.load(run.last_path, weights_only=True)
    state.update(change(state))
    torch.save(state, run.last_path)


LAST_DAMAGE = {
    "record of another epoch": lambda s: {"epoch": 2, "record": {**s["record"], "epoch": 7}},
    "epoch text": lambda s: {"epoch": "2"},
    "epoch a list": lambda s: {"epoch": [2]},
    "epoch 0": lambda s: {"epoch": 0},
    "epoch true": lambda s: {"epoch": True},
    "record a list": lambda s: {"record": [1, 2]},
    "record with text times": lambda s: {"record": {**s["record"], "epoch_seconds": "slow"}},
    "generator a list": lambda s: {"generator": [1, 2]},
    "optimizer text": lambda s: {"opt_g": "adam"},
    "rng a number": lambda s: {"rng": 5},
    "device type a number": lambda s: {"device_type": 5},
}


@pytest.mark.parametrize("damage", list(LAST_DAMAGE))
def test_resume_refuses_a_last_pt_that_disagrees_or_has_bad_types(tiny, tmp_path, damage):
    from cgan import train
    from tests.fuzz_support import call_main, fingerprint

    run = copy_of(tiny, tmp_path)
    # The newest record is missing from the history, as after a crash: resume would append
    # last.pt's record.
    lines = run.history_path.read_text().splitlines()
    run.history_path.write_text(lines[0] + "\n")
    edit_last(run, LAST_DAMAGE[damage])
    before = {k: v for k, v in fingerprint(run.path).items() if k not in ("status.json", ".trainer.lock")}
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        outcome = call_main(train.main, ["--out", str(run.path), "--resume", "--epochs", "4", "--device", "cpu"])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert_clean_outcome(outcome, allowed=(1,), context=damage)
    assert "last.pt" in outcome.stderr
    after = {k: v for k, v in fingerprint(run.path).items() if k not in ("status.json", ".trainer.lock")}
    assert after == before
    assert run.epochs() == [1]


# ---------------------------------------------------------------------------------------------
# 11. Settings that used to end in a traceback


def test_the_launcher_port_settings_are_one_line(tmp_path):
    env = cli_env(PORT="abc")
    helped = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path, env=env)
    assert helped.returncode == 0 and "--port" in helped.stdout and not helped.stderr
    for argv, environment, fragment in [
        ([], env, "PORT=abc"),
        (["--port", "abc"], cli_env(), "--port abc"),
        (["--port", "70000"], cli_env(), "--port 70000"),
        (["--port", "8618", "--server.port", "8619"], cli_env(), "--server.port"),
        (["--port", "8618", "--server.port=8619"], cli_env(), "--server.port"),
        (["--server.address", "0.0.0.0"], cli_env(), "--network"),
    ]:
        started = time.perf_counter()
        outcome = run_module("app", argv, cwd=tmp_path, timeout=60, env=environment)
        assert_clean_outcome(outcome, allowed=(2,), context=str(argv))
        assert fragment in outcome.stderr and not outcome.stdout, (argv, outcome)
        assert time.perf_counter() - started < 20  # refused before torch is loaded or a port is opened


def test_the_bench_without_mnist_is_one_line(tmp_path):
    env = cli_env(CGAN_MNIST_DIR=str(tmp_path / "nope"))
    outcome = run_module("cgan.bench", ["--epochs", "1"], cwd=tmp_path, env=env)
    assert_clean_outcome(outcome, allowed=(2,))
    assert "nope" in outcome.stderr


def test_cgan_jobs_with_ray_missing_or_a_bogus_backend_is_one_line(tiny, tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    copy_of(tiny, root, "trained")
    Run(root / "waiting").path.mkdir()
    Run(root / "waiting").write_status("queued", arguments=["--out", str(root / "waiting")], queued_at=time.time())
    no_ray = tmp_path / "no-ray" / "ray"
    no_ray.mkdir(parents=True)
    (no_ray / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = cli_env(CGAN_CHECKPOINTS=str(root), CGAN_JOBS_BACKEND="ray")
    env["PYTHONPATH"] = os.pathsep.join([str(no_ray.parent), env["PYTHONPATH"]])
    listed = run_module("cgan.jobs", ["list"], cwd=tmp_path, env=env)
    assert_clean_outcome(listed, allowed=(0,))
    assert "trained: " in listed.stdout and "needs Ray" in listed.stdout
    polled = run_module("cgan.jobs", ["poll"], cwd=tmp_path, env=env)
    assert_clean_outcome(polled, allowed=(1,))
    assert "needs Ray" in polled.stderr
    for command in ("poll", "list"):
        bogus = run_module("cgan.jobs", [command], cwd=tmp_path,
                           env=cli_env(CGAN_CHECKPOINTS=str(root), CGAN_JOBS_BACKEND="bogus"))
        assert_clean_outcome(bogus, allowed=(2,))
        assert "CGAN_JOBS_BACKEND=bogus" in bogus.stderr
    assert Run(root / "waiting").status()["state"] == "queued"  # nothing was started
