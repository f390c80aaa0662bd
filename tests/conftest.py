"""Shared fixtures: small real runs trained with the library itself (no shipped checkpoints), and
the helpers every test file uses (wait_until, the leftover-trainer fixture). Torch and the library
are imported where used, so a light module (tests.browser_support, the benchmarks) can import
wait_until from here."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cgan.runs import Run

ROOT = Path(__file__).resolve().parent.parent

OUTPUT = ROOT / "test-output"  # screenshots and other artefacts a person may want to look at

# The app's pages, as app/main.py registers them (page("evolution.py", ...)): app/views/ also
# holds modules that pages import.
PAGES = sorted(re.findall(r'\bpage\("(\w+)\.py"', (ROOT / "app" / "main.py").read_text()))
assert PAGES, "no page found in app/main.py"


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


def wait_until(predicate: Callable, timeout: float = 90, *, interval: float = 0.1,
               message: str | Callable[[], str] = "the condition", ignore: tuple = ()):
    """Call `predicate` every `interval` seconds until it returns something true, and return that.

    After `timeout` seconds the test fails with "timed out after N s waiting for <message>"
    (`message` may be a callable, read only then, to say what was seen). Exceptions of the kinds
    in `ignore` count as "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignore:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            said = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g} s waiting for {said}")
        time.sleep(interval)


def kill_trainers(folder: Path) -> None:
    """SIGKILL every trainer still alive among the jobs in `folder`."""
    from cgan import jobs

    for job in jobs.list_jobs(folder):
        if job.is_alive() and job.pid:
            os.kill(job.pid, signal.SIGKILL)


@pytest.fixture
def no_leftover_trainers():
    """watch(folder) -> folder: every trainer still alive in a watched checkpoints folder when the
    test ends is killed (a failed test never leaves one running)."""
    folders: list[Path] = []

    def watch(folder: Path) -> Path:
        folders.append(Path(folder))
        return folder

    yield watch
    for folder in folders:
        kill_trainers(folder)


def _quiet(_line: str) -> None:
    pass


def make_run(path: Path, model: str = "cgan", **overrides) -> Run:
    """Train a small real run into `path` on the CPU and return it."""
    import torch

    from cgan.runs import Run
    from cgan.config import TrainConfig
    from cgan.training.loop import train

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
def tiny_run(tmp_path_factory) -> Run:
    """A real 2-epoch CGAN run on 150 images, every file a finished run holds (tests copy it)."""
    return make_run(tmp_path_factory.mktemp("runs") / "tiny", epochs=2, limit=150, seed=5)


@pytest.fixture(scope="session")
def judged_run(tmp_path_factory) -> Run:
    """3 CGAN epochs on 3,000 images; the trainer keeps the discriminator's weights for each."""
    return make_run(tmp_path_factory.mktemp("runs") / "cgan-judged", epochs=3, limit=3000, seed=4)


@pytest.fixture(scope="session")
def judged_cdcgan(tmp_path_factory) -> Run:
    """2 epochs of a narrow cDCGAN on 1,000 images, with the discriminator's weights."""
    return make_run(
        tmp_path_factory.mktemp("runs") / "cdcgan-judged", model="cdcgan", epochs=2, limit=1000, width=0.125, seed=5
    )


def _serve(folder: Path):
    """A Streamlit server on `folder` for the rest of the session (a browser test fails, not
    skips, where no browser can run)."""
    from tests.browser_support import browser_missing, streamlit_server

    if missing := browser_missing():
        pytest.fail(f"browser test cannot run: {missing}")
    with streamlit_server(checkpoints=folder) as url:
        yield url


@pytest.fixture(scope="session")
def lecture_server(tmp_path_factory, long_run, cdcgan_run):
    """The address of one Streamlit server, shared by the browser tests that walk the lecture (in
    English and in Chinese): the 80-epoch CGAN as cgan-report and a small cDCGAN as cdcgan-report.
    Nothing is trained or deleted through it."""
    folder = tmp_path_factory.mktemp("lecture")
    shutil.copytree(long_run.path, folder / "cgan-report")
    shutil.copytree(cdcgan_run.path, folder / "cdcgan-report")
    yield from _serve(folder)


@pytest.fixture(scope="session")
def judged_server(tmp_path_factory, judged_run, cdcgan_run):
    """The address of one Streamlit server for the discriminator's browser tests: a CGAN with D's
    weights as cgan-report, and cdcgan-small without them (as a run from before the trainer kept
    D). Nothing is trained or deleted through it."""
    folder = tmp_path_factory.mktemp("judged")
    shutil.copytree(judged_run.path, folder / "cgan-report")
    shutil.copytree(cdcgan_run.path, folder / "cdcgan-small")
    for file in (folder / "cdcgan-small" / "weights").glob("discriminator_*.pt"):
        file.unlink()
    yield from _serve(folder)


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


@pytest.fixture
def downloads(monkeypatch):
    """downloads(at) -> {button key: (file name, the bytes the button gives when pressed)} for an
    AppTest `at`. The bytes are made here, on the test's thread, outside the page's run: as
    Streamlit makes them, on another thread when the button is pressed."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    registered: dict[str, tuple] = {}
    original = MediaFileManager.add_deferred

    def recording(self, data_callable, mimetype, coordinates, file_name=None, **options):
        file_id = original(self, data_callable, mimetype, coordinates, file_name, **options)
        registered[file_id] = (file_name, data_callable)
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording)

    def read(at) -> dict[str, tuple[str, bytes]]:
        found = {}
        for button in at.get("download_button"):
            name, make = registered[button.proto.deferred_file_id]
            found[button.key] = (name, make())
        return found

    return read


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


@pytest.fixture(autouse=True, scope="session")
def _shared_browser():
    """The Chromium that browser tests share (tests.browser_support) ends with the session."""
    yield
    import sys

    support = sys.modules.get("tests.browser_support")
    if support is not None:
        support.close_shared_browser()


@pytest.fixture(autouse=True, scope="session")
def _threads():
    # Tests share two cores with each other's subprocesses; keep torch from oversubscribing.
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
