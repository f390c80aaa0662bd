"""Helpers for the command-line fuzzing and damaged-run tests: run a CLI in-process or in a real
process (optionally with folders mounted read-only), and fingerprint a run's files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def call_main(main, argv: list[str]) -> Outcome:
    """Call a CLI's main(argv) in this process: its exit status (returned or raised), its output.

    Any exception other than SystemExit escapes, as it would reach the user as a traceback.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    if code is None:
        code = 0
    if not isinstance(code, int):  # SystemExit("message"): Python prints it and exits 1
        err.write(f"{code}\n")
        code = 1
    return Outcome(code, out.getvalue(), err.getvalue())


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def run_module(module: str, argv: list[str], cwd: Path, timeout: float = 180, read_only: tuple = (),
               env: dict | None = None) -> Outcome:
    """`python -m module argv` in a real process; `read_only` folders are bind-mounted read-only
    for that process alone (a private mount namespace, gone when it exits)."""
    command = [sys.executable, "-m", module, *argv]
    if read_only:
        mounts = " && ".join(
            f"mount --bind {shell_quote(p)} {shell_quote(p)} && mount -o remount,bind,ro {shell_quote(p)}"
            for p in map(str, read_only)
        )
        command = ["unshare", "-rm", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                            env=env or cli_env())
    return Outcome(result.returncode, result.stdout, result.stderr)


def shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def read_only_mounts_work(tmp: Path) -> bool:
    """Whether this machine lets a process mount a folder read-only for itself (unshare -rm)."""
    if shutil.which("unshare") is None:
        return False
    folder = tmp / "probe"
    folder.mkdir(exist_ok=True)
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c",
         f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && ! touch {folder}/x"],
        capture_output=True, timeout=30,
    )
    return probe.returncode == 0 and not (folder / "x").exists()


def fingerprint(root: Path) -> dict[str, str]:
    """Every entry under `root` (itself included): sha256 for files, the kind for anything else,
    plus its permission bits; equal fingerprints mean no byte, file or folder changed."""
    found = {}
    root = Path(root)
    for path in [root, *sorted(root.rglob("*"))]:
        rel = str(path.relative_to(root))
        info = path.lstat()
        mode = oct(info.st_mode & 0o7777)
        if path.is_symlink():
            found[rel] = f"link -> {os.readlink(path)} {mode}"
        elif path.is_dir():
            found[rel] = f"dir {mode}"
        elif path.is_file():
            with open(path, "rb") as f:  # in pieces: a damaged file may be huge (sparse)
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            found[rel] = f"{digest} {mode}"
        else:
            found[rel] = f"other {mode}"
    return found


def assert_clean_outcome(outcome: Outcome, allowed: tuple[int, ...] = (0, 1, 2), context="") -> None:
    """The house rule: exit 0, or an agreed code with exactly one line on stderr, no traceback."""
    assert "Traceback" not in outcome.stderr, f"{context}\n{outcome.stderr}"
    assert outcome.code in allowed, f"{context}: exit {outcome.code}\n{outcome.stderr}"
    if outcome.code != 0:
        assert len(outcome.lines()) == 1, f"{context}: exit {outcome.code}, stderr:\n{outcome.stderr}"


# ---------------------------------------------------------------------------------------------
# Hostile material: what a damaged disk or a hostile user puts where a run's file should be

DEEP_JSON = "[" * 100_000 + "]" * 100_000  # valid JSON nested far beyond any parser's recursion
NON_FINITE = ("Infinity", "-Infinity", "NaN", "1e400", "-1e400")  # JSON text Python reads as inf/nan
DEVICES = ("/dev/zero", "/dev/urandom", "/dev/null")
CONTROL_NAMES = ("new\nline", "carriage\rreturn", "esc\x1b[31mred", "tab\there", "line\u2028sep", "bell\x07")
HUGE_RANGES = ("1-10000000000", "1-99999999999,every1", "5-10000000000000000000", "1-" + "9" * 40)


def make_fifo(path: Path) -> None:
    """Replace `path` (file or folder) with a named pipe nobody writes to."""
    remove(path)
    os.mkfifo(path)


def link_to(path: Path, target: Path | str) -> None:
    """Replace `path` with a symbolic link to `target`."""
    remove(path)
    path.symlink_to(target)


def remove(path: Path) -> None:
    if path.is_symlink() or path.is_file() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def jsonl_record(epoch, **changes) -> str:
    """A history line, with `changes` written as raw JSON text (so Infinity or 1e400 stay as typed)."""
    fields = {"epoch": str(epoch), "d_loss": "1.0", "g_loss": "1.0", "epoch_seconds": "0.5",
              "wall_seconds": "0.6", "finished_at": "1700000000.0"}
    fields.update({key: str(value) for key, value in changes.items()})
    return "{" + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}"
