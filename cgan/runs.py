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
    last.pt                      resume state of the newest epoch: both networks, both optimizers,
                                 the training RNG state, the epoch and its history record (absent
                                 from slimmed runs, which cannot be continued)
    status.json                  what the trainer is doing: {"state": running|finished|stopped|failed,
                                 "updated_at", "epochs_total", and "pid", "pid_started", "device"
                                 while running, "epochs_done" at the end, "message" on failure}
    train.log                    the trainer's output when it runs as a background job
    .history.lock                taken while history.jsonl is rewritten (trainer and metrics)

Rules that make a run safe to read while it is written and after any crash:

* every file is written to a temporary name in the same folder and renamed into place;
* an epoch is *complete* once its record is in ``history.jsonl``, which is written last (grid,
  weights and ``last.pt`` first); readers list only complete epochs;
* ``last.pt`` carries the newest epoch's record too, so a crash between writing it and the history
  loses nothing: ``repair()`` (run before resuming) appends the missing record;
* every ``.pt`` file is loaded with ``torch.load(weights_only=True)``: no code in a file is run.

Weights of every epoch are kept unless a keep policy (``--keep``) says otherwise; the newest
epoch's weights are always kept, so the latest model can always be sampled.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from cgan.models import get_model

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoints_root() -> Path:
    """Where runs live: $CGAN_CHECKPOINTS if set, else the repository's checkpoints/ folder."""
    return Path(os.environ.get("CGAN_CHECKPOINTS") or CHECKPOINTS)
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RunError(RuntimeError):
    """A run cannot be read as asked; the message is one line for the user."""


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
    def from_json(cls, data: dict) -> "EpochRecord":
        return cls(
            epoch=int(data["epoch"]),
            d_loss=float(data["d_loss"]),
            g_loss=float(data["g_loss"]),
            epoch_seconds=float(data["epoch_seconds"]),
            wall_seconds=float(data.get("wall_seconds", data["epoch_seconds"])),
            finished_at=float(data.get("finished_at", 0.0)),
            metrics=data.get("metrics"),
        )


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
    _atomic_write(path, lambda f: torch.save(obj, f))


def load_tensors(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load that never runs code from the file: weights_only=True, errors as RunError."""
    try:
        # torch warns about foreign pickle protocols on the way to refusing them; the RunError
        # below is the one line the user needs.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise RunError(
                f"{path}: refused, it holds more than plain tensors (loading it could run code)"
            ) from None
        raise RunError(f"{path}: unreadable or truncated ({text[:120]})") from None


# ---------------------------------------------------------------------------------------------
# Keep policy


def parse_keep(spec: str) -> "KeepPolicy":
    """'all' | 'last' | comma list of N, A-B, everyK (e.g. '1-10,every5,20,50,75')."""
    spec = spec.strip().lower()
    if spec in ("", "all"):
        return KeepPolicy(keep_all=True)
    epochs: set[int] = set()
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
                epochs.update(range(lo, hi + 1))
            else:
                value = int(token)
                if value < 1:
                    raise ValueError
                epochs.add(value)
        except ValueError:
            raise ValueError(
                f"bad keep token {token!r}: use all, last, N, A-B or everyK (e.g. 1-10,every5,75)"
            ) from None
    return KeepPolicy(keep_all=False, epochs=frozenset(epochs), every=tuple(every))


@dataclass(frozen=True)
class KeepPolicy:
    keep_all: bool = True
    epochs: frozenset = frozenset()
    every: tuple = ()

    def keeps(self, epoch: int, final_epoch: int) -> bool:
        return (
            self.keep_all
            or epoch == final_epoch
            or epoch in self.epochs
            or any(epoch % step == 0 for step in self.every)
        )


# ---------------------------------------------------------------------------------------------
# Grids


def grid_to_png_bytes(images: np.ndarray) -> bytes:
    """(100, 28, 28) uint8, row-major (digit, noise) -> 280x280 grayscale PNG bytes."""
    from PIL import Image
    import io

    tiles = images.reshape(10, 10, 28, 28).transpose(0, 2, 1, 3).reshape(280, 280)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(tiles), mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def read_grid_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise RunError(f"{path}: unreadable image ({exc})") from None
    if array.shape != (280, 280):
        raise RunError(f"{path}: grid is {array.shape}, expected 280x280")
    return array


# ---------------------------------------------------------------------------------------------
# The run


class Run:
    """One run directory. Readers use the listing and loading methods; the trainer writes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

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

    def exists(self) -> bool:
        return self.config_path.is_file()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- reading --------------------------------------------------------------------------
    def config(self) -> dict:
        try:
            data = json.loads(self.config_path.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path}: not a run (no config.json)") from None
        except (OSError, ValueError) as exc:
            raise RunError(f"{self.config_path}: unreadable ({exc})") from None
        if not isinstance(data, dict) or "model" not in data:
            raise RunError(f"{self.config_path}: not a run configuration")
        return data

    def history(self) -> list[EpochRecord]:
        """Complete epochs, in order. A torn or foreign line ends the listing there."""
        return self._read_history()[0]

    def _read_history(self) -> tuple[list[EpochRecord], bool]:
        """(records up to the first bad line, whether every line was good)."""
        try:
            text = self.history_path.read_text()
        except FileNotFoundError:
            return [], True
        except OSError as exc:
            raise RunError(f"{self.history_path}: unreadable ({exc})") from None
        records: list[EpochRecord] = []
        lines = [line for line in text.splitlines() if line.strip()]
        for line in lines:
            try:
                record = EpochRecord.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError):
                break
            if records and record.epoch != records[-1].epoch + 1:
                break
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
            for file in folder.glob("generator_*.pt"):
                try:
                    epoch = int(file.stem.split("_")[1])
                except (IndexError, ValueError):
                    continue
                if epoch in complete:
                    found.append(epoch)
        return sorted(found)

    def grid(self, epoch: int) -> np.ndarray:
        """The fixed 10x10 grid after `epoch` as a 280x280 uint8 array."""
        return read_grid_png(self.grid_path(epoch))

    def grid_images(self, epoch: int) -> np.ndarray:
        """The same grid as (10 digits, 10 noise columns, 28, 28) uint8."""
        return self.grid(epoch).reshape(10, 28, 10, 28).transpose(0, 2, 1, 3)

    def load_generator(self, epoch: int | None = None, device: str | torch.device = "cpu"):
        """The generator after `epoch` (default: the newest with weights), in eval mode."""
        config = self.config()
        if epoch is None:
            saved = self.weight_epochs()
            if not saved:
                raise RunError(f"run {self.name}: no finished epoch with weights yet")
            epoch = saved[-1]
        state = load_tensors(self.weights_path(epoch), map_location=device)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise RunError(f"{self.weights_path(epoch)}: not a generator state_dict")
        try:
            generator = get_model(config["model"]).generator(float(config.get("width", 1.0)))
        except (ValueError, TypeError) as exc:
            raise RunError(f"{self.config_path}: {exc}") from None
        try:
            generator.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as exc:
            raise RunError(
                f"{self.weights_path(epoch)}: does not fit a {config['model']} generator "
                f"({str(exc).splitlines()[0][:100]})"
            ) from None
        return generator.to(device).eval()

    def is_training(self) -> bool:
        """True while the trainer that wrote status.json "running" is still alive (a crashed one,
        or a recycled pid, does not count)."""
        status = self.status()
        if status.get("state") != "running":
            return False
        try:
            pid = int(status.get("pid"))
        except (TypeError, ValueError):
            return False
        started = process_start_time(pid)
        return started is not None and started == status.get("pid_started", started)

    def status(self) -> dict:
        try:
            data = json.loads(self.status_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    # -- writing (the trainer) --------------------------------------------------------------
    def create(self, config: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.config_path, config)

    def write_status(self, state: str, **fields) -> None:
        data = {"state": state, "updated_at": time.time(), **fields}
        write_json_atomic(self.status_path, data)

    def write_epoch(
        self,
        epoch: int,
        make_record: Callable[[], EpochRecord],
        grid_images: np.ndarray,
        generator_state: dict,
        resume_state: dict,
        keep: KeepPolicy,
        final_epoch: int,
    ) -> EpochRecord:
        """Commit one finished epoch: grid, weights, resume state, then the history record.

        `make_record` is called once the grid and weights are on disk, so the wall time it
        measures covers them."""
        write_bytes_atomic(self.grid_path(epoch), grid_to_png_bytes(grid_images))
        save_tensors_atomic(self.weights_path(epoch), generator_state)
        record = make_record()
        save_tensors_atomic(self.last_path, {**resume_state, "record": record.to_json()})
        self._append_history(record)
        # Only now that the new epoch is complete may the previous one's weights go.
        previous = epoch - 1
        if previous >= 1 and not keep.keeps(previous, final_epoch):
            self.weights_path(previous).unlink(missing_ok=True)
        return record

    @contextlib.contextmanager
    def _history_lock(self):
        """Serialise rewrites of history.jsonl (the trainer appending, cgan.metrics merging)."""
        with open(self.path / ".history.lock", "a") as lock:
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
        state = load_tensors(self.last_path, map_location=device)
        if not isinstance(state, dict) or "epoch" not in state:
            raise RunError(f"{self.last_path}: not a resume state")
        return state

    def repair(self) -> int:
        """Make history agree with last.pt after a crash; return the last complete epoch."""
        if not self.last_path.is_file():
            if self.history():
                raise RunError(f"run {self.name}: no resume state (last.pt), it cannot be continued")
            return 0
        state = self.load_resume_state()
        epoch = int(state["epoch"])
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
            if not keep.keeps(epoch, final):
                self.weights_path(epoch).unlink(missing_ok=True)
            elif half:
                state = load_tensors(self.weights_path(epoch))
                state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
                save_tensors_atomic(self.weights_path(epoch), state)
        if drop_resume_state:
            self.last_path.unlink(missing_ok=True)
        kept = ", ".join(str(e) for e in self.weight_epochs())
        note = {"weights_kept": kept, "weights_dtype": "float16" if half else "float32",
                "resume_state": "dropped" if drop_resume_state or not self.last_path.exists() else "kept"}
        write_json_atomic(self.config_path, {**self.config(), "slimmed": note})


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
    """A run name is a safe slug that cannot leave the checkpoints folder."""
    if not RUN_NAME.match(name or "") or name in (".", ".."):
        raise ValueError(
            "run name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name
