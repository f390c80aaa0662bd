"""Shared fixtures: small real runs trained with the library itself (no shipped checkpoints)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from cgan.runs import Run
from cgan.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent

OUTPUT = ROOT / "test-output"  # screenshots and other artefacts a person may want to look at


def as_shown(markdown: str) -> str:
    """Text as the browser shows it: Markdown's backslash escapes (app.text.plain) removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


@contextlib.contextmanager
def as_its_trainer(run: Run, state: str | None = "running", **status):
    """This process holds `run`'s trainer lock, as its live trainer would (every reader then
    sees the run training), and writes `state` into its status."""
    with run.trainer_lock():
        if state:
            run.write_status(state, **status)
        yield run


def _quiet(_line: str) -> None:
    pass


def make_run(path: Path, model: str = "cgan", **overrides) -> Run:
    """Train a small real run into `path` on the CPU and return it."""
    config = TrainConfig.for_model(model, **overrides)
    run = Run(path)
    train(config, run, torch.device("cpu"), log=_quiet)
    return run


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory) -> Run:
    """A 4-epoch CGAN run on 3,000 images (weights for every epoch)."""
    return make_run(tmp_path_factory.mktemp("runs") / "cgan-small", epochs=4, limit=3000, seed=1)


@pytest.fixture(scope="session")
def cdcgan_run(tmp_path_factory) -> Run:
    """A 2-epoch narrow cDCGAN run on 1,000 images."""
    return make_run(
        tmp_path_factory.mktemp("runs") / "cdcgan-small", model="cdcgan", epochs=2, limit=1000,
        width=0.125, seed=2,
    )


@pytest.fixture(scope="session")
def long_run(tmp_path_factory) -> Run:
    """80 one-batch epochs of a narrow CGAN, weights kept at 20, 50, 75 and the last (80) only."""
    return make_run(tmp_path_factory.mktemp("runs") / "cgan-long", epochs=80, limit=150,
                    width=0.25, keep="20,50,75", seed=3)


@pytest.fixture(scope="session")
def root(tmp_path_factory, cgan_run, cdcgan_run) -> Path:
    """cgan-report (the preferred default, though older) and a newer cdcgan-small."""
    folder = tmp_path_factory.mktemp("checkpoints")
    shutil.copytree(cgan_run.path, folder / "cgan-report")
    shutil.copytree(cdcgan_run.path, folder / "cdcgan-small")
    (folder / "cdcgan-small" / "config.json").touch()  # newest config: listed first
    return folder


@pytest.fixture
def checkpoints(monkeypatch, root) -> Path:
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(root))
    return root


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture(autouse=True, scope="session")
def _threads():
    # Tests share two cores with each other's subprocesses; keep torch from oversubscribing.
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
