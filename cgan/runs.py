"""The run directory: the one contract between the trainer, the app, the jobs and the metrics.

This module defines ``checkpoints/<run>/`` and does all reading and writing of its files (cgan.jobs
only reserves the folder, points the trainer's output at ``train.log`` and deletes whole runs)::

    config.json                  the training configuration (JSON object); a resume may raise
                                 "epochs", and a slimmed (shipped) run carries a "slimmed" note:
                                 {"weights_kept", "weights_dtype", "resume_state"}
    history.jsonl                one JSON object per completed epoch, in order:
                                   {"epoch", "d_loss", "g_loss", "epoch_seconds", "wall_seconds",
                                    "finished_at", optional "metrics": {...}}
    grids/epoch_0001.png         the fixed 10x10 grid after that epoch: 280x280 8-bit grayscale,
                                 cell (row i, column j) = digit i drawn from fixed noise vector j
    weights/generator_0001.pt    generator state_dict after that epoch (plain tensors; float16 in
                                 slimmed runs, loaded back as float32)
    weights/discriminator_0001.pt  discriminator state_dict after that epoch (optional; kept and
                                 deleted together with the generator weights of that epoch)
    weights/generator_ema_0001.pt  the exponential moving average of the generator's weights after
                                 that epoch (optional, runs trained with weight averaging; same
                                 keep policy)
    last.pt                      resume state of the newest epoch: both networks, both optimizers,
                                 the training RNG state, the epoch and its history record (absent
                                 from slimmed runs, which cannot be continued)
    status.json                  what the trainer is doing: {"state": queued|starting|running|finished|
                                 stopped|failed, "updated_at", "epochs_total", "pid" and
                                 "pid_started" of the newest trainer process, "device",
                                 "epochs_done" at the end,
                                 "message" on failure}; a launcher (cgan.jobs) writes "starting"
                                 with the trainer's "arguments", "device", "launched_at" and pid
                                 before the trainer writes anything; these launch fields and the
                                 pid carry over to every later status
    train.log                    the trainer's output when it runs as a background job
    .trainer.lock                held (fcntl.flock) by the one trainer writing the run, for its
                                 whole lifetime: a second trainer refuses, and readers tell a live
                                 trainer from a dead one without trusting pids
    .stop_requested              the time a stop was asked for (cgan.jobs), until the next start
    .history.lock                taken while history.jsonl is rewritten (trainer and metrics)

A run's state, for every reader (``Run.state()``): "running" while a trainer holds the lock (or a
launched trainer is still starting), else what status.json says: "finished", "stopped",
"failed" or "queued" (waiting for a training slot, see cgan.jobs); a run whose trainer died
without saying so (killed, machine off) is "interrupted", and resuming continues it from its last
complete epoch.

Rules that make a run safe to read while it is written and after any crash:

* every file is written to a temporary name in the same folder and renamed into place;
* an epoch is *complete* once its record is in ``history.jsonl``, which is written last (grid,
  weights and ``last.pt`` first); readers list only complete epochs;
* ``last.pt`` carries the newest epoch's record too, so a crash between writing it and the history
  loses nothing: ``repair()`` (run before resuming) appends the missing record;
* every ``.pt`` file is loaded with ``torch.load(weights_only=True)``: no code in a file is run;
* temporary files left by a killed write are removed by the next trainer of the run.

Weights of every epoch are kept unless a keep policy (``--keep``) says otherwise; the newest
epoch's weights are always kept, so the latest model can always be sampled. The discriminator and
averaged generator weights of an epoch follow its generator weights.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import io
import json
import math
import os
import re
import stat
import subprocess
import tempfile
import time
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np
import torch

from cgan.images import png_bytes, read_gray_png, tile
from cgan.models import check_width, get_model

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoints_root() -> Path:
    """Where runs live: $CGAN_CHECKPOINTS if set, else the repository's checkpoints/ folder."""
    return Path(os.environ.get("CGAN_CHECKPOINTS") or CHECKPOINTS)


# status.json fields that describe the launch and outlive the trainer process (see write_status).
LAUNCH_FIELDS = (
    "arguments", "device", "launched_at", "pid", "pid_started", "session", "estimated_seconds",
    "epochs_total",
)
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RunError(RuntimeError):
    """A run cannot be read as asked; the message is one line for the user (control characters
    of names from disk shown as escapes)."""

    def __init__(self, message: object = ""):
        super().__init__(one_line(message))


_ESCAPED = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def one_line(text: object) -> str:
    """`text` with control and line-breaking characters written as escapes (\\n, \\x1b, \\u2028):
    a name from disk may hold them, and a message stays one line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in _ESCAPED else c for c in text)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    d_loss: float
    g_loss: float
    epoch_seconds: float
    wall_seconds: float
    finished_at: float
    metrics: dict | None = None

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        if data["metrics"] is None:
            del data["metrics"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> EpochRecord:
        """The record in a history line; ValueError (or KeyError, TypeError) when it is not one:
        an epoch that is not a whole number from 1, times that are not finite and >= 0, metrics
        that are not an object of bounded depth. Losses may be anything a float holds (a diverged
        run's are inf or nan)."""
        epoch = data["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ValueError(f"epoch {epoch!r}")
        epoch_seconds = _seconds(data["epoch_seconds"])
        metrics = data.get("metrics")
        if metrics is not None and not (isinstance(metrics, dict) and _shallow(metrics, METRICS_DEPTH)):
            raise ValueError("metrics")
        return cls(
            epoch=epoch,
            d_loss=_float(data["d_loss"]),
            g_loss=_float(data["g_loss"]),
            epoch_seconds=epoch_seconds,
            wall_seconds=_seconds(data.get("wall_seconds", epoch_seconds)),
            finished_at=_seconds(data.get("finished_at", 0.0)),
            metrics=metrics,
        )


METRICS_DEPTH = 4  # {"averaged": {"diversity": [...]}} is 3 levels deep


def _shown(value) -> str:
    """A value from a file, short and on one line, for a message."""
    text = repr(value) if isinstance(value, (int, float, str, bool, type(None))) else type(value).__name__
    return text[:40]


def _float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _seconds(value) -> float:
    seconds = _float(value)
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{value!r} is not a time")
    return seconds


def _shallow(value, levels: int) -> bool:
    """Whether lists and objects nest at most `levels` deep in `value`."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return True
    return levels > 0 and all(_shallow(item, levels - 1) for item in value)


# ---------------------------------------------------------------------------------------------
# Reading files that may be anything: only regular files, never blocking, never unbounded

# What a reader loads at most from one file of a run; a bigger file is damage, not data.
JSON_CAP = 1 << 20  # config.json, status.json
HISTORY_CAP = 256 << 20  # history.jsonl: 100,000 epochs with their quality figures fit
GRID_CAP = 16 << 20  # a 280x280 PNG is under 100 kB
TENSORS_CAP = 8 << 30  # weights and last.pt (a width-4 cDCGAN's resume state is about 1 GB)


def open_regular(path: Path, cap: int):
    """`path` opened for reading as a binary file object, if it is a regular file of at most
    `cap` bytes (links followed). Never blocks: a FIFO, a device or a socket is refused without
    reading it. FileNotFoundError when it is missing, IsADirectoryError for a folder, RunError
    (one line) for anything else that is not a file to read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG):
            raise FileNotFoundError(errno.ENOENT, exc.strerror, str(path)) from None
        raise RunError(f"{path}: unreadable ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise RunError(f"{path}: {_kind(info.st_mode)}, expected a file (damaged run)")
        if info.st_size > cap:
            raise RunError(f"{path}: damaged: {info.st_size:,} bytes, more than a run's file holds "
                           f"({cap:,} at most)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, cap: int) -> bytes:
    """The bytes of the regular file `path` (see open_regular), at most `cap` of them."""
    with open_regular(path, cap) as f:
        data = f.read(cap + 1)
    if len(data) > cap:  # it grew while it was read
        raise RunError(f"{path}: damaged: more than {cap:,} bytes")
    return data


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def loads_json(data: bytes, path: Path):
    """JSON text as Python values; ValueError (one line) for text that is not JSON, including
    nesting too deep to read."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(f"{path.name}: nested too deeply") from None


def open_lock_file(path: Path):
    """The lock file `path`, created if missing, opened for flock: a regular file in its folder
    (not a link to one elsewhere, not a FIFO), or RunError in one line."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunError(f"{path}: a link, expected the lock file itself") from None
        raise RunError(write_failure(exc, path.parent)) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RunError(f"{path}: {_kind(info.st_mode)}, expected a lock file")
    return os.fdopen(fd, "a")


# ---------------------------------------------------------------------------------------------
# Atomic writes


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def write_json_atomic(path: Path, data: Any) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=1) + "\n").encode())


def save_tensors_atomic(path: Path, obj: Any) -> None:
    # Serialised in memory first: a failed disk write is then an OSError that says why (a full
    # disk), not a serialiser's internal assertion.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def load_tensors(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load that never runs code from the file: weights_only=True, errors as RunError."""
    try:
        file = open_regular(path, TENSORS_CAP)  # a FIFO or /dev/zero is refused, unread
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except IsADirectoryError:
        raise RunError(f"{path}: a folder, expected a file") from None
    try:
        # torch warns about foreign pickle protocols on the way to refusing them; the RunError
        # below is the one line the user needs.
        with file, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(file, map_location=map_location, weights_only=True)
    except MemoryError:
        raise RunError(f"{path}: damaged: it asks for more memory than there is") from None
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if _holds_code(path):
            raise RunError(
                f"{path}: refused, it holds more than plain tensors (loading it could run code)"
            ) from None
        if "weights_only" in str(exc) or "Unsupported" in str(exc):
            text = "not a PyTorch file"  # torch's refusal names weights_only; the file is noise
        raise RunError(f"{path}: damaged: unreadable or truncated ({text[:120]})") from None


# What torch's own files import: anything else in a pickle is code, not damage.
_SAFE_GLOBALS = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.frozenset")


def _holds_code(path: Path) -> bool:
    """Whether the file is a well-formed pickle (plain or inside torch's zip) that imports
    something besides torch's tensors: code, not damage. Read with pickletools, which only
    parses opcodes and never runs them."""
    import io
    import pickletools
    import zipfile

    try:
        with open_regular(path, TENSORS_CAP) as file:
            if zipfile.is_zipfile(file):
                with zipfile.ZipFile(file) as archive:
                    name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                    if name is None:
                        return False
                    data = archive.read(name)
            else:
                file.seek(0)
                data = file.read()
        imported: list[str] = []
        strings: list[str] = []
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if isinstance(arg, str):
                strings.append(arg)
            if opcode.name == "GLOBAL":
                imported.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL":
                imported.append(".".join(strings[-2:]))
            elif opcode.name == "INST":
                return True
    except Exception:
        return False  # not even a pickle: damaged
    return any(not name.startswith(_SAFE_GLOBALS) for name in imported)


# ---------------------------------------------------------------------------------------------
# Keep policy


def parse_keep(spec: str) -> KeepPolicy:
    """'all' | 'last' | comma list of N, A-B, everyK (e.g. '1-10,every5,20,50,75').

    Ranges are held as their ends, never spelled out, so 1-10000000000 costs a few bytes."""
    spec = spec.strip().lower()
    if spec in ("", "all"):
        return KeepPolicy(keep_all=True)
    ranges: list[tuple[int, int]] = []
    every: list[int] = []
    for token in spec.split(","):
        token = token.strip()
        try:
            if token == "last":
                continue
            if token.startswith("every"):
                step = int(token[5:])
                if step < 1:
                    raise ValueError
                every.append(step)
            elif "-" in token:
                lo, hi = (int(t) for t in token.split("-", 1))
                if lo < 1 or hi < lo:
                    raise ValueError
                ranges.append((lo, hi))
            else:
                value = int(token)
                if value < 1:
                    raise ValueError
                ranges.append((value, value))
        except ValueError:
            raise ValueError(
                f"bad keep token {token[:40]!r}: use all, last, N, A-B or everyK (e.g. 1-10,every5,75)"
            ) from None
    return KeepPolicy(keep_all=False, ranges=_merged(ranges), every=tuple(sorted(set(every))))


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Inclusive ranges, sorted, with overlapping or touching ones joined."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


@dataclass(frozen=True)
class KeepPolicy:
    keep_all: bool = True
    ranges: tuple = ()  # inclusive (first, last) epoch ranges, sorted and disjoint
    every: tuple = ()

    def keeps(self, epoch: int, final_epoch: int) -> bool:
        if self.keep_all or epoch == final_epoch or any(epoch % step == 0 for step in self.every):
            return True
        place = bisect.bisect_right(self.ranges, (epoch, math.inf))
        return place > 0 and self.ranges[place - 1][0] <= epoch <= self.ranges[place - 1][1]


# ---------------------------------------------------------------------------------------------
# Grids


def grid_to_png_bytes(images: np.ndarray) -> bytes:
    """(100, 28, 28) uint8, row-major (digit, noise) -> 280x280 grayscale PNG bytes."""
    return png_bytes(tile(images, columns=10), optimize=True)


def read_grid_png(path: Path) -> np.ndarray:
    try:
        array = read_gray_png(read_regular(path, GRID_CAP))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except IsADirectoryError:
        raise RunError(f"{path}: a folder, expected an image") from None
    except ValueError as exc:
        raise RunError(f"{path}: damaged: {exc}") from None
    if array.shape != (280, 280):
        height, width = array.shape
        raise RunError(f"{path}: damaged: the grid is {width}x{height} pixels, expected 280x280")
    return array


# ---------------------------------------------------------------------------------------------
# The run


class Run:
    """One run directory. Readers use the listing and loading methods; the trainer writes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._cleaned = False  # temporary files of killed writes removed by this object yet

    # -- layout ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def history_path(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def last_path(self) -> Path:
        return self.path / "last.pt"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    def grid_path(self, epoch: int) -> Path:
        return self.path / "grids" / f"epoch_{epoch:04d}.png"

    def weights_path(self, epoch: int) -> Path:
        return self.path / "weights" / f"generator_{epoch:04d}.pt"

    def averaged_weights_path(self, epoch: int) -> Path:
        return self.path / "weights" / f"generator_ema_{epoch:04d}.pt"

    def discriminator_path(self, epoch: int) -> Path:
        return self.path / "weights" / f"discriminator_{epoch:04d}.pt"

    def _epoch_weight_paths(self, epoch: int) -> list[Path]:
        """Every weights file of one epoch: they are kept and deleted together."""
        return [self.weights_path(epoch), self.averaged_weights_path(epoch), self.discriminator_path(epoch)]

    @property
    def lock_path(self) -> Path:
        return self.path / ".trainer.lock"

    @property
    def stop_request_path(self) -> Path:
        return self.path / ".stop_requested"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- reading --------------------------------------------------------------------------
    def config(self) -> dict:
        try:
            data = loads_json(read_regular(self.config_path, JSON_CAP), self.config_path)
        except FileNotFoundError:
            raise RunError(f"{self.path}: not a run (no config.json)") from None
        except IsADirectoryError:
            raise RunError(f"{self.config_path}: a folder, expected a file (damaged run)") from None
        except (OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise RunError(f"{self.config_path}: unreadable ({reason})") from None
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            raise RunError(f"{self.config_path}: not a run configuration")
        return data

    def history(self) -> list[EpochRecord]:
        """Complete epochs, in order. A torn or foreign line ends the listing there."""
        return self._read_history()[0]

    def _read_history(self) -> tuple[list[EpochRecord], bool]:
        """(records up to the first bad line, whether every line was good)."""
        try:
            text = read_regular(self.history_path, HISTORY_CAP).decode("utf-8")
        except FileNotFoundError:
            return [], True
        except IsADirectoryError:
            raise RunError(f"{self.history_path}: a folder, expected a file (damaged run)") from None
        except UnicodeDecodeError as exc:
            raise RunError(
                f"{self.history_path}: damaged, not text (byte {exc.start} is not UTF-8)"
            ) from None
        except OSError as exc:
            raise RunError(f"{self.history_path}: unreadable ({exc.strerror or exc})") from None
        records: list[EpochRecord] = []
        lines = [line for line in text.splitlines() if line.strip()]
        for line in lines:
            try:
                record = EpochRecord.from_json(loads_json(line, self.history_path))
            except (ValueError, KeyError, TypeError, OverflowError):
                break
            if record.epoch != (records[-1].epoch if records else 0) + 1:
                break  # epochs count 1, 2, 3, ...
            records.append(record)
        return records, len(records) == len(lines)

    def _history_to_rewrite(self) -> list[EpochRecord]:
        """All records, refusing a damaged file: rewriting it would drop what follows the damage."""
        records, intact = self._read_history()
        if not intact:
            raise RunError(
                f"{self.history_path}: damaged after epoch {records[-1].epoch if records else 0}; "
                "repair or remove the bad line first"
            )
        return records

    def epochs(self) -> list[int]:
        return [record.epoch for record in self.history()]

    def weight_epochs(self, complete: list[int] | None = None) -> list[int]:
        """Complete epochs whose generator weights are on disk (`complete`: the run's complete
        epochs, if the caller has them at hand)."""
        complete = set(self.epochs() if complete is None else complete)
        folder = self.path / "weights"
        found = []
        if folder.is_dir():
            found = [e for e in _numbered(folder, "generator") if e in complete]
        return sorted(found)

    def discriminator_epochs(self, complete: list[int] | None = None) -> list[int]:
        """Complete epochs whose discriminator weights are on disk."""
        complete = set(self.epochs() if complete is None else complete)
        return sorted(e for e in _numbered(self.path / "weights", "discriminator") if e in complete)

    def has_averaged(self, epoch: int) -> bool:
        """Whether `epoch` has averaged (EMA) generator weights."""
        return self.averaged_weights_path(epoch).is_file()

    def grid(self, epoch: int) -> np.ndarray:
        """The fixed 10x10 grid after `epoch` as a 280x280 uint8 array."""
        return read_grid_png(self.grid_path(epoch))

    def grid_images(self, epoch: int) -> np.ndarray:
        """The same grid as (10 digits, 10 noise columns, 28, 28) uint8."""
        return self.grid(epoch).reshape(10, 28, 10, 28).transpose(0, 2, 1, 3)

    def load_generator(
        self, epoch: int | None = None, device: str | torch.device = "cpu", averaged: bool = False
    ):
        """The generator after `epoch` (default: the newest with weights), in eval mode;
        `averaged`: its exponential moving average of weights instead of the raw ones."""
        self.config()  # not a run: say so before anything else
        if epoch is None:
            saved = self.weight_epochs()
            if not saved:
                raise RunError(f"run {self.name}: no finished epoch with weights yet")
            epoch = saved[-1]
        path = self.averaged_weights_path(epoch) if averaged else self.weights_path(epoch)
        if averaged and not path.is_file():
            raise RunError(f"run {self.name}: epoch {epoch} has no averaged generator weights")
        return self._load_network("generator", path, device)

    def load_discriminator(self, epoch: int, device: str | torch.device = "cpu"):
        """The discriminator after `epoch`, in eval mode."""
        path = self.discriminator_path(epoch)
        if not path.is_file():
            raise RunError(f"run {self.name}: epoch {epoch} has no discriminator weights")
        return self._load_network("discriminator", path, device)

    def _load_network(self, role: str, path: Path, device: str | torch.device):
        config = self.config()
        state = load_tensors(path, map_location=device)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise RunError(f"{path}: not a {role} state_dict")
        try:
            family = get_model(config["model"])
            width = check_width(config.get("width", 1.0))  # before any memory is asked for
            network = family.generator(width) if role == "generator" else family.discriminator(width)
        except (ValueError, TypeError) as exc:
            raise RunError(f"{self.config_path}: damaged: {str(exc).splitlines()[0][:160]}") from None
        try:
            network.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as exc:
            raise RunError(
                f"{path}: does not fit a {config['model']} {role} "
                f"({str(exc).splitlines()[0][:100]})"
            ) from None
        return network.to(device).eval()

    # -- liveness ---------------------------------------------------------------------------
    def state(self) -> str:
        """What is happening to the run, for every reader: "running" (a trainer is alive, or a
        launched one is starting), "finished", "stopped", "failed", "interrupted" (the trainer
        died without saying how it ended: killed, machine off; resume continues it), or "queued"
        (cgan.jobs holds its launch until a training slot frees)."""
        if self.trainer_alive():
            return "running"
        status = self.status()
        recorded = status.get("state")
        if recorded in ("finished", "stopped", "failed", "queued"):
            return recorded
        requested = self.stop_requested()
        if requested is not None and requested >= status.get("updated_at", 0):
            return "stopped"  # Stop reached it before it could write how it ended
        if recorded == "starting" and self.failure_line():
            return "failed"  # it refused its arguments or its data before it began
        if not status and self.exists() and not self.last_path.exists():
            return "finished"  # a run without status or resume state (copied by hand, shipped)
        return "interrupted"

    def is_training(self) -> bool:
        """True while a live trainer writes the run (see state())."""
        return self.state() == "running"

    def trainer_alive(self) -> bool:
        """Whether a trainer process of this run is alive: the holder of the trainer lock, or
        (for a trainer still starting, or one from before the lock) the process status.json
        names, if it is this run's trainer (is_trainer_of: a recycled pid, or any other process a
        status names, does not count)."""
        if self._lock_held():
            return True
        status = self.status()
        if status.get("state") not in ("running", "starting"):
            return False
        return is_trainer_of(status.get("pid"), status.get("pid_started"), self.path)

    def _lock_held(self) -> bool:
        """Probe the trainer lock without creating anything (readers may not write here)."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return False  # no lock file: no trainer ever took it
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False  # a FIFO or device in its place is no trainer's lock
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's own shared lock at once
        return False

    @contextlib.contextmanager
    def trainer_lock(self, writing: bool = True):
        """Held by the one trainer of this run for its whole lifetime. Raises RunError at once
        when another process holds it. For a `writing` holder (a trainer) it refuses a run with
        a link out of it (links_out) and removes temporary files that killed writes left behind
        (the holder is the run's only writer of them); a deleter takes it with writing=False."""
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path}: exists and is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"{self.path}: cannot be written ({exc.strerror or exc})") from None
        handle = open_lock_file(self.lock_path)  # held until the generator exits
        try:
            # A reader's probe holds a shared lock for microseconds: retry briefly before refusing.
            for attempt in range(20):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 19:
                        raise RunError(
                            f"run {self.name} is already being trained by another process"
                        ) from None
                    time.sleep(0.01)
            if writing:
                for link in self.links_out():
                    raise RunError(f"{link}: a link out of the run (to {os.path.realpath(link)}); "
                                   "a trainer writes only inside its own run")
                self.remove_temporary_files()
            yield self
        finally:
            handle.close()

    def links_out(self) -> list[Path]:
        """The run's own entries (its files, grids/, weights/ and what they hold) that are
        symbolic links leading out of the run: writing through one would change another run."""
        base = os.path.realpath(self.path)
        found = []
        for folder in (self.path, self.path / "grids", self.path / "weights"):
            if folder != self.path and (folder.is_symlink() or not folder.is_dir()):
                continue  # a link here was judged with the run's own entries
            try:
                entries = list(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_symlink():
                    target = os.path.realpath(entry)
                    if os.path.commonpath([base, target]) != base:
                        found.append(entry)
        return found

    def is_unstarted(self) -> bool:
        """Whether the folder is absent or holds only what a launch leaves before the trainer
        writes anything (train.log, a "queued" or "starting" status, the trainer lock, a stop request): a
        new run may be trained into it."""
        if not self.path.exists():
            return True
        launch_files = {self.log_path.name, self.lock_path.name, self.stop_request_path.name}
        for entry in self.path.iterdir():
            if entry.name in launch_files or entry.name.endswith(".tmp"):
                continue
            if entry.name == self.status_path.name and self.status().get("state") in ("queued", "starting"):
                continue
            return False
        return True

    def stop_requested(self) -> float | None:
        """When a stop was asked for (cgan.jobs), if one was since the last start."""
        try:
            when = float(read_regular(self.stop_request_path, 64))
        except (OSError, ValueError, RunError):
            return None
        return when if math.isfinite(when) else None

    def request_stop(self) -> None:
        try:
            write_bytes_atomic(self.stop_request_path, repr(time.time()).encode())
        except OSError as exc:
            raise RunError(f"cannot ask {self.name} to stop: {write_failure(exc, self.path)}") from None

    def clear_stop_request(self) -> None:
        self.stop_request_path.unlink(missing_ok=True)

    def failure_line(self) -> str:
        """The trainer's own error line in train.log (arguments, data, run), or the last line of
        a traceback: one line, no traceback frames."""
        lines = [line.strip() for line in self.log_tail(40).splitlines() if line.strip()]
        for index in range(len(lines) - 1, -1, -1):
            line = lines[index]
            if line.startswith("error:") or ": error: " in line:
                return line[:2000]  # the whole reason (a line, not a log)
            if line.startswith("Traceback"):
                return lines[-1][:2000]
        return ""

    def log_tail(self, lines: int = 12) -> str:
        try:
            with open_regular(self.log_path, 1 << 62) as f:  # any size: only its end is read
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read(16384).decode(errors="replace")
        except (OSError, RunError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def remove_temporary_files(self) -> int:
        """Delete the temporary files of writes that a kill interrupted; return how many. Only
        the trainer-lock holder may call this (it is the only writer of these files); history
        rewrites' temporaries are removed under the history lock."""
        removed = 0
        for folder in (self.path, self.path / "grids", self.path / "weights"):
            if not folder.is_dir():
                continue
            for file in folder.glob(".*.tmp"):
                if file.name.startswith(f".{self.history_path.name}."):
                    continue
                file.unlink(missing_ok=True)
                removed += 1
        if self.history_path.parent.is_dir() and any(self.path.glob(".history.jsonl.*.tmp")):
            with self._history_lock():
                for file in self.path.glob(".history.jsonl.*.tmp"):
                    file.unlink(missing_ok=True)
                    removed += 1
        return removed

    def status(self) -> dict:
        """status.json as written, each field of the wrong type or not finite left out (a
        damaged status says less, never something a reader cannot use); {} if unreadable."""
        try:
            data = loads_json(read_regular(self.status_path, JSON_CAP), self.status_path)
        except (OSError, ValueError, RunError):
            return {}
        return _clean_status(data) if isinstance(data, dict) else {}

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    # -- writing (the trainer) --------------------------------------------------------------
    def create(self, config: dict) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.config_path, config)
        except OSError as exc:
            raise RunError(write_failure(exc, self.path)) from None

    def write_status(self, state: str, **fields) -> None:
        """Replace status.json. The launch request (the trainer's arguments, its device, when it
        was launched, its pid) carries over from the previous status unless given again, so the
        run keeps it after its trainer ends."""
        previous = self.status()
        kept = {key: previous[key] for key in LAUNCH_FIELDS if key in previous and key not in fields}
        data = {"state": state, "updated_at": time.time(), **kept, **fields}
        try:
            write_json_atomic(self.status_path, data)
        except OSError as exc:
            raise RunError(write_failure(exc, self.path)) from None

    def write_epoch(
        self,
        epoch: int,
        make_record: Callable[[], EpochRecord],
        grid_images: np.ndarray,
        generator_state: dict,
        resume_state: dict,
        keep: KeepPolicy,
        final_epoch: int,
        *,
        discriminator_state: dict | None = None,
        generator_ema_state: dict | None = None,
    ) -> EpochRecord:
        """Commit one finished epoch: grid, weights (generator, and the discriminator and the
        generator's average when given), resume state, then the history record.

        `make_record` is called once the grid and weights are on disk, so the wall time it
        measures covers them."""
        if not self._cleaned:
            self.remove_temporary_files()  # the trainer is this run's only writer of them
            self._cleaned = True
        written: list[Path] = []  # this epoch's files, removed again if it cannot be completed
        writing = self.grid_path(epoch)
        try:
            write_bytes_atomic(writing, grid_to_png_bytes(grid_images))
            written.append(writing)
            for writing, state in ((self.weights_path(epoch), generator_state),
                                   (self.discriminator_path(epoch), discriminator_state),
                                   (self.averaged_weights_path(epoch), generator_ema_state)):
                if state is not None:
                    save_tensors_atomic(writing, state)
                    written.append(writing)
            record = make_record()
            writing = self.last_path
            save_tensors_atomic(writing, {**resume_state, "record": record.to_json()})
            written = []  # last.pt holds the epoch now: a resume completes it (repair)
            writing = self.history_path
            self._append_history(record)
        except OSError as exc:
            for path in written:
                path.unlink(missing_ok=True)
            kept = f"epoch {epoch - 1} is kept" if epoch > 1 else "no epoch was complete yet"
            raise RunError(
                f"{write_failure(exc, self.path)} (writing {writing.relative_to(self.path)}); {kept}"
            ) from None
        # Only now that the new epoch is complete may the previous one's weights go.
        previous = epoch - 1
        if previous >= 1 and not keep.keeps(previous, final_epoch):
            for path in self._epoch_weight_paths(previous):
                path.unlink(missing_ok=True)
        return record

    @contextlib.contextmanager
    def _history_lock(self):
        """Serialise rewrites of history.jsonl (the trainer appending, cgan.metrics merging)."""
        with open_lock_file(self.path / ".history.lock") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write_history(self, records: list[EpochRecord]) -> None:
        text = "".join(json.dumps(r.to_json()) + "\n" for r in records)
        write_bytes_atomic(self.history_path, text.encode())

    def _append_history(self, record: EpochRecord) -> None:
        with self._history_lock():
            records = [r for r in self._history_to_rewrite() if r.epoch < record.epoch]
            self._write_history(records + [record])

    def update_metrics(self, epoch: int, metrics: dict) -> None:
        """Merge `metrics` into the history record of `epoch` (used by cgan.metrics)."""
        with self._history_lock():
            records = self._history_to_rewrite()
            if epoch not in {r.epoch for r in records}:
                raise RunError(f"run {self.name}: epoch {epoch} is not complete")
            self._write_history([
                EpochRecord(**{**r.__dict__, "metrics": {**(r.metrics or {}), **metrics}})
                if r.epoch == epoch else r
                for r in records
            ])

    def load_resume_state(self, device: str | torch.device = "cpu") -> dict:
        """last.pt, checked for what a resume relies on: a whole epoch from 1, the record of that
        same epoch (if it carries one), networks and optimizers as dicts, the RNG state as a
        tensor. RunError in one line otherwise."""
        state = load_tensors(self.last_path, map_location=device)
        if not isinstance(state, dict) or "epoch" not in state:
            raise RunError(f"{self.last_path}: not a resume state")
        epoch = state["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise RunError(f"{self.last_path}: damaged: its epoch {_shown(epoch)} is not a whole number from 1")
        if "record" in state:
            try:
                record = EpochRecord.from_json(state["record"])
            except (ValueError, KeyError, TypeError, OverflowError):
                raise RunError(f"{self.last_path}: damaged: its epoch record is not one") from None
            if record.epoch != epoch:
                raise RunError(f"{self.last_path}: damaged: it holds epoch {epoch} but the record of "
                               f"epoch {record.epoch}")
        for key in ("generator", "discriminator", "opt_g", "opt_d", "generator_ema"):
            if key in state and not isinstance(state[key], dict):
                raise RunError(f"{self.last_path}: damaged: {key} is {_shown(state[key])}, not a state dict")
        if "rng" in state and not isinstance(state["rng"], torch.Tensor):
            raise RunError(f"{self.last_path}: damaged: rng is {_shown(state['rng'])}, not a tensor")
        if not isinstance(state.get("device_type", "cpu"), str):
            raise RunError(f"{self.last_path}: damaged: device_type is {_shown(state['device_type'])}")
        return state

    def repair(self) -> int:
        """Make history agree with last.pt after a crash; return the last complete epoch."""
        if not self.last_path.is_file():
            if self.history():
                raise RunError(f"run {self.name}: no resume state (last.pt), it cannot be continued")
            return 0
        state = self.load_resume_state()
        epoch = state["epoch"]
        history = self.history()
        done = history[-1].epoch if history else 0
        if done == epoch - 1 and "record" in state:
            self._append_history(EpochRecord.from_json(state["record"]))
        elif done != epoch:
            raise RunError(
                f"run {self.name}: history ends at epoch {done} but last.pt holds epoch {epoch}"
            )
        return epoch

    def prune(self, keep: KeepPolicy, drop_resume_state: bool = False, half: bool = False) -> None:
        """Delete weights the policy does not keep; optionally drop last.pt and store float16."""
        epochs = self.weight_epochs()
        final = self.epochs()[-1] if self.epochs() else 0
        for epoch in epochs:
            paths = [path for path in self._epoch_weight_paths(epoch) if path.is_file()]
            if not keep.keeps(epoch, final):
                for path in paths:
                    path.unlink(missing_ok=True)
            elif half:
                for path in paths:
                    state = load_tensors(path)
                    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
                    save_tensors_atomic(path, state)
        if drop_resume_state:
            self.last_path.unlink(missing_ok=True)
        kept = ", ".join(str(e) for e in self.weight_epochs())
        note = {"weights_kept": kept, "weights_dtype": "float16" if half else "float32",
                "resume_state": "dropped" if drop_resume_state or not self.last_path.exists() else "kept"}
        write_json_atomic(self.config_path, {**self.config(), "slimmed": note})


# The type each status.json field must have to be used (see Run.status).
_STATUS_TYPES = {
    "state": str, "device": str, "message": str, "session": str, "pid_started": str,
    "pid": int, "epochs_total": int, "epochs_done": int,
    "updated_at": float, "launched_at": float, "queued_at": float, "estimated_seconds": float,
}


def _clean_status(data: dict) -> dict:
    clean = {}
    for key, value in data.items():
        kind = _STATUS_TYPES.get(key)
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
        elif kind is str:
            ok = isinstance(value, str) and len(value) <= 4096
        elif key == "arguments":
            ok = isinstance(value, list) and all(isinstance(a, str) for a in value)
        else:
            ok = True
        if ok or (value is None and key in ("pid", "pid_started", "session")):
            clean[key] = value
    return clean


def _numbered(folder: Path, prefix: str) -> list[int]:
    """The epochs N of the files `<prefix>_NNNN.pt` in `folder`."""
    if not folder.is_dir():
        return []
    found = []
    for file in folder.glob(f"{prefix}_*.pt"):
        number = file.stem[len(prefix) + 1:]
        if number.isdigit():
            found.append(int(number))
    return found


def process_start_time(pid: int) -> str | None:
    """An identity for the live process `pid` (its start time), or None if none lives (zombies
    count as dead). Compare with the value recorded at launch to tell a recycled pid apart."""
    if pid <= 0:
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        return _ps_start_time(pid)  # no /proc (macOS)
    except OSError:
        return None
    # The command name in parentheses may hold spaces or ')'; the fields after the last ')' do not.
    state, *rest = text.rsplit(")", 1)[1].split()
    if state in ("Z", "X"):
        return None
    return rest[18]  # field 22, starttime, in clock ticks since boot


def is_trainer_of(pid, started, run_path: Path) -> bool:
    """Whether the live process `pid` is the trainer of the run at `run_path`: its kernel start
    time is `started` (recorded at its launch) and its command line is ``python [options] -m
    cgan.train ... --out <that run>`` (without --out: the default folder of its model and seed).
    A pid read from disk is trusted, and signalled, only when this holds."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(started, str):
        return False
    if process_start_time(pid) != started:
        return False
    command = _process_command(pid)
    out = _trainer_out(command, pid) if command else None
    if out is None:
        return False
    if not out.is_absolute():
        out = (_process_cwd(pid) or Path.cwd()) / out
    try:
        same = os.path.samefile(out, run_path)
    except OSError:
        same = os.path.realpath(out) == os.path.realpath(run_path)
    return same and process_start_time(pid) == started  # still the same process


def signal_trainer(pid, started, run_path: Path, sig: int) -> bool:
    """Send `sig` to `pid` only if it is the trainer of the run at `run_path` (is_trainer_of);
    return whether it was sent. Where the system has pidfds the process is pinned before it is
    checked, so a pid recycled between the check and the signal is never hit."""
    import signal as signals

    pidfd = None
    if hasattr(os, "pidfd_open") and isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:
            pidfd = None  # no pidfds here: check, then signal by pid
    try:
        if not is_trainer_of(pid, started, run_path):
            return False
        if pidfd is not None:
            signals.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False  # it ended meanwhile
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _process_command(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self/cmdline").exists():
            return None
        try:  # no /proc (macOS): ps splits the arguments at spaces, good enough to recognise one
            out = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True,
                                 text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.split() if out.returncode == 0 else None
    except OSError:
        return None
    return [os.fsdecode(part) for part in data.split(b"\0")[:-1]] or None


def _process_cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _trainer_out(command: list[str], pid: int) -> Path | None:
    """The run folder a ``python [options] -m cgan.train ...`` command line trains, else None."""
    index = 1
    while index < len(command) and command[index] != "-m":
        option = command[index]
        if not option.startswith("-") or option.startswith("-c"):
            return None  # a script or -c code: not the trainer module
        index += 2 if option in ("-X", "-W") else 1
    if command[index + 1 : index + 2] != ["cgan.train"]:
        return None
    values: dict[str, str] = {}
    arguments = command[index + 2 :]
    for position, argument in enumerate(arguments):
        for flag in ("--out", "--model", "--seed"):
            if argument == flag and position + 1 < len(arguments):
                values[flag] = arguments[position + 1]
            elif argument.startswith(flag + "="):
                values[flag] = argument[len(flag) + 1 :]
    if "--out" in values:
        return Path(values["--out"])
    try:  # the trainer's default: $CGAN_CHECKPOINTS (of that process) / MODEL-sSEED
        seed = int(values.get("--seed", "0"))
    except ValueError:
        return None
    root = _process_environment(pid).get("CGAN_CHECKPOINTS") or str(CHECKPOINTS)
    return Path(root) / f"{values.get('--model', 'cgan')}-s{seed}"


def _process_environment(pid: int) -> dict[str, str]:
    try:
        data = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (os.fsdecode(item).partition("=") for item in data.split(b"\0") if b"=" in item)
    return {key: value for key, _, value in pairs}


def _ps_start_time(pid: int) -> str | None:
    try:
        out = subprocess.run(
            ["ps", "-o", "stat=,lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    line = out.stdout.strip()
    if out.returncode != 0 or not line or line.startswith("Z"):
        return None
    return line.split(None, 1)[1] if " " in line else line


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run directory under `root` (default: checkpoints_root()), newest first."""
    root = Path(root) if root is not None else checkpoints_root()
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    return sorted(runs, key=_created_at, reverse=True)


def _created_at(run: Run) -> float:
    try:
        return float(run.config().get("created_at", 0))
    except (RunError, TypeError, ValueError):
        return 0.0  # deleted or damaged meanwhile: listed last


def check_run_name(name: str) -> str:
    """A new run's name is a safe slug that cannot leave the checkpoints folder."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            "run name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_existing_run_name(name: str) -> str:
    """The name of a run folder that may exist already (``cgan.train --out`` takes any name):
    one folder name, not hidden, at most 255 bytes, without control or line-breaking
    characters; spaces and other printable characters are fine."""
    if (
        not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".")
        or "/" in name or os.sep in name
        or any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in name)
        or len(os.fsencode(name)) > 255
    ):
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise ValueError(f"run name {shown}: not a run folder's name (one folder name, not hidden, "
                         "no control characters)")
    return name


def write_failure(exc: OSError, where: Path) -> str:
    """Why a write under `where` failed, in words (a full disk, a read-only folder, ...)."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device of {where}"
    if exc.errno == errno.EDQUOT:
        return f"the disk quota of {where} is used up"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where} cannot be written (permission denied)"
    return f"{where} cannot be written ({exc.strerror or type(exc).__name__})"
