"""Inputs a hostile user (or a damaged disk) hands the library and its command lines: huge keep
ranges, PIDs on disk that are not the run's trainer, odd run names, non-finite and deeply nested
JSON, special files, full disks and read-only folders, symlinks out of a run, a lying last.pt, and
settings that used to end in a traceback. The rule everywhere: one line and a clear exit status,
nothing left behind, and no process or file outside the run touched."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from cgan.runs import Run, parse_keep
from conftest import make_run
from tests.fuzz_support import cli_env

ROOT = Path(__file__).resolve().parent.parent


def quick_argv(out: Path, *extra: str) -> list[str]:
    return ["--out", str(out), "--epochs", "2", "--limit", "150", "--seed", "5",
            "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Run:
    """A real 2-epoch CGAN run on 150 images."""
    return make_run(tmp_path_factory.mktemp("hostile") / "tiny", epochs=2, limit=150, seed=5)


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
