"""The run directory: the one contract between the trainer, the app, the jobs and the metrics.

This module defines ``checkpoints/<run>/`` and, with the modules it builds on (cgan.run_folder:
the paths, status.json, the trainer lock; cgan.history: history.jsonl; cgan.files: safe reads and
atomic writes), does all reading and writing of its files (cgan.jobs only reserves the folder,
points the trainer's output at ``train.log`` and deletes whole runs)::

    config.json                  the training configuration (JSON object, "format": 2; format 1
                                 has no "format" key, see cgan.config); a resume may raise
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

A folder is a run when its config.json is a file (``Run.exists()``); a launch whose trainer has
not written it yet holds a status.json only (``Run.launched()`` covers both).

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

import os
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from cgan.messages import N_, Problem, RunError
from cgan.files import (
    GRID_CAP, JSON_CAP, checkpoints_root, load_tensors, loads_json, read_regular,
    save_tensors_atomic, write_bytes_atomic, write_failure, write_json_atomic,
)
from cgan.history import EpochRecord, history_bytes, read_history
from cgan.images import png_bytes, read_gray_png, tile
from cgan.keep import KeepPolicy
from cgan.models import check_width, get_model
from cgan.run_folder import RunFolder

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# What a name check says (its ValueError holds a cgan.messages.Problem, for the app to translate).
RUN_NAME_RULE = N_("1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
NOT_A_FOLDER = N_("run name {shown}: not a run folder's name (one folder name, not hidden, no control "
                  "characters)")


def _shown(value) -> str:
    """A value from a file, short and on one line, for a message."""
    text = repr(value) if isinstance(value, (int, float, str, bool, type(None))) else type(value).__name__
    return text[:40]


def _width(config: dict):
    """The networks' width in a config.json: format 2 holds every training option; format 1 (no
    "format" key) is from before the width option and its runs are width 1 when it has none."""
    if config.get("format", 1) == 1:
        return config.get("width", 1.0)
    if "width" not in config:
        raise ValueError(f"config format {config.get('format')!r} without a width")
    return config["width"]


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


class Run(RunFolder):
    """One run directory. Readers use the listing and loading methods; the trainer writes."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._cleaned = False  # temporary files of killed writes removed by this object yet

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
        return read_history(self.history_path)[0]

    def _history_to_rewrite(self) -> list[EpochRecord]:
        """All records, refusing a damaged file: rewriting it would drop what follows the damage."""
        records, intact = read_history(self.history_path)
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
            width = check_width(_width(config))  # before any memory is asked for
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

    # -- writing (the trainer) --------------------------------------------------------------
    def create(self, config: dict) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.config_path, config)
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

    def _write_history(self, records: list[EpochRecord]) -> None:
        write_bytes_atomic(self.history_path, history_bytes(records))

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


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run directory under `root` (default: checkpoints_root()), newest first."""
    root = Path(root) if root is not None else checkpoints_root()
    if not root.is_dir():
        return []
    runs = [run for run in map(Run, root.iterdir()) if run.exists()]
    return sorted(runs, key=_created_at, reverse=True)


def _created_at(run: Run) -> float:
    try:
        return float(run.config().get("created_at", 0))
    except (RunError, TypeError, ValueError):
        return 0.0  # deleted or damaged meanwhile: listed last


def check_run_name(name: str) -> str:
    """A new run's name is a safe slug that cannot leave the checkpoints folder."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(Problem(N_("run name: {rule}"), rule=Problem(RUN_NAME_RULE)))
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
        raise ValueError(Problem(NOT_A_FOLDER, shown=shown))
    return name
