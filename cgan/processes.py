"""Which process is a run's trainer: pids read from disk are trusted only after checking the
process's kernel start time and its command line (Linux /proc, else ps)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cgan.files import CHECKPOINTS

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
