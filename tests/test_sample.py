"""`python -m cgan.sample`: PNG grids and .npz arrays of samples from a run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cgan.images import MAX_PNG_PIXELS, tile
from cgan.limits import MAX_SEED
from cgan.sampling import main, mosaic_columns, noise, parse_digits
from tests.fuzz_support import fingerprint, read_only_mounts_work, run_module

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
        result = sample_cli(
            "--run", str(cgan_run.path), "--digit", digit, "--out", str(tmp_path / "x.png"), cwd=tmp_path
        )
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


@pytest.mark.parametrize("what", ["missing", "a file", "a folder without config.json"])
def test_a_run_that_is_not_there_exits_2_with_one_line(tmp_path, what):
    target = tmp_path / "no-such-run"
    if what == "a file":
        target.write_text("x")
    elif what != "missing":
        target.mkdir()
    if what == "missing":  # one case through a real process, for the real exit status
        result = sample_cli("--run", str(target), "--out", str(tmp_path / "x.png"), cwd=tmp_path)
        code, stderr = result.returncode, result.stderr
    else:
        code, stderr = run_main_expecting_exit(["--run", str(target), "--out", str(tmp_path / "x.png")])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert str(target) in lines[0] and "not a run" in lines[0]
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("epoch", ["99", "9", "0", "-1"])
def test_an_epoch_without_weights_exits_2_naming_the_saved_ones(cgan_run, tmp_path, epoch):
    code, stderr = run_main_expecting_exit(
        ["--run", str(cgan_run.path), "--epoch", epoch, "--out", str(tmp_path / "x.npz")]
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"--epoch {epoch}" in lines[0], stderr
    if int(epoch) > 0:
        assert "(saved: 1, 2, 3, 4)" in lines[0]
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("seed", [str(2**70), str(MAX_SEED + 1), "-1"])
def test_a_seed_out_of_range_exits_2(cgan_run, tmp_path, seed):
    code, stderr = run_main_expecting_exit(
        ["--run", str(cgan_run.path), "--seed", seed, "--out", str(tmp_path / "x.npz")]
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"--seed must be 0-{MAX_SEED}" in lines[0], stderr


def test_the_largest_seed_samples(cgan_run, tmp_path):
    images, _ = sample_npz(cgan_run, tmp_path, "top", "--digit", "1", "--n", "2", "--seed", str(MAX_SEED))
    assert images.shape == (2, 28, 28) and images.std() > 10


# ---------------------------------------------------------------------------------------------
# Where the output goes


def test_out_refuses_a_folder_and_a_path_under_a_file(cgan_run, tmp_path):
    folder = tmp_path / "x.png"
    folder.mkdir()
    code, stderr = run_main_expecting_exit(["--run", str(cgan_run.path), "--out", str(folder)])
    assert code == 2 and "is a folder" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert list(folder.iterdir()) == []

    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    for under in (plain / "x.png", plain / "deeper" / "x.npz"):
        code, stderr = run_main_expecting_exit(["--run", str(cgan_run.path), "--out", str(under)])
        assert code == 2 and f"{plain} is a file, not a folder" in stderr, stderr
        assert len(stderr.strip().splitlines()) == 1
    assert plain.read_text() == "keep me"


def test_out_refuses_a_name_too_long_for_the_filesystem(cgan_run, tmp_path):
    for out in (tmp_path / ("n" * 300 + ".png"), tmp_path / ("d" * 300) / "x.png"):
        code, stderr = run_main_expecting_exit(["--run", str(cgan_run.path), "--out", str(out)])
        assert code == 2 and "at most 255" in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_out_in_a_read_only_folder_exits_2_before_sampling(cgan_run, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    if not read_only_mounts_work(tmp_path):
        pytest.skip("this machine cannot mount a folder read-only for one process (unshare -rm)")
    # A real read-only mount: permission bits alone do not stop root, which runs these tests here.
    result = run_module("cgan.sample", ["--run", str(cgan_run.path), "--out", str(folder / "x.png")],
                        cwd=tmp_path, read_only=(folder,))
    assert result.code == 2, result.stderr
    assert len(result.lines()) == 1 and f"{folder} cannot be written" in result.lines()[0], result.stderr
    assert list(folder.iterdir()) == []


def test_an_existing_file_is_replaced_only_with_force(cgan_run, tmp_path):
    out = tmp_path / "mine.npz"
    out.write_bytes(b"earlier work")
    code, stderr = run_main_expecting_exit(["--run", str(cgan_run.path), "--n", "2", "--out", str(out)])
    assert code == 2 and "exists; add --force" in stderr and len(stderr.strip().splitlines()) == 1
    assert out.read_bytes() == b"earlier work"
    assert main(["--run", str(cgan_run.path), "--digit", "5", "--n", "2", "--out", str(out), "--force"]) == 0
    with np.load(out) as data:
        assert data["labels"].tolist() == [5, 5]
    assert [p.name for p in tmp_path.iterdir()] == ["mine.npz"]  # no temporary file left behind


def test_nothing_is_written_inside_a_run_even_with_force(cgan_run, tmp_path):
    before = fingerprint(cgan_run.path)
    grid = cgan_run.grid_path(4)
    for out, extra in ((grid, ["--force"]), (grid, []), (cgan_run.path / "grids" / "epoch_0099.png", []),
                       (cgan_run.path / "samples.npz", ["--force"]), (cgan_run.path / "new" / "x.png", [])):
        code, stderr = run_main_expecting_exit(["--run", str(cgan_run.path), "--out", str(out), *extra])
        assert code == 2, (out, stderr)
        assert f"inside run {cgan_run.name}" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert fingerprint(cgan_run.path) == before


# ---------------------------------------------------------------------------------------------
# Large requests


def test_a_large_png_is_a_near_square_grid_in_digit_order(cgan_run, tmp_path):
    out = tmp_path / "many.png"
    assert main(["--run", str(cgan_run.path), "--digit", "3,5", "--n", "60", "--scale", "1",
                 "--seed", "4", "--out", str(out)]) == 0
    images, labels = sample_npz(cgan_run, tmp_path, "many", "--digit", "3,5", "--n", "60", "--seed", "4")
    columns = 11  # 120 samples: ceil(sqrt(120)) columns, not two rows of 60
    with Image.open(out) as image:
        assert image.size == (columns * 30 - 2, 11 * 30 - 2)
        pixels = np.asarray(image)
    assert np.array_equal(pixels, tile(images, columns=columns, pad=2))
    assert labels[59] == 3 and labels[60] == 5  # sample 60 (row 5, column 5) starts the fives
    assert np.array_equal(pixels[5 * 30 : 5 * 30 + 28, 5 * 30 : 5 * 30 + 28], images[60])


def test_small_requests_keep_one_row_per_digit():
    assert mosaic_columns(10, 10) == 10 and mosaic_columns(100, 10) == 100
    assert mosaic_columns(10, 1) == 10 and mosaic_columns(11, 1) == 4
    assert mosaic_columns(100_000, 10) == 1000


def test_a_png_too_large_to_hold_is_refused_at_once_pointing_to_npz(cgan_run, tmp_path):
    started = time.perf_counter()
    code, stderr = run_main_expecting_exit(
        ["--run", str(cgan_run.path), "--n", "100000", "--out", str(tmp_path / "all.png")]
    )
    seconds = time.perf_counter() - started
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and ".npz" in lines[0] and f"{MAX_PNG_PIXELS:,} pixels" in lines[0], stderr
    assert seconds < 5, f"refused after {seconds:.1f} s: it generated first"  # nothing was sampled
    assert not (tmp_path / "all.png").exists()
    # A large request that fits is written, near-square and under the cap.
    assert main(["--run", str(cgan_run.path), "--digit", "0", "--n", "4000", "--scale", "1",
                 "--out", str(tmp_path / "fits.png")]) == 0
    with Image.open(tmp_path / "fits.png") as image:
        assert image.size == (64 * 30 - 2, 63 * 30 - 2)
        assert image.size[0] * image.size[1] <= MAX_PNG_PIXELS


def test_parse_digits():
    assert parse_digits("all") == list(range(10))
    assert parse_digits("7") == [7]
    assert parse_digits("3,5") == [3, 5]
    for bad in ("10", "-1", "a", ""):
        with pytest.raises(ValueError):
            parse_digits(bad)
