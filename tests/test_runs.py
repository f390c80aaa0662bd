"""The run directory: its files, crash repair, pruning, and loading that never runs code from a file."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cgan.models import get_model
from cgan.history import EpochRecord
from cgan.keep import parse_keep
from cgan.runs import Run, RunError, check_run_name, list_runs
from cgan.sampling import fixed_grid_inputs, generate

ROOT = Path(__file__).resolve().parent.parent


def copy_run(run: Run, tmp_path: Path, name: str = "copy") -> Run:
    return Run(shutil.copytree(run.path, tmp_path / name))


def one_line(error: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# ---------------------------------------------------------------------------------------------
# The files a finished run holds


def test_run_layout_and_config(cgan_run):
    path = cgan_run.path
    for epoch in range(1, 5):
        assert (path / "grids" / f"epoch_{epoch:04d}.png").is_file()
        assert (path / "weights" / f"generator_{epoch:04d}.pt").is_file()
    assert (path / "last.pt").is_file()
    assert not list(path.rglob("*.tmp")), "temporary files left behind"

    config = json.loads((path / "config.json").read_text())
    assert config["model"] == "cgan" and config["epochs"] == 4 and config["seed"] == 1
    assert config["limit"] == 3000 and config["train_images"] == 3000
    assert config["batch_size"] == 150 and config["iterations_per_epoch"] == 20
    assert config["generator_parameters"] == 115_344
    assert config["discriminator_parameters"] == 101_889
    assert cgan_run.config() == config

    status = json.loads((path / "status.json").read_text())
    assert status["state"] == "finished" and status["epochs_total"] == 4 and status["epochs_done"] == 4
    assert cgan_run.status() == status


def test_history_records(cgan_run):
    lines = cgan_run.history_path.read_text().splitlines()
    assert len(lines) == 4
    raw = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in raw] == [1, 2, 3, 4]
    for r in raw:
        assert {"epoch", "d_loss", "g_loss", "epoch_seconds", "wall_seconds", "finished_at"} <= set(r)
        assert np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"])
        assert 0 < r["epoch_seconds"] <= r["wall_seconds"]
    assert [r["finished_at"] for r in raw] == sorted(r["finished_at"] for r in raw)
    history = cgan_run.history()
    assert [h.to_json() for h in history] == raw
    assert cgan_run.epochs() == [1, 2, 3, 4] == cgan_run.weight_epochs()


def test_grid_is_the_generator_on_the_fixed_noise(cgan_run):
    z, labels = fixed_grid_inputs(cgan_run.config()["seed"])
    previous = None
    for epoch in cgan_run.epochs():
        with Image.open(cgan_run.grid_path(epoch)) as png:
            assert png.size == (280, 280) and png.mode == "L"
        grid = cgan_run.grid(epoch)
        assert grid.shape == (280, 280) and grid.dtype == np.uint8
        expected = generate(cgan_run.load_generator(epoch), labels, z).reshape(10, 10, 28, 28)
        # Cell (row i, column j) is digit i from noise vector j.
        assert np.array_equal(cgan_run.grid_images(epoch), expected)
        assert np.array_equal(grid[28:56, 56:84], expected[1, 2])
        if previous is not None:
            assert not np.array_equal(grid, previous)  # training moved the generator
        previous = grid


def test_last_state_matches_the_newest_epoch(cgan_run):
    state = cgan_run.load_resume_state()
    assert state["epoch"] == 4
    assert state["record"] == cgan_run.history()[-1].to_json()
    weights = torch.load(cgan_run.weights_path(4), weights_only=True)
    assert weights.keys() == state["generator"].keys()
    assert all(torch.equal(weights[k], state["generator"][k]) for k in weights)
    assert {"discriminator", "opt_g", "opt_d", "rng"} <= set(state)


def test_load_generator_defaults_to_the_newest_saved_epoch(cgan_run, tmp_path):
    newest = cgan_run.load_generator()
    fourth = cgan_run.load_generator(4)
    assert not newest.training
    assert all(torch.equal(a, b) for a, b in
               zip(newest.state_dict().values(), fourth.state_dict().values(), strict=True))
    run = copy_run(cgan_run, tmp_path)
    run.weights_path(4).unlink()
    third = cgan_run.load_generator(3)
    assert all(
        torch.equal(a, b)
        for a, b in zip(run.load_generator().state_dict().values(), third.state_dict().values(), strict=True)
    )
    with pytest.raises(RunError) as error:
        run.load_generator(4)
    one_line(error, "generator_0004.pt", "missing")


def test_reading_something_that_is_not_a_run(tmp_path):
    with pytest.raises(RunError) as error:
        Run(tmp_path / "nothing").load_generator()
    one_line(error, "not a run")
    empty = Run(tmp_path / "empty")
    empty.create({"model": "cgan", "width": 1.0})
    assert empty.epochs() == [] and empty.weight_epochs() == []
    with pytest.raises(RunError) as error:
        empty.load_generator()
    one_line(error, "no finished epoch")


def test_a_run_is_a_folder_with_its_configuration_a_launch_has_a_status(cgan_run, tmp_path):
    from cgan.sampling import enclosing_run

    nothing, launch = Run(tmp_path / "nothing"), Run(tmp_path / "launch")
    launch.write_status("starting", arguments=["--epochs", "2"])
    assert (nothing.exists(), nothing.launched()) == (False, False)
    assert (launch.exists(), launch.launched()) == (False, True)
    assert (cgan_run.exists(), cgan_run.launched()) == (True, True)
    (tmp_path / "history-only").mkdir()
    (tmp_path / "history-only" / "history.jsonl").write_text("")
    assert not Run(tmp_path / "history-only").launched()
    # cgan.sample refuses to write into a run or a launch, at any depth below it.
    assert enclosing_run(launch.path / "grids") == launch.path
    assert enclosing_run(cgan_run.path / "weights") == cgan_run.path
    assert enclosing_run(tmp_path / "history-only") is None and enclosing_run(tmp_path) is None


@pytest.mark.parametrize("config_format,width,loads", [
    (None, None, True),  # format 1, from before the width option: width 1
    (None, 1.0, True),
    (2, 1.0, True),
    (2, None, False),  # format 2 holds every option: a missing width is damage
    (2, 0.5, False),  # a width the weights do not fit
])
def test_the_networks_width_is_read_by_the_configurations_format(cgan_run, tmp_path, config_format, width, loads):
    run = copy_run(cgan_run, tmp_path)
    config = {k: v for k, v in run.config().items() if k not in ("format", "width")}
    config.update({} if config_format is None else {"format": config_format})
    config.update({} if width is None else {"width": width})
    run.config_path.write_text(json.dumps(config))
    if loads:
        assert sum(p.numel() for p in run.load_generator(4).parameters()) == 115_344
    else:
        with pytest.raises(RunError) as error:
            run.load_generator(4)
        one_line(error, "config.json" if width is None else "generator_0004.pt")


# ---------------------------------------------------------------------------------------------
# Crash repair


def test_repair_restores_the_record_a_crash_lost(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    lines = run.history_path.read_text().splitlines(keepends=True)
    # The crash came after last.pt was written and before the history record.
    run.history_path.write_text("".join(lines[:3]))
    assert run.epochs() == [1, 2, 3]
    assert run.weight_epochs() == [1, 2, 3]  # epoch 4's weights are not listed until complete
    assert run.repair() == 4
    assert run.history_path.read_text() == "".join(lines)


def test_repair_refuses_a_history_two_epochs_behind(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    lines = run.history_path.read_text().splitlines(keepends=True)
    run.history_path.write_text("".join(lines[:2]))
    with pytest.raises(RunError) as error:
        run.repair()
    one_line(error, "history ends at epoch 2", "last.pt holds epoch 4")


def test_torn_or_foreign_history_lines_end_the_listing(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    text = run.history_path.read_text()
    run.history_path.write_text(text + '{"epoch": 5, "d_lo')
    assert run.epochs() == [1, 2, 3, 4]
    gap = json.dumps({**cgan_run.history()[-1].to_json(), "epoch": 7})
    run.history_path.write_text(text + gap + "\n")
    assert run.epochs() == [1, 2, 3, 4]


def test_update_metrics_merges_into_one_record(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    run.update_metrics(2, {"accuracy": 0.5})
    run.update_metrics(2, {"frechet": 12.0})
    records = run.history()
    assert records[1].metrics == {"accuracy": 0.5, "frechet": 12.0}
    assert [r.metrics for r in records if r.epoch != 2] == [None, None, None]
    assert records[1].d_loss == cgan_run.history()[1].d_loss
    with pytest.raises(RunError) as error:
        run.update_metrics(9, {"accuracy": 1.0})
    one_line(error, "epoch 9 is not complete")


def test_epoch_record_round_trip():
    record = EpochRecord(epoch=3, d_loss=1.25, g_loss=0.5, epoch_seconds=0.2, wall_seconds=0.3, finished_at=9.0)
    assert "metrics" not in record.to_json()
    assert EpochRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_prune_keeps_the_policy_and_the_newest(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    before = run.load_generator(2).state_dict()
    run.prune(parse_keep("every2"), drop_resume_state=True, half=True)
    assert run.weight_epochs() == [2, 4]
    assert sorted(p.name for p in (run.path / "weights").iterdir()) == [
        "discriminator_0002.pt", "discriminator_0004.pt", "generator_0002.pt", "generator_0004.pt"]
    assert not run.last_path.exists()
    stored = torch.load(run.weights_path(2), weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored.values())
    after = run.load_generator(2).state_dict()
    for key in before:
        assert torch.allclose(before[key], after[key], atol=1e-3, rtol=1e-3)
    assert run.epochs() == [1, 2, 3, 4]  # history and grids stay
    assert all(run.grid_path(e).is_file() for e in range(1, 5))


def test_list_runs_and_run_names(cgan_run, tmp_path):
    older = copy_run(cgan_run, tmp_path, "older")
    newer = copy_run(cgan_run, tmp_path, "newer")
    os.utime(older.config_path, (1_000_000, 1_000_000))
    (tmp_path / "not-a-run").mkdir()
    assert [r.name for r in list_runs(tmp_path)] == ["newer", "older"]
    assert list_runs(tmp_path / "absent") == []
    assert newer.exists() and not Run(tmp_path / "not-a-run").exists()
    assert check_run_name("cgan-s0_v1.2") == "cgan-s0_v1.2"
    for bad in ("", "..", "../x", "a/b", ".hidden", "-x", "x" * 65, "a b"):
        with pytest.raises(ValueError):
            check_run_name(bad)


# ---------------------------------------------------------------------------------------------
# Loading never runs code from a file


class Planted:
    """Unpickling this runs code: it writes `marker`. Stands in for a malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def plant(path: Path, marker: Path, how: str) -> None:
    payload = {"hidden.weight": Planted(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)


def load_unsafely(path: Path, how: str) -> None:
    """The control: the planted file really does run code when loaded without protection."""
    if how == "torch.save":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_load_generator_refuses_planted_code(cgan_run, tmp_path, how):
    run = copy_run(cgan_run, tmp_path)
    marker = tmp_path / "marker"
    plant(run.weights_path(1), marker, how)
    with pytest.raises(RunError) as error:
        run.load_generator(1)
    one_line(error, "generator_0001.pt", "refused")
    assert not marker.exists()
    load_unsafely(run.weights_path(1), how)
    assert marker.read_text() == "code ran"


def test_resume_refuses_planted_code(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    marker = tmp_path / "marker"
    plant(run.last_path, marker, "torch.save")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "cgan.train", "--out", str(run.path), "--resume", "--epochs", "6", "--device", "cpu"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refused" in lines[0] and "last.pt" in lines[0]
    assert not marker.exists()
    assert run.epochs() == [1, 2, 3, 4]
    assert not run.grid_path(5).exists()
    load_unsafely(run.last_path, "torch.save")
    assert marker.read_text() == "code ran"


def test_resume_state_refuses_a_plain_pickle_in_one_line(cgan_run, tmp_path):
    # torch.load warns on the way to refusing a non-torch pickle; that warning would reach the
    # trainer's stderr as extra lines, so loading must stay silent and leave one RunError line.
    run = copy_run(cgan_run, tmp_path)
    marker = tmp_path / "marker"
    plant(run.last_path, marker, "pickle")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RunError) as error:
            run.load_resume_state()
        with pytest.raises(RunError):
            run.repair()  # what --resume calls first
    one_line(error, "last.pt", "refused")
    assert [str(w.message) for w in caught] == []
    assert not marker.exists()
    load_unsafely(run.last_path, "pickle")
    assert marker.read_text() == "code ran"


def test_truncated_weights_are_reported(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    data = run.weights_path(2).read_bytes()
    run.weights_path(2).write_bytes(data[: len(data) // 2])
    with pytest.raises(RunError) as error:
        run.load_generator(2)
    one_line(error, "generator_0002.pt", "unreadable or truncated")
    run.last_path.write_bytes(run.last_path.read_bytes()[:1000])
    with pytest.raises(RunError) as error:
        run.load_resume_state()
    one_line(error, "last.pt", "unreadable or truncated")
    run.weights_path(3).write_bytes(b"")
    with pytest.raises(RunError) as error:
        run.load_generator(3)
    one_line(error, "generator_0003.pt", "unreadable or truncated")


def test_weights_of_another_model_are_reported(cgan_run, tmp_path):
    run = copy_run(cgan_run, tmp_path)
    torch.save(get_model("cdcgan").generator(0.125).state_dict(), run.weights_path(1))
    with pytest.raises(RunError) as error:
        run.load_generator(1)
    one_line(error, "generator_0001.pt", "does not fit a cgan generator")
