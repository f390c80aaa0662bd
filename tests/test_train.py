"""Training: determinism, bit-exact resume, the report's log lines, argument errors, stopping,
crash safety under SIGKILL, readers during a run, and the keep policy."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import make_run, wait_until
from cgan.limits import MAX_SEED, TRAIN_IMAGES
from cgan.keep import parse_keep
from cgan.runs import Run
from cgan.sampling import fixed_grid_inputs, generate
from cgan.config import TrainConfig
from cgan.train import main

ROOT = Path(__file__).resolve().parent.parent
EPOCH_LINE = re.compile(
    r"^\[([ \d]{3})/(\d+)\] ptime: (\d+\.\d\d) \| d_loss: (-?\d+\.\d{3}) \| g_loss: (-?\d+\.\d{3})$"
)
AVG_LINE = re.compile(r"^= Avg ptime per epoch: (\d+\.\d{3}) \| total (\d+) epochs time: (\d+\.\d{3})$")


def cli_env() -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def train_cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cgan.train", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=cli_env(),
    )


def start_cli(*args: str, cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cgan.train", *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=cli_env(),
        )


def wait_until_training(proc: subprocess.Popen, run: Run, log: Path, timeout: float = 120) -> None:
    """Until this process has created the run and announced itself in status.json."""
    def training() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"trainer exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        return run.status().get("state") == "running" and run.status().get("pid") == proc.pid

    try:
        wait_until(training, timeout, interval=0.02, message="the trainer to start")
    except AssertionError:
        proc.kill()
        raise


def assert_complete(run: Run) -> list[int]:
    """Every listed epoch is contiguous from 1 and has a readable grid and loadable weights."""
    epochs = run.epochs()
    assert epochs == list(range(1, len(epochs) + 1)), epochs
    for epoch in epochs:
        assert run.grid(epoch).shape == (280, 280)
        run.load_generator(epoch)
    assert run.weight_epochs() == epochs
    return epochs


def state_equal(a, b) -> bool:
    """Deep equality of nested state dicts, tensors compared bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(state_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def losses(run: Run) -> list[tuple[float, float]]:
    return [(r.d_loss, r.g_loss) for r in run.history()]


# ---------------------------------------------------------------------------------------------
# Determinism and resume


def test_same_seed_gives_identical_weights(tmp_path):
    settings = dict(epochs=2, limit=300, batch_size=100)
    first = make_run(tmp_path / "a", seed=7, **settings)
    second = make_run(tmp_path / "b", seed=7, **settings)
    other = make_run(tmp_path / "c", seed=8, **settings)
    for epoch in (1, 2):
        a = torch.load(first.weights_path(epoch), weights_only=True)
        b = torch.load(second.weights_path(epoch), weights_only=True)
        assert state_equal(a, b)
        assert np.array_equal(first.grid(epoch), second.grid(epoch))
    a, b = first.load_resume_state(), second.load_resume_state()
    for key in ("generator", "discriminator", "opt_g", "opt_d", "rng"):
        assert state_equal(a[key], b[key]), key
    assert losses(first) == losses(second)
    assert losses(first) != losses(other)
    assert not torch.equal(
        first.load_generator(2).state_dict()["out.weight"], other.load_generator(2).state_dict()["out.weight"]
    )


def test_resume_is_bit_for_bit_and_logs_the_reports_lines(tmp_path):
    # Both references train in this process; the resume goes through the command line. The
    # process gets this process's thread count, so the two sides do the same arithmetic.
    settings = dict(limit=600, seed=4)
    uninterrupted = make_run(tmp_path / "whole", epochs=4, **settings)
    resumed = make_run(tmp_path / "split", epochs=2, **settings)
    threads = str(torch.get_num_threads())
    rest = subprocess.run(
        [sys.executable, "-m", "cgan.train", "--out", str(resumed.path), "--resume", "--epochs", "4",
         "--device", "cpu"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
        env={**cli_env(), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
    )
    assert rest.returncode == 0, rest.stderr

    a, b = uninterrupted.load_resume_state(), resumed.load_resume_state()
    assert a["epoch"] == b["epoch"] == 4
    for key in ("generator", "discriminator", "opt_g", "opt_d", "rng"):
        assert state_equal(a[key], b[key]), key
    assert losses(uninterrupted) == losses(resumed)
    for epoch in range(1, 5):
        assert np.array_equal(uninterrupted.grid(epoch), resumed.grid(epoch))
        assert state_equal(
            torch.load(uninterrupted.weights_path(epoch), weights_only=True),
            torch.load(resumed.weights_path(epoch), weights_only=True),
        )
    assert resumed.config()["epochs"] == 4 and resumed.status()["state"] == "finished"

    # The report's per-epoch line for the epochs this process trained, then the average.
    lines = rest.stdout.splitlines()
    epoch_lines = [line for line in lines if line.startswith("[")]
    assert [line[:7] for line in epoch_lines] == ["[  3/4]", "[  4/4]"]
    history = resumed.history()[2:]
    for line, record in zip(epoch_lines, history, strict=True):
        match = EPOCH_LINE.match(line)
        assert match, line
        assert int(match.group(1)) == record.epoch and match.group(2) == "4"
        assert match.group(3) == f"{record.epoch_seconds:.2f}"
        assert match.group(4) == f"{record.d_loss:.3f}" and match.group(5) == f"{record.g_loss:.3f}"
    average = [AVG_LINE.match(line) for line in lines if "Avg ptime per epoch" in line]
    assert len(average) == 1 and average[0], lines
    assert lines.index(average[0].string) > lines.index(epoch_lines[-1])
    mean = sum(r.epoch_seconds for r in history) / 2
    assert float(average[0].group(1)) == pytest.approx(mean, abs=6e-4)
    assert average[0].group(2) == "2"


def test_loss_sanity_on_3000_images(cgan_run):
    config = cgan_run.config()
    assert config["train_images"] == 3000 and config["iterations_per_epoch"] == 20
    first = cgan_run.history()[0]
    for value in (first.d_loss, first.g_loss):
        assert math.isfinite(value) and 0 < value < 10
    assert all(math.isfinite(r.d_loss) and math.isfinite(r.g_loss) for r in cgan_run.history())


# ---------------------------------------------------------------------------------------------
# Argument errors: exit status 2 and one line on stderr


@pytest.fixture
def existing_cgan_config(tmp_path) -> Path:
    """A run directory with the configuration a real run writes (enough for argument checks)."""
    path = tmp_path / "existing"
    Run(path).create(TrainConfig.for_model("cgan", epochs=3, limit=300).__dict__)
    return path


BAD_ARGUMENTS = {
    "epochs-0": (["--epochs", "0"], "--epochs 0"),
    "lr-negative": (["--lr", "-1"], "--lr -1"),
    "lr-2": (["--lr", "2"], "--lr 2"),
    "beta1": (["--beta1", "1.5"], "--beta1"),
    "batch-over-limit": (["--limit", "100", "--batch-size", "200"], "--batch-size 200"),
    "limit-0": (["--limit", "0"], "--limit 0"),
    "width-for-cgan": (["--model", "cgan", "--width", "0.5"], "--width"),
    "keep-garbage": (["--keep", "garbage"], "garbage"),
    "device-cuda": (["--device", "cuda"], "cuda"),
    "model-unknown": (["--model", "nope"], "nope"),
    "epochs-text": (["--epochs", "many"], "--epochs"),
}


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS), ids=list(BAD_ARGUMENTS))
def test_bad_arguments_exit_2_with_one_line(case, tmp_path, capsys):
    args, fragment = BAD_ARGUMENTS[case]
    if case == "device-cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "new-run"
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(out)])
    captured = capsys.readouterr()
    assert info.value.code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m cgan.train: error:") and fragment in lines[0], lines[0]
    assert captured.out == ""
    assert not out.exists()


def test_existing_out_without_resume(existing_cgan_config, capsys):
    config_before = existing_cgan_config.joinpath("config.json").read_text()
    with pytest.raises(SystemExit) as info:
        main(["--out", str(existing_cgan_config), "--epochs", "2"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1
    assert str(existing_cgan_config) in lines[0] and "--resume" in lines[0]
    assert existing_cgan_config.joinpath("config.json").read_text() == config_before


def test_resume_of_a_missing_run(tmp_path, capsys):
    missing = tmp_path / "missing"
    with pytest.raises(SystemExit) as info:
        main(["--out", str(missing), "--resume"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1
    assert "--resume" in lines[0] and str(missing) in lines[0] and "not a run" in lines[0]
    assert not missing.exists()


def test_resume_with_a_contradicting_model(existing_cgan_config, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--out", str(existing_cgan_config), "--resume", "--model", "cdcgan"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(lines) == 1
    assert "--model cdcgan" in lines[0] and "cgan" in lines[0] and "contradicts" in lines[0]


def test_bad_argument_through_a_real_process(tmp_path):
    result = train_cli("--epochs", "0", "--out", str(tmp_path / "r"), cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--epochs 0" in lines[0], result.stderr


# ---------------------------------------------------------------------------------------------
# Stopping, crashing, and reading while training

QUICK = ["--limit", "200", "--batch-size", "100", "--device", "cpu"]  # 2 iterations an epoch


def test_sigint_stops_after_the_epoch_and_readers_only_see_complete_epochs(tmp_path):
    run, log = Run(tmp_path / "run"), tmp_path / "train.log"
    proc = start_cli(*QUICK, "--epochs", "1000", "--seed", "5", "--out", str(run.path), cwd=tmp_path, log=log)
    try:
        wait_until_training(proc, run, log)
        z, labels = fixed_grid_inputs(5)
        verified: set[int] = set()

        def four_verified() -> bool:
            """A reader polling the run while it is written: whatever it lists is whole and consistent."""
            assert proc.poll() is None, log.read_text()
            epochs = run.epochs()
            assert epochs == list(range(1, len(epochs) + 1)), epochs
            for epoch in epochs:
                if epoch in verified:
                    continue
                grid = run.grid_images(epoch)
                generator = run.load_generator(epoch)
                # The grid and the weights belong to the same epoch.
                assert np.array_equal(grid, generate(generator, labels, z).reshape(10, 10, 28, 28))
                verified.add(epoch)
            return len(verified) >= 4

        wait_until(four_verified, 120, interval=0, message="four epochs (the trainer made too little progress)")
        listed_at_signal = len(run.epochs())
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still training 60 s after SIGINT (epoch {len(run.epochs())}): the stop was ignored")
        assert code == 130, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert "SIGINT: stopping after this epoch is written" in output
    epoch_lines = [line for line in output.splitlines() if line.startswith("[")]
    assert epoch_lines[0].startswith("[  1/1000] ptime: ")
    assert all(EPOCH_LINE.match(line) for line in epoch_lines), epoch_lines
    epochs = assert_complete(run)
    # It finished the epoch in progress and no more: the trainer's own log says where the signal
    # reached it (epochs are short here, so several may pass between the listing and the signal).
    # An epoch's line is printed once the writer thread has saved it, and the writer holds one
    # finished epoch and one waiting in its queue of one while the next trains: up to two finished
    # epochs may not be in the log yet when the signal comes.
    lines = output.splitlines()
    at_signal = [i for i, line in enumerate(lines) if "SIGINT: stopping" in line][0]
    done_at_signal = sum(line.startswith("[") for line in lines[:at_signal])
    assert listed_at_signal <= len(epochs) <= done_at_signal + 3, (listed_at_signal, done_at_signal)
    assert len(epochs) < 1000
    status = run.status()
    assert status["state"] == "stopped" and status["epochs_done"] == len(epochs)
    assert run.load_resume_state()["epoch"] == epochs[-1]
    assert f"+ stopped at epoch {epochs[-1]}/1000" in output


def test_sigkill_at_random_moments_loses_no_finished_epoch(tmp_path):
    rng = random.Random(1234)
    run, log = Run(tmp_path / "run"), tmp_path / "train.log"
    args = [*QUICK, "--epochs", "1000", "--seed", "6", "--out", str(run.path)]
    done = 0
    for life in range(8):
        proc = start_cli(*args, *(["--resume"] if life else []), cwd=tmp_path, log=log)
        try:
            wait_until_training(proc, run, log)
            # Once this life has committed an epoch, each epoch is mostly file writing (grid,
            # weights, last.pt, history): a random moment then lands somewhere inside that.
            wait_until(lambda done=done, proc=proc: len(run.epochs()) > done or proc.poll() is not None, 60,
                       interval=0.01, message=f"an epoch after epoch {done}")
            time.sleep(rng.uniform(0.0, 0.5))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
        epochs = assert_complete(run)
        assert len(epochs) > done, "a finished epoch was lost, or none was added"
        history = run.history()
        assert all(r.epoch_seconds > 0 and math.isfinite(r.d_loss) for r in history)
        done = len(epochs)

    final = done + 3
    result = train_cli("--out", str(run.path), "--resume", "--epochs", str(final), "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert assert_complete(run) == list(range(1, final + 1))
    assert run.status()["state"] == "finished"
    assert run.load_resume_state()["epoch"] == final
    records = [json.loads(line) for line in run.history_path.read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, final + 1))


# ---------------------------------------------------------------------------------------------
# Keep policy


def test_keep_policy_over_five_epochs(tmp_path):
    run = make_run(tmp_path / "kept", epochs=5, limit=300, batch_size=100, keep="1,every2", seed=3)
    assert run.epochs() == [1, 2, 3, 4, 5]
    assert run.weight_epochs() == [1, 2, 4, 5]  # 5 is the newest: always kept
    assert sorted(p.name for p in (run.path / "weights").iterdir()) == [
        "discriminator_0001.pt", "discriminator_0002.pt", "discriminator_0004.pt", "discriminator_0005.pt",
        "generator_0001.pt", "generator_0002.pt", "generator_0004.pt", "generator_0005.pt",
    ]  # the discriminator's weights follow the generator's
    assert all(run.grid_path(e).is_file() for e in range(1, 6))  # grids are always kept
    assert run.load_resume_state()["epoch"] == 5


def test_parse_keep():
    assert parse_keep("all").keep_all and parse_keep("").keep_all
    policy = parse_keep("1-3, every5 ,20")
    assert [e for e in range(1, 26) if policy.keeps(e, final_epoch=25)] == [1, 2, 3, 5, 10, 15, 20, 25]
    last = parse_keep("last")
    assert [e for e in range(1, 8) if last.keeps(e, final_epoch=7)] == [7]
    for bad in ("garbage", "every0", "every", "5-2", "0", "-3", "1,,2", "everyx"):
        with pytest.raises(ValueError) as info:
            parse_keep(bad)
        message = str(info.value)
        assert "\n" not in message and "use all, last, N, A-B or everyK" in message, (bad, message)


# ---------------------------------------------------------------------------------------------
# The one validator: TrainConfig.problems


def test_problems_is_empty_for_the_defaults_and_names_each_bad_field():
    assert TrainConfig.for_model("cgan").problems() == {}
    assert TrainConfig.for_model("cdcgan", width=0.25, limit=1000, seed=MAX_SEED).problems() == {}
    bad = TrainConfig(
        model="cgan", epochs=0, batch_size=70_000, lr=float("inf"), beta1=1.0, beta2=float("nan"),
        seed=MAX_SEED + 1, width=0.5, limit=TRAIN_IMAGES + 1, keep="every0", metrics_every=-1,
        metrics_samples=99,
    )
    problems = bad.problems()
    assert list(problems) == [
        "epochs", "limit", "batch_size", "lr", "beta1", "beta2", "seed", "width", "keep", "metrics_every",
        "metrics_samples",
    ]
    assert all(message and "\n" not in message for message in problems.values())
    assert f"{TRAIN_IMAGES:,}" in problems["limit"] and f"{MAX_SEED:,}" in problems["seed"]
    assert "cdcgan only" in problems["width"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("model", "nope"), ("model", 3), ("epochs", "many"), ("epochs", True), ("epochs", 2.5),
        ("batch_size", None), ("lr", 0.0), ("lr", -1e-3), ("lr", float("nan")), ("lr", "1e-3"),
        ("lr", 1e400), ("seed", -1), ("seed", 2**70), ("width", "wide"), ("keep", 5), ("keep", "0"),
        ("limit", 0), ("metrics_every", "x"), ("metrics_samples", 1001), ("metrics_samples", 2.0),
    ],
)
def test_problems_never_raises_and_flags_only_the_bad_field(field, value):
    config = dataclasses.replace(TrainConfig.for_model("cgan"), **{field: value})
    assert list(config.problems()) == [field]


def test_cli_prints_the_first_problem_with_its_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--seed", str(MAX_SEED + 1), "--lr", "0", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1
    assert err[0] == f"python -m cgan.train: error: --lr 0.0: {TrainConfig(lr=0.0).problems()['lr']}"
