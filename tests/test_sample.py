"""`python -m cgan.sample`: PNG grids and .npz arrays of samples from a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cgan.sampling import main, noise, parse_digits, tile

ROOT = Path(__file__).resolve().parent.parent


def sample_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "cgan.sample", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def sample_npz(run, tmp_path: Path, name: str, *args: str) -> tuple[np.ndarray, np.ndarray]:
    """Run the command in this process (same code path as the subprocess) and read the .npz."""
    out = tmp_path / f"{name}.npz"
    assert main(["--run", str(run.path), "--out", str(out), *args]) == 0
    with np.load(out) as data:
        return data["images"], data["labels"]


def test_png_from_the_command_line_and_npz(cgan_run, tmp_path):
    png = tmp_path / "out" / "grid.png"
    result = sample_cli(
        "--run", str(cgan_run.path), "--epoch", "4", "--digit", "all", "--n", "5", "--seed", "7",
        "--out", str(png), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote 50 samples to {png}"
    # The same request as .npz (in this process: the same entry point, without a second start-up).
    images, labels = sample_npz(
        cgan_run, tmp_path, "samples", "--epoch", "4", "--digit", "all", "--n", "5", "--seed", "7"
    )
    assert images.shape == (50, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [d for d in range(10) for _ in range(5)]
    assert images.std() > 10  # real pictures, not a blank array

    with Image.open(png) as image:
        assert image.format == "PNG" and image.mode == "L"
        # 10 rows x 5 columns of 28-pixel cells with 2-pixel gaps, upscaled 4x (the default).
        assert image.size == ((5 * 30 - 2) * 4, (10 * 30 - 2) * 4)
        pixels = np.asarray(image)
    # Nearest-neighbour upscaling: every 4x4 block is one pixel, and the mosaic is the npz images.
    mosaic = pixels[::4, ::4]
    assert np.array_equal(np.repeat(np.repeat(mosaic, 4, 0), 4, 1), pixels)
    assert np.array_equal(mosaic, tile(images, columns=5, pad=2))
    assert np.array_equal(mosaic[3 * 30 : 3 * 30 + 28, 2 * 30 : 2 * 30 + 28], images[3 * 5 + 2])


def test_png_scale_option(cgan_run, tmp_path):
    out = tmp_path / "one.png"
    assert main(["--run", str(cgan_run.path), "--digit", "3", "--n", "4", "--scale", "1", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.size == (4 * 30 - 2, 28)


def test_digit_list_and_labels(cgan_run, tmp_path):
    images, labels = sample_npz(cgan_run, tmp_path, "list", "--digit", "3,5", "--n", "4")
    assert images.shape == (8, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [3, 3, 3, 3, 5, 5, 5, 5]


def test_the_digit_changes_the_image(cgan_run, tmp_path):
    three, labels3 = sample_npz(cgan_run, tmp_path, "three", "--digit", "3", "--n", "8", "--seed", "1")
    seven, labels7 = sample_npz(cgan_run, tmp_path, "seven", "--digit", "7", "--n", "8", "--seed", "1")
    assert labels3.tolist() == [3] * 8 and labels7.tolist() == [7] * 8
    difference = np.abs(three.astype(int) - seven.astype(int)).mean(axis=(1, 2))
    assert (difference > 1.0).all(), difference  # every pair differs, same noise, other label


def test_same_seed_same_pixels_other_seed_other_pixels(cgan_run, tmp_path):
    first, _ = sample_npz(cgan_run, tmp_path, "a", "--digit", "all", "--n", "3", "--seed", "11")
    again, _ = sample_npz(cgan_run, tmp_path, "b", "--digit", "all", "--n", "3", "--seed", "11")
    other, _ = sample_npz(cgan_run, tmp_path, "c", "--digit", "all", "--n", "3", "--seed", "12")
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert (np.abs(first.astype(int) - other.astype(int)).mean(axis=(1, 2)) > 0).all()


def test_a_seed_names_the_same_vectors_whatever_n(cgan_run, tmp_path):
    few, _ = sample_npz(cgan_run, tmp_path, "few", "--digit", "4", "--n", "2", "--seed", "5")
    many, _ = sample_npz(cgan_run, tmp_path, "many", "--digit", "4", "--n", "6", "--seed", "5")
    assert np.array_equal(few, many[:2])
    longest = noise(5, 1001)
    for n in [*range(1, 14), 99, 100, 101, 1000]:
        assert torch.equal(noise(5, n), longest[:n]), n


def test_the_run_seed_reproduces_the_runs_grid(cgan_run, tmp_path):
    # The grid's column j is noise vector j of the run's seed, so sampling with that seed redraws it.
    seed = cgan_run.config()["seed"]
    images, labels = sample_npz(cgan_run, tmp_path, "grid", "--epoch", "3", "--n", "10", "--seed", str(seed))
    assert np.array_equal(images.reshape(10, 10, 28, 28), cgan_run.grid_images(3))
    # One vector alone (as a page showing "all digits in one hand" draws it) matches its column.
    column, _ = sample_npz(cgan_run, tmp_path, "col", "--epoch", "3", "--n", "7", "--seed", str(seed))
    assert np.array_equal(column.reshape(10, 7, 28, 28)[:, 6], cgan_run.grid_images(3)[:, 6])


def test_the_epoch_selects_the_weights(cgan_run, tmp_path):
    first, _ = sample_npz(cgan_run, tmp_path, "e1", "--epoch", "1", "--digit", "0", "--n", "4")
    last, _ = sample_npz(cgan_run, tmp_path, "e4", "--epoch", "4", "--digit", "0", "--n", "4")
    default, _ = sample_npz(cgan_run, tmp_path, "e", "--digit", "0", "--n", "4")
    assert not np.array_equal(first, last)
    assert np.array_equal(default, last)  # no --epoch: the newest saved epoch


@pytest.mark.parametrize("digit", ["12", "x", "3,,4"])
def test_bad_digit_exits_2_with_one_line(cgan_run, tmp_path, digit):
    if digit == "12":  # one case through a real process, for the real exit status
        result = sample_cli("--run", str(cgan_run.path), "--digit", digit, "--out", str(tmp_path / "x.png"), cwd=tmp_path)
        code, stderr = result.returncode, result.stderr
    else:
        code, stderr = run_main_expecting_exit(
            ["--run", str(cgan_run.path), "--digit", digit, "--out", str(tmp_path / "x.png")]
        )
    lines = stderr.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and "--digit" in lines[0], stderr
    assert not (tmp_path / "x.png").exists()


def run_main_expecting_exit(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, stderr.getvalue()


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--n", "0"], "--n"),
        (["--scale", "0"], "--scale"),
        (["--out", "x.jpg"], "--out"),
    ],
)
def test_other_bad_options_exit_2(cgan_run, tmp_path, args, fragment):
    argv = ["--run", str(cgan_run.path), "--out", str(tmp_path / "x.png"), *args]
    code, stderr = run_main_expecting_exit(argv)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], stderr


def test_missing_run_exits_1_with_one_line(tmp_path):
    missing = tmp_path / "no-such-run"
    result = sample_cli("--run", str(missing), "--out", str(tmp_path / "x.png"), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(missing) in lines[0] and "not a run" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_missing_epoch_exits_1(cgan_run, tmp_path, capsys):
    assert main(["--run", str(cgan_run.path), "--epoch", "9", "--out", str(tmp_path / "x.npz")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "generator_0009.pt" in lines[0] and "missing" in lines[0]


def test_parse_digits():
    assert parse_digits("all") == list(range(10))
    assert parse_digits("7") == [7]
    assert parse_digits("3,5") == [3, 5]
    for bad in ("10", "-1", "a", ""):
        with pytest.raises(ValueError):
            parse_digits(bad)
