"""The trainer's command line refuses what it cannot do with one line, before any slow work, and
a damaged run it is asked to resume changes no file: exit 2 when the arguments are wrong, 1 when
the run's files are damaged or the run is busy."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_run
from cgan.runs import Run
from cgan.train import main
from tests.test_train import QUICK, cli_env, start_cli, wait_until_training


def one_line_error(capsys, code: int, expected_code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == expected_code, captured.err
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("device", ["meta", "cpu:7", "cuda:99", "gpu", ""])
def test_devices_that_cannot_train_are_refused(device, tmp_path, capsys):
    code = exit_code(["--device", device, "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, 2, f"--device {device}")
    assert not (tmp_path / "r").exists()


def test_out_that_is_a_file_or_under_a_file(tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_bytes(b"precious")
    for out in (file, file / "sub"):
        code = exit_code([*QUICK, "--out", str(out)])
        one_line_error(capsys, code, 2, "is a file, not a folder")
    assert file.read_bytes() == b"precious"


def test_out_in_a_place_that_cannot_be_written(capsys):
    # /sys refuses new files even to root, like a read-only mount.
    started = time.perf_counter()
    code = exit_code([*QUICK, "--out", "/sys/cgan-run"])
    one_line_error(capsys, code, 2, "/sys", "cannot be written")
    assert time.perf_counter() - started < 2  # refused before MNIST is loaded


def test_out_name_too_long(tmp_path, capsys):
    code = exit_code([*QUICK, "--out", str(tmp_path / ("x" * 300))])
    one_line_error(capsys, code, 2, "longer than 255 bytes")
    assert list(tmp_path.iterdir()) == []


def test_missing_data_dir_is_a_usage_error(tmp_path, capsys):
    code = exit_code([*QUICK, "--data-dir", "/nonexistent", "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, 2, "--data-dir /nonexistent", "no such folder")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------------
# Damaged runs asked to resume


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Run:
    return make_run(tmp_path_factory.mktemp("resume") / "run", epochs=2, limit=200, batch_size=100, seed=3)


def checksums(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(path.rglob("*")) if p.name != ".trainer.lock"
    }


def edit_config(run: Run, **changes) -> None:
    config = json.loads(run.config_path.read_text())
    run.config_path.write_text(json.dumps({**config, **changes}))


def replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("x")


def replace_with_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_text("not a folder")


DAMAGE = {
    "model-changed": (lambda run: edit_config(run, model="cdcgan"), "does not fit this run's cdcgan"),
    "model-unknown": (lambda run: edit_config(run, model="gpt"), "unknown model 'gpt'"),
    "width-text": (lambda run: edit_config(run, width="wide"), "width 'wide'"),
    "history-folder": (lambda run: replace_with_folder(run.history_path), "history.jsonl"),
    "weights-file": (lambda run: replace_with_file(run.path / "weights"), "weights: a file, expected a folder"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_resume_of_a_damaged_run_is_one_line_and_changes_nothing(case, finished_run, tmp_path, capsys):
    run = Run(tmp_path / "run")
    shutil.copytree(finished_run.path, run.path)
    damage, fragment = DAMAGE[case]
    damage(run)
    before = checksums(run.path)
    code = exit_code(["--out", str(run.path), "--resume", "--epochs", "4", "--device", "cpu"])
    line = one_line_error(capsys, code, 1, fragment)
    assert line.startswith("error: ")
    assert checksums(run.path) == before


def test_a_second_trainer_of_the_same_run_refuses(tmp_path):
    run, log = Run(tmp_path / "run"), tmp_path / "train.log"
    first = start_cli(*QUICK, "--epochs", "1000", "--out", str(run.path), cwd=tmp_path, log=log)
    try:
        wait_until_training(first, run, log)
        second = subprocess.run(
            [sys.executable, "-m", "cgan.train", "--out", str(run.path), "--resume", "--epochs", "1000",
             "--device", "cpu"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=cli_env(),
        )
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 1 and len(lines) == 1, second.stderr
        assert "already being trained" in lines[0]
        assert first.poll() is None  # the first one trains on, undisturbed
        assert run.status()["pid"] == first.pid
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert first.returncode == 130
