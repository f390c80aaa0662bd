"""The load test, short: the real server and one Chromium carrying 1 and then 3 sessions; every
interaction must render (the bench waits for each new image and its caption) and the server's CPU
per interaction is measured and printed. The full measurement is bench/load_test.py."""

from __future__ import annotations

import asyncio
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench import load_test
from tests.browser_support import browser_missing


MISSING = browser_missing()
if MISSING and not os.environ.get("CI"):
    pytest.skip(f"load test skipped: {MISSING}", allow_module_level=True)


def test_sessions_render_every_change(tmp_path, cgan_run):
    if MISSING:  # in CI a missing browser is a failure, never a silent skip
        pytest.fail(f"load test cannot run in CI: {MISSING}")
    shutil.copytree(cgan_run.path, tmp_path / "cgan-report")
    # On a thread of its own: the session's shared Chromium keeps Playwright's loop on this one.
    with ThreadPoolExecutor(1) as thread:
        rows, idle_per_s = thread.submit(
            asyncio.run, load_test.measure(tmp_path, sessions=[1, 3], changes=2, pace=0.5, repeats=2)
        ).result()
    print(load_test.table(rows))
    print(f"server idle: {1000 * idle_per_s:.0f} ms CPU per second; {load_test.machine()}")
    counts = {(row.what.split(" (")[0], row.sessions): row.interactions for row in rows}
    assert counts == {
        ("page open", 1): 2, ("digit change", 1): 2, ("seed change", 1): 2, ("epoch slider", 1): 2,
        ("digit/seed every 0.5 s", 1): 2, ("digit/seed every 0.5 s", 3): 6,
    }
    for row in rows:
        # Every change rendered (the bench waits for each new image and its caption), and the
        # server did measurable work for it: a change that reached no server would cost nothing.
        assert row.not_rendered == 0 and row.server_ms > 0, row
