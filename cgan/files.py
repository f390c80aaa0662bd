"""Where runs live, and reading and writing their files safely.

Reads take only regular files, never block (a FIFO or a device is refused unread) and never load
more than a cap; writes go to a temporary name in the same folder and are renamed into place; a
``.pt`` file is loaded with ``torch.load(weights_only=True)`` and a pickle that imports anything
but torch's tensors is refused as code, not read as damage.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from cgan.messages import RunError

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoints_root() -> Path:
    """Where runs live: $CGAN_CHECKPOINTS if set, else the repository's checkpoints/ folder."""
    return Path(os.environ.get("CGAN_CHECKPOINTS") or CHECKPOINTS)


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


# ---------------------------------------------------------------------------------------------
# Tensors: loaded without running code


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
