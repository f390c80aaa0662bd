"""The app's own torch work (app/loaders.py) takes one thread while a trainer runs on this machine,
so the page and the job it feeds do not fight for the cores, and every core again once it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from app import loaders
from cgan.runs import Run
from cgan.threads import cpu_cores
from tests.conftest import ROOT, make_run, wait_until


@pytest.mark.skipif(cpu_cores() < 2, reason="one core: nothing to share")
def test_generation_uses_one_thread_while_a_local_trainer_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    shown = make_run(tmp_path / "shown", epochs=1, limit=300, seed=4)

    images = loaders.samples(shown, 1, digit=3, seed=0, n=4)
    assert images.shape == (4, 28, 28) and torch.get_num_threads() == cpu_cores()  # quiet machine

    busy = Run(tmp_path / "busy")
    trainer = subprocess.Popen(
        [sys.executable, "-m", "cgan.train", "--model", "cgan", "--epochs", "10000", "--limit", "300",
         "--keep", "last", "--out", str(busy.path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        # Listed (config.json written) and training: what the app looks for.
        wait_until(lambda: busy.config_path.is_file() and busy.is_training(), message="the trainer to start")
        images = loaders.samples(shown, 1, digit=3, seed=0, n=4)
        assert images.shape == (4, 28, 28)
        assert torch.get_num_threads() == 1
        assert loaders.all_digits(shown, 1, seed=0).shape == (10, 28, 28)
        assert torch.get_num_threads() == 1
    finally:
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait(timeout=30)

    wait_until(lambda: not busy.is_training(), message="the trainer to end")
    again = loaders.samples(shown, 1, digit=3, seed=0, n=4)
    assert torch.get_num_threads() == cpu_cores()  # the cores come back once it ends
    assert (again == images).all()  # the same digits on any thread count
