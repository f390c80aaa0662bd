"""The sidebar's run picker keeps a run that was started a moment ago: queued, or its trainer still
starting (no config.json yet), instead of calling it gone and jumping to another run."""

from __future__ import annotations

import shutil

import pytest

from cgan.runs import Run
from tests.conftest import as_its_trainer
from tests.test_app import MAIN, TIMEOUT, messages, no_failure

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


@pytest.fixture
def checkpoints(monkeypatch, tmp_path, cgan_run):
    shutil.copytree(cgan_run.path, tmp_path / "cgan-report")
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    monkeypatch.delenv("CGAN_JOBS_BACKEND", raising=False)
    return tmp_path


def opened_with(name: str, page: str | None = "generate") -> AppTest:
    """The app in a session whose run key names `name`, as the Train page's Start sets it."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.session_state["run"] = name
    at.run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    return at


def test_a_queued_run_keeps_its_place(checkpoints):
    Run(checkpoints / "later").write_status("queued", arguments=["--out", str(checkpoints / "later")],
                                            queued_at=1.0)
    # The one training slot is taken (this process stands for that trainer), so "later" waits.
    with as_its_trainer(Run(checkpoints / "busy")):
        at = opened_with("later")
    no_failure(at)
    picker = at.sidebar.selectbox(key="run")
    assert picker.value == "later"
    assert picker.options == ["later", "cgan-report"]  # names only: the label never changes
    assert "is gone" not in messages(at)
    assert "Queued: it starts when a training slot frees" in " ".join(c.value for c in at.sidebar.caption)
    assert "Run later: Queued" in messages(at)  # the page says why it has nothing to draw yet


def test_a_starting_run_keeps_its_place(checkpoints):
    # A trainer alive (this process stands for it) that has not written its configuration yet.
    with as_its_trainer(Run(checkpoints / "soon"), state="starting"):
        at = opened_with("soon")
    no_failure(at)
    picker = at.sidebar.selectbox(key="run")
    assert (picker.value, picker.options) == ("soon", ["soon", "cgan-report"])
    assert "Run soon: Starting" in messages(at)


def test_a_run_that_did_not_start_stays_and_a_gone_one_gives_way(checkpoints):
    Run(checkpoints / "dead").write_status("starting", pid=None)  # no trainer: it ended before epoch 1
    at = opened_with("dead", page=None)
    assert at.sidebar.selectbox(key="run").value == "dead"  # it exists: no "gone", no jump
    assert "is gone" not in messages(at)
    assert "ended before the first epoch" in messages(at)
    at = opened_with("never-was", page=None)
    assert at.sidebar.selectbox(key="run").value == "cgan-report"
    assert "Run never-was is gone" in messages(at)
