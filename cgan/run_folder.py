"""A run's folder as a place: where each file of the format lies (cgan.runs describes them), what
status.json says, whether a trainer holds the run, stop requests, the trainer's log and the
temporary files a killed write leaves. cgan.runs.Run adds the run's content (configuration,
history, grids, weights) on top of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import stat
import time
from pathlib import Path

from cgan.files import (
    JSON_CAP, loads_json, open_lock_file, open_regular, read_regular, write_bytes_atomic, write_failure,
    write_json_atomic,
)
from cgan.messages import RunError
from cgan.processes import is_trainer_of

# status.json fields that describe the launch and outlive the trainer process (see write_status).
LAUNCH_FIELDS = (
    "arguments", "device", "launched_at", "pid", "pid_started", "session", "estimated_seconds",
    "epochs_total",
)


class RunFolder:
    """One run's folder: its layout, its status and its trainer."""

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
        """Whether the folder is a run: its config.json is a file. The trainer writes it before
        anything else, and every reader of the run's content starts from it."""
        return self.config_path.is_file()

    def launched(self) -> bool:
        """Whether the folder is a run or a launch of one: exists(), or a launcher's status.json
        for a trainer that has not written its configuration yet (queued or starting)."""
        return self.exists() or self.status_path.is_file()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

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
        the process a "starting" or "running" status.json names (a trainer takes the lock once
        it starts), if it is this run's trainer (is_trainer_of: a recycled pid, or any other process a
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

    @contextlib.contextmanager
    def _history_lock(self):
        """Serialise rewrites of history.jsonl (the trainer appending, cgan.metrics merging)."""
        with open_lock_file(self.path / ".history.lock") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


# The type each status.json field must have to be used (see RunFolder.status).
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

