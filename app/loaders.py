"""Reading runs for the pages: cached loaders, and one line on the page when a read fails.

Caches are keyed by a file's path, modification time and size, so a file the trainer rewrites
(or a run deleted and created again under the same name) is read again on the next rerun.
Streamlit leaves arguments whose names start with "_" out of a cache key: none of the
arguments below may have such a name.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import streamlit as st

from app.i18n import _
from app.text import plain
from cgan.data import MNIST_INSTALL_HINT, MnistError, mnist_in_memory
from cgan.runs import EpochRecord, Run, RunError
from cgan.sampling import generate, noise
from cgan.threads import for_interactive


@contextlib.contextmanager
def page_errors():
    """Turn what can go wrong while reading runs into one line on the page, in place."""
    try:
        yield
    except RunError as exc:
        st.error(plain(exc))
    except MnistError as exc:
        st.error(_("MNIST is not on this machine, so this part cannot be shown. "
                   "{command} provides it. ({detail})").format(command=f"`{MNIST_INSTALL_HINT}`",
                                                              detail=plain(exc)))
    except FileNotFoundError as exc:
        st.error(_("A file of the run is gone ({file}); it may have been deleted.").format(
            file=plain(exc.filename or exc)))
    except OSError as exc:
        st.error(_("A file could not be read: {reason} ({file})").format(
            reason=plain(exc.strerror or exc), file=plain(exc.filename or "")))
    except (UnicodeDecodeError, ValueError) as exc:
        # A damaged file the library did not catch: one line, never a traceback.
        detail = str(exc).splitlines()[0][:200] if str(exc) else exc
        st.error(_("A damaged file could not be read: {detail}").format(detail=plain(detail)))


def file_key(path: Path) -> tuple[str, int, int]:
    """(path, mtime_ns, size): a cache key that changes whenever the file is rewritten."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    return str(path), stat.st_mtime_ns, stat.st_size


def fault(exc: RunError, path: Path) -> str:
    """'file: what is wrong' from the library's message, without the folder."""
    message = str(exc).removeprefix(f"{path}: ")
    # Drop a parenthesised detail at the end, but never cut a message in the middle.
    if message.endswith(")") and " (" in message:
        message = message[: message.rindex(" (")]
    return f"{path.name}: {message}"


# ---------------------------------------------------------------------------------------------
# History


@st.cache_data(show_spinner=False, max_entries=256)
def _history(path: str, mtime_ns: int, size: int) -> list[EpochRecord]:
    return Run(Path(path).parent).history()


def history(run: Run) -> list[EpochRecord]:
    """The run's complete epochs, cached until history.jsonl changes.

    A damaged history raises RunError (shown in place by page_errors); a history that vanished
    between the check and the read just has no complete epoch.
    """
    if not run.history_path.exists():
        if not run.path.is_dir():
            raise RunError(_("run {run} is gone (deleted while the page was open?)").format(
                run=run.name))
        return []
    try:
        return _history(*file_key(run.history_path))
    except RunError:
        if not run.history_path.exists():
            return []
        raise
    except (UnicodeDecodeError, ValueError):
        raise RunError(_("run {run}: history.jsonl is damaged and cannot be read").format(
            run=run.name)) from None


def epochs(run: Run) -> list[int]:
    return [record.epoch for record in history(run)]


def weight_epochs(run: Run) -> list[int]:
    """Complete epochs whose generator weights are on disk (history from the cache)."""
    return run.weight_epochs(epochs(run))


def nearest(wanted: int, available: list[int]) -> int:
    """The available epoch closest to `wanted` (the later one on a tie)."""
    return min(available, key=lambda e: (abs(e - wanted), -e))


# ---------------------------------------------------------------------------------------------
# Generators and grids


AVERAGED_KEY = "averaged"  # st.session_state: draw from the weight-averaged generator where kept


@st.cache_resource(show_spinner=False, max_entries=48)
def _generator(weights_path: str, mtime_ns: int, size: int, run_path: str, epoch: int, averaged: bool):
    # mtime_ns and size are part of the key: a run recreated under the same name is reloaded.
    return Run(run_path).load_generator(epoch, averaged=averaged)


def generator(run: Run, epoch: int):
    """The run's generator after `epoch`, loaded once per version of its weights file.

    Every page's torch work starts here, so this is where the app takes its share of the cores:
    one thread while a trainer runs on this machine (the job the page feeds keeps the rest),
    every core when none does. With the sidebar's "Weight-averaged generator" on, the epochs
    that kept averaged weights draw from those."""
    for_interactive()
    averaged = bool(st.session_state.get(AVERAGED_KEY)) and run.has_averaged(epoch)
    path = run.averaged_weights_path(epoch) if averaged else run.weights_path(epoch)
    try:
        return _generator(*file_key(path), str(run.path), int(epoch), averaged)
    except RunError as exc:
        # The library names the file and the fault; say it in the words of the page.
        raise RunError(_("Cannot draw epoch {epoch} of {run}: {fault}. Choose another epoch.").format(
            epoch=epoch, run=run.name, fault=fault(exc, path))) from None


@st.cache_data(show_spinner=False, max_entries=512)
def _grid(path: str, mtime_ns: int, size: int) -> np.ndarray:
    from cgan.runs import read_grid_png

    return read_grid_png(Path(path))


def grid(run: Run, epoch: int) -> np.ndarray:
    """The run's fixed 10x10 grid after `epoch`: 280x280 uint8, row = digit, column = noise."""
    path = run.grid_path(epoch)
    try:
        return _grid(*file_key(path))
    except RunError as exc:
        raise RunError(_("Cannot show the grid of epoch {epoch} of {run}: {fault}.").format(
            epoch=epoch, run=run.name, fault=fault(exc, path))) from None


def samples(run: Run, epoch: int, digit: int, seed: int, n: int) -> np.ndarray:
    """n images of `digit` from the noise vectors named by `seed`: (n, 28, 28) uint8."""
    return generate(generator(run, epoch), [digit] * n, noise(seed, n))


def all_digits(run: Run, epoch: int, seed: int, vector: int = 0) -> np.ndarray:
    """Digits 0-9 written with one noise vector (number `vector` of `seed`): (10, 28, 28)."""
    z = noise(seed, vector + 1)[vector : vector + 1].repeat(10, 1)
    return generate(generator(run, epoch), list(range(10)), z)


# ---------------------------------------------------------------------------------------------
# Real MNIST


@st.cache_resource(show_spinner=False)
def _mnist_once():
    return mnist_in_memory()


def _mnist():
    # The same in-memory copy the metrics use; this wrapper only adds the spinner (in the
    # session's language; Streamlit shows it only when loading takes over half a second).
    with st.spinner(_("Loading the MNIST training set...")):
        return _mnist_once()


def real_digits(digit: int, n: int, seed: int) -> np.ndarray:
    """n real MNIST training images of `digit`, chosen by `seed`: (n, 28, 28) uint8."""
    mnist = _mnist()
    candidates = np.flatnonzero(mnist.train_labels == digit)
    chosen = np.random.default_rng(seed).choice(candidates, size=n, replace=False)
    return mnist.train_images[chosen]
