"""A run's state from its directory alone: the trainer lock, a real kill -9, the extra weights an
epoch may carry, and damaged files that give one line instead of a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cgan.models import get_model
from cgan.history import EpochRecord
from cgan.keep import parse_keep
from cgan.runs import Run, RunError
from tests.conftest import wait_until
from tests.test_runs import copy_run, one_line

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def hold_lock_in_another_process(run: Run) -> subprocess.Popen:
    """A second process that takes the run's trainer lock and keeps it until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from cgan.runs import Run
        with Run({str(run.path)!r}).trainer_lock():
            print("held", flush=True)
            time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert process.stdout.readline().strip() == "held"
    return process


# ---------------------------------------------------------------------------------------------
# State


def test_a_finished_run_is_finished(cgan_run):
    assert cgan_run.state() == "finished"
    assert not cgan_run.is_training()


def test_the_trainer_lock_refuses_a_second_trainer_and_means_running(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    # A status that names a dead pid: only the lock can tell that a trainer is alive.
    run.write_status("running", pid=2**22 + 12345, pid_started="1", epochs_total=4)
    assert run.state() == "interrupted"
    holder = hold_lock_in_another_process(run)
    try:
        assert run.state() == "running" and run.is_training()
        with pytest.raises(RunError) as error, run.trainer_lock():
            pass
        one_line(error, f"run {run.name} is already being trained by another process")
    finally:
        holder.kill()
        holder.wait()
    assert run.state() == "interrupted"
    with run.trainer_lock():  # free again once its holder died
        assert run.state() == "running"
    assert run.state() == "interrupted"


def test_the_lock_is_not_taken_by_readers(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    run.lock_path.unlink(missing_ok=True)  # left by the trainer that wrote it
    for _ in range(3):
        run.state()
    assert not run.lock_path.exists(), "reading the state must not write into the run"


def test_trainer_lock_refuses_a_file_in_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(RunError) as error, Run(path).trainer_lock():
            pass
        one_line(error, str(path))


def test_a_killed_trainer_is_interrupted(tmp_path):
    """kill -9 of a real trainer: no final status is written, and every reader says interrupted."""
    run = Run(tmp_path / "killed")
    process = subprocess.Popen(
        [sys.executable, "-m", "cgan.train", "--out", str(run.path), "--epochs", "200",
         "--limit", "1500", "--device", "cpu", "--seed", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=tmp_path,
    )
    try:
        wait_until(lambda: len(run.history()) >= 1, 120, message="the first epoch")
        assert run.state() == "running"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert run.status()["state"] == "running"  # what the dead trainer left behind
    assert run.state() == "interrupted" and not run.is_training()


def test_a_stop_requested_before_any_status_is_stopped(tmp_path):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.write_status("starting", pid=2**22 + 12345, pid_started="1")
    assert run.state() == "interrupted"
    run.request_stop()
    assert run.state() == "stopped"
    run.clear_stop_request()
    assert run.state() == "interrupted"


def test_a_launch_that_refused_its_arguments_is_failed(tmp_path):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.write_status("starting", pid=2**22 + 12345, pid_started="1")
    run.log_path.write_text("usage: python -m cgan.train ...\npython -m cgan.train: error: --lr nan: bad\n")
    assert run.state() == "failed"
    assert run.failure_line() == "python -m cgan.train: error: --lr nan: bad"


def test_a_failed_trainer_gives_its_reason_not_its_traceback(tmp_path):
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.log_path.write_text(
        "+ cgan: 100 images\nTraceback (most recent call last):\n  File \"/x/cgan/train.py\", line 3\n"
        "    boom()\nRuntimeError: out of memory\n"
    )
    assert run.failure_line() == "RuntimeError: out of memory"


def test_is_unstarted(tmp_path, cgan_run):
    run = Run(tmp_path / "new")
    assert run.is_unstarted()
    run.path.mkdir()
    run.log_path.write_text("starting\n")
    run.write_status("starting", pid=1, pid_started="1")
    with run.trainer_lock():
        assert run.is_unstarted()
    assert not cgan_run.is_unstarted()


# ---------------------------------------------------------------------------------------------
# Discriminator and averaged weights


def write_epochs(run: Run, epochs: int, keep: str, with_extras: bool = True) -> None:
    family = get_model("cgan")
    torch.manual_seed(0)
    generator, discriminator = family.generator(1.0), family.discriminator(1.0)
    run.create({"model": "cgan", "width": 1.0, "epochs": epochs})
    for epoch in range(1, epochs + 1):
        with torch.no_grad():
            for p in generator.parameters():
                p.add_(0.01)
        g = {k: v.clone() for k, v in generator.state_dict().items()}
        extras = {}
        if with_extras:
            extras = dict(
                discriminator_state={k: v + epoch for k, v in discriminator.state_dict().items()},
                generator_ema_state={k: v * 0.5 for k, v in g.items()},
            )
        record = EpochRecord(epoch, 1.0, 1.0, 0.1, 0.1, time.time())
        run.write_epoch(
            epoch, lambda record=record: record, np.zeros((100, 28, 28), np.uint8), g,
            {"epoch": epoch}, parse_keep(keep), epochs, **extras,
        )


def test_discriminator_and_averaged_weights_follow_the_keep_policy(tmp_path):
    run = Run(tmp_path / "r")
    write_epochs(run, 5, keep="2")
    assert run.weight_epochs() == [2, 5]
    assert run.discriminator_epochs() == [2, 5]
    assert [e for e in range(1, 6) if run.has_averaged(e)] == [2, 5]
    raw, averaged = run.load_generator(5), run.load_generator(5, averaged=True)
    for (name, a), b in zip(raw.state_dict().items(), averaged.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a * 0.5, msg=name)
    discriminator = run.load_discriminator(2)
    expected = get_model("cgan").discriminator(1.0)
    assert not discriminator.training
    first = next(iter(expected.state_dict()))
    assert first in discriminator.state_dict()
    run.prune(parse_keep("last"), half=True)
    assert run.weight_epochs() == [5] and run.discriminator_epochs() == [5]
    assert not run.has_averaged(2) and run.has_averaged(5)
    assert next(iter(torch.load(run.discriminator_path(5), weights_only=True).values())).dtype == torch.float16


def test_runs_without_extra_weights_say_so_in_one_line(tmp_path):
    run = Run(tmp_path / "r")
    write_epochs(run, 2, keep="all", with_extras=False)
    assert run.discriminator_epochs() == [] and not run.has_averaged(2)
    assert run.weight_epochs() == [1, 2]
    with pytest.raises(RunError) as error:
        run.load_discriminator(2)
    one_line(error, "no discriminator weights")
    with pytest.raises(RunError) as error:
        run.load_generator(2, averaged=True)
    one_line(error, "no averaged generator weights")


# ---------------------------------------------------------------------------------------------
# Damaged files


def test_history_that_is_not_text_is_one_line(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    run.history_path.write_bytes(b'{"epoch": 1}\n' + bytes(range(128, 256)) * 20)
    with pytest.raises(RunError) as error:
        run.history()
    one_line(error, "history.jsonl", "not text")
    assert run.state() == "finished"  # the state never raises


def test_history_that_is_a_folder_is_one_line(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    run.history_path.unlink()
    run.history_path.mkdir()
    with pytest.raises(RunError) as error:
        run.epochs()
    one_line(error, "history.jsonl", "a folder")


def test_random_bytes_are_damaged_not_malicious(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    rng = np.random.default_rng(0)
    for epoch in (1, 2):
        run.weights_path(epoch).write_bytes(rng.bytes(3000 * epoch))
        with pytest.raises(RunError) as error:
            run.load_generator(epoch)
        message = one_line(error, f"generator_000{epoch}.pt", "damaged")
        assert "code" not in message and "refused" not in message
    # A zip archive that is cut short is damaged too.
    data = run.weights_path(3).read_bytes()
    run.weights_path(3).write_bytes(data[: len(data) // 3])
    with pytest.raises(RunError) as error:
        run.load_generator(3)
    assert "code" not in one_line(error, "damaged")


def test_temporary_files_of_killed_writes_are_removed_by_the_next_trainer(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    leftovers = [
        run.path / ".status.json.abc.tmp", run.path / "grids" / ".epoch_0005.png.x.tmp",
        run.path / "weights" / ".generator_0005.pt.y.tmp", run.path / ".last.pt.z.tmp",
        run.path / ".history.jsonl.w.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"partial")
    assert run.state() == "finished" and all(p.exists() for p in leftovers)  # readers touch nothing
    with run.trainer_lock():
        assert not [p for p in leftovers if p.exists()]
    assert json.loads(run.config_path.read_text())["model"] == "cgan"
    # And on the run's next write, for a writer that did not take the lock.
    for path in leftovers:
        path.write_bytes(b"partial")
    write_epochs(Run(run.path), 1, keep="all", with_extras=False)
    assert not list(run.path.rglob("*.tmp"))


def test_a_grid_of_the_wrong_size_is_named_in_full(cgan_run, tmp_path):
    from cgan.images import png_bytes

    run = copy_run(cgan_run, tmp_path)
    run.grid_path(2).write_bytes(png_bytes(np.zeros((1120, 1120), np.uint8)))
    with pytest.raises(RunError) as error:
        run.grid(2)
    message = one_line(error, "epoch_0002.png", "1120x1120 pixels, expected 280x280")
    assert " (" not in message  # nothing a reader would cut off as a detail
    original = cgan_run.grid(3)
    assert (run.grid(3) == original).all()
    assert run.grid_images(3).shape == (10, 10, 28, 28)
