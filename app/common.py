"""What the app's pages share: the chosen run, cached loaders, shared controls and image helpers.

A page reads like this::

    from app import common

    with common.page_errors():
        run = common.current_run()          # the run picked in the sidebar (None: message shown)
        if run is not None:
            ...

Runs are read with ``cgan.runs`` and sampled with ``cgan.sampling``; nothing here trains.
Caches are keyed by a file's modification time and size, so a file that the trainer rewrites is
read again on the next rerun, and run listings are never cached: a run being written shows its
new epochs as soon as the page reruns.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import random
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from cgan.data import MnistError, mnist_in_memory
from cgan.runs import EpochRecord, Run, RunError, checkpoints_root, list_runs
from cgan.sampling import generate, noise, tile

PREFERRED_RUN = "cgan-report"
RUN_KEY = "run"  # st.session_state key of the run picked in the sidebar
MAX_SEED = 2**31 - 1
LABEL_COLOUR = 0  # row labels: black on the white page
GAP_COLOUR = 255  # white gaps between black digit tiles


# ---------------------------------------------------------------------------------------------
# Errors: one line on the page, never a traceback


@contextlib.contextmanager
def page_errors():
    """Turn what can go wrong while reading runs into one line on the page."""
    try:
        yield
    except RunError as exc:
        st.error(str(exc))
    except MnistError as exc:
        st.error(f"MNIST is not available: {exc}")
    except FileNotFoundError as exc:
        st.error(f"A file of the run is gone ({exc.filename or exc}); it may have been deleted.")
    except OSError as exc:
        st.error(f"A file could not be read: {exc.strerror or exc} ({exc.filename or ''})")


def file_key(path: Path) -> tuple[str, int, int]:
    """(path, mtime_ns, size): a cache key that changes whenever the file is rewritten."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    return str(path), stat.st_mtime_ns, stat.st_size


# ---------------------------------------------------------------------------------------------
# Runs


def runs() -> list[Run]:
    """Every run under the checkpoints folder, newest first (read afresh on every rerun)."""
    return list_runs()


def default_run_name(names: list[str], preferred: str = PREFERRED_RUN) -> str | None:
    if preferred in names:
        return preferred
    return names[0] if names else None


def run_model(run: Run) -> str | None:
    """The run's model name, or None when its config cannot be read."""
    try:
        return str(run.config()["model"])
    except RunError:
        return None


@st.cache_data(show_spinner=False, max_entries=256)
def _history(path: str, mtime_ns: int, size: int) -> list[EpochRecord]:
    return Run(Path(path).parent).history()


def history(run: Run) -> list[EpochRecord]:
    """The run's complete epochs, cached until history.jsonl changes."""
    if not run.history_path.is_file():
        if not run.path.is_dir():
            raise RunError(f"run {run.name} is gone (deleted while the page was open?)")
        return []
    try:
        return _history(*file_key(run.history_path))
    except RunError:
        return []  # removed between the check and the read: no complete epoch


def epochs(run: Run) -> list[int]:
    return [record.epoch for record in history(run)]


def weight_epochs(run: Run) -> list[int]:
    """Complete epochs whose generator weights are on disk (history from the cache)."""
    return run.weight_epochs(epochs(run))


def nearest(wanted: int, available: list[int]) -> int:
    """The available epoch closest to `wanted` (the later one on a tie)."""
    return min(available, key=lambda e: (abs(e - wanted), -e))


def training_state(run: Run) -> str | None:
    """'running' while a live trainer writes the run, else the recorded state (or None)."""
    state = run.status().get("state")
    if state == "running" and not run.is_training():
        return "stopped"
    return state


def describe(run: Run) -> str:
    """What the sidebar says under the run picker: model, epochs done, training or not."""
    model = run_model(run)
    done = len(history(run))
    text = f"{model.upper() if model else 'Unreadable config'}, {done} epoch{'s' * (done != 1)}"
    state = training_state(run)
    if state == "running":
        total = run.status().get("epochs_total")
        text += f" of {total}, training now" if total else ", training now"
    return text


def sidebar_run_picker() -> Run | None:
    """The sidebar's run chooser, shared by every page; the choice is kept in session state."""
    all_runs = runs()
    names = [run.name for run in all_runs]
    by_name = {run.name: run for run in all_runs}
    if not names:
        st.session_state.pop(RUN_KEY, None)
        st.sidebar.info(f"No runs yet in {checkpoints_root()}.")
        return None
    chosen = st.session_state.get(RUN_KEY)
    if chosen not in names:
        if chosen is not None:
            st.sidebar.warning(f"Run {chosen} is gone.")
        st.session_state[RUN_KEY] = default_run_name(names)
    name = st.sidebar.selectbox("Run", names, key=RUN_KEY)
    run = by_name[name]
    st.sidebar.caption(describe(run))
    return run


def follow_training(run: Run, every_seconds: float = 3.0) -> None:
    """While a trainer writes `run`, rerun the app whenever an epoch finishes."""

    @st.fragment(run_every=every_seconds)
    def watch() -> None:
        # The last epoch's record comes before the trainer's final status: watch both files.
        try:
            seen = (file_key(run.history_path), file_key(run.status_path))
        except RunError:
            seen = None
        previous = st.session_state.get("_followed")
        st.session_state["_followed"] = (str(run.path), seen)
        if previous is not None and previous[0] == str(run.path) and previous[1] != seen:
            st.rerun(scope="app")

    watch()


def current_run() -> Run | None:
    """The run picked in the sidebar, or None after saying why there is none."""
    names = [run.name for run in runs()]
    if not names:
        st.info(
            f"No runs yet in {checkpoints_root()}. Train one on the Train page, or with "
            "`python -m cgan.train --out checkpoints/NAME`."
        )
        return None
    name = st.session_state.get(RUN_KEY)
    if name not in names:
        name = default_run_name(names)
    return Run(checkpoints_root() / name)


def require_epochs(run: Run, with_weights: bool = False) -> list[int]:
    """The run's complete epochs (or those with weights); says so on the page if there are none."""
    found = weight_epochs(run) if with_weights else epochs(run)
    if not found:
        if not epochs(run):
            st.info(
                f"Run {run.name} has no finished epoch yet. Its first epoch appears here as soon "
                "as it is done."
            )
        else:
            st.warning(
                f"Run {run.name} has no generator weights on disk, so it cannot draw digits."
            )
    return found


def runs_of_model(model: str) -> list[Run]:
    return [run for run in runs() if run_model(run) == model]


# ---------------------------------------------------------------------------------------------
# Cached loaders


@st.cache_resource(show_spinner=False, max_entries=48)
def _generator(run_path: str, epoch: int, _mtime_ns: int, _size: int):
    return Run(run_path).load_generator(epoch)


def generator(run: Run, epoch: int):
    """The run's generator after `epoch`, loaded once per version of its weights file."""
    path = run.weights_path(epoch)
    try:
        _, mtime_ns, size = file_key(path)
        return _generator(str(run.path), int(epoch), mtime_ns, size)
    except RunError as exc:
        # The library names the file and the fault; say it in the words of the page.
        raise RunError(
            f"Cannot draw epoch {epoch} of {run.name}: {_fault(exc, path)}. Choose another epoch."
        ) from None


def _fault(exc: RunError, path: Path) -> str:
    """'file: what is wrong' from the library's message, without the folder and the details."""
    return f"{path.name}: " + str(exc).removeprefix(f"{path}: ").split(" (")[0]


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
        raise RunError(
            f"Cannot show the grid of epoch {epoch} of {run.name}: {_fault(exc, path)}."
        ) from None


def samples(run: Run, epoch: int, digit: int, seed: int, n: int) -> np.ndarray:
    """n images of `digit` from the noise vectors named by `seed`: (n, 28, 28) uint8."""
    return generate(generator(run, epoch), [digit] * n, noise(seed, n))


def all_digits(run: Run, epoch: int, seed: int, vector: int = 0) -> np.ndarray:
    """Digits 0-9 written with one noise vector (number `vector` of `seed`): (10, 28, 28)."""
    z = noise(seed, vector + 1)[vector : vector + 1].repeat(10, 1)
    return generate(generator(run, epoch), list(range(10)), z)


@st.cache_resource(show_spinner="Loading the MNIST training set...")
def _mnist():
    # The same in-memory copy the metrics use; this wrapper only adds the spinner.
    return mnist_in_memory()


def real_digits(digit: int, n: int, seed: int) -> np.ndarray:
    """n real MNIST training images of `digit`, chosen by `seed`: (n, 28, 28) uint8."""
    mnist = _mnist()
    candidates = np.flatnonzero(mnist.train_labels == digit)
    chosen = np.random.default_rng(seed).choice(candidates, size=n, replace=False)
    return mnist.train_images[chosen]


# ---------------------------------------------------------------------------------------------
# Controls shared between pages


def shared_value(name: str, key: str, default):
    """Give the widget `key` the session's shared value `name` if it has none of its own yet.

    Widget values are forgotten when the page changes; the shared value is not, so the digit or
    seed chosen on one page is where the next page starts.
    """
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(name, default)


def digit_control(key: str, label: str = "Digit") -> int:
    shared_value("digit", key, 7)
    digit = st.segmented_control(label, list(range(10)), key=key, required=True)
    digit = 7 if digit is None else int(digit)
    st.session_state["digit"] = digit
    return digit


def _new_seed(key: str) -> None:
    st.session_state[key] = random.randint(0, 99_999)


def seed_control(key: str) -> int:
    """A noise seed: an integer input and a button that draws a new one."""
    shared_value("seed", key, 42)
    field, button = st.columns(2, vertical_alignment="bottom")
    seed = field.number_input("Noise seed", 0, MAX_SEED, step=1, key=key)
    button.button("Random seed", key=f"{key}_random", on_click=_new_seed, args=(key,),
                  icon=":material/casino:")
    seed = int(seed)
    st.session_state["seed"] = seed
    return seed


def follow_newest(key: str, options: list[int]) -> None:
    """Before an epoch widget `key` is drawn: start on the newest of `options` (sorted epochs),
    and stay on the newest while a trainer adds epochs, unless another epoch was chosen."""
    newest_key = f"{key}__newest"
    chosen = st.session_state.get(key)
    was_newest = chosen is not None and chosen == st.session_state.get(newest_key)
    if chosen not in options or (was_newest and chosen != options[-1]):
        st.session_state[key] = options[-1]
    st.session_state[newest_key] = options[-1]


def epoch_control(label: str, options: list[int], key: str) -> int:
    """Pick one of `options` (sorted epochs), starting on the newest."""
    follow_newest(key, options)
    if len(options) == 1:
        st.session_state.pop(key, None)
        st.markdown(f"**{label}:** {options[0]} (the only one so far)")
        return options[0]
    return int(st.select_slider(label, options, key=key))


# ---------------------------------------------------------------------------------------------
# Images: 28x28 digits are enlarged with nearest neighbour here, so they stay crisp


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def fitted_mosaic(
    images: np.ndarray, columns: int, width: int, height: int, most: int = 12
) -> np.ndarray:
    """A mosaic enlarged by the largest whole factor that fits width x height pixels."""
    plain = tile(images, columns, pad=2, pad_value=GAP_COLOUR)
    scale = max(1, min(most, width // plain.shape[1], height // plain.shape[0]))
    return upscale(plain, scale)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def font(size: int):
    return ImageFont.load_default(size=size)


def labelled_grid(grid_image: np.ndarray, scale: int = 2, title: str | None = None) -> np.ndarray:
    """The 10x10 grid enlarged, the digit of each row written at its left, a title below."""
    big = upscale(grid_image, scale)
    cell = 28 * scale
    margin = max(22, cell // 2 + 6)
    footer = max(28, cell // 2 + 8) if title else 0
    canvas = Image.new("L", (big.shape[1] + margin, big.shape[0] + footer), 255)
    canvas.paste(Image.fromarray(big, mode="L"), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    label_font = font(max(14, int(cell * 0.6)))
    for digit in range(10):
        draw.text((margin / 2 - 2, digit * cell + cell / 2), str(digit), fill=LABEL_COLOUR,
                  font=label_font, anchor="mm")
    if title:
        draw.text((margin + big.shape[1] / 2, big.shape[0] + footer / 2), title, fill=LABEL_COLOUR,
                  font=font(max(16, footer - 8)), anchor="mm")
    return np.asarray(canvas)


def show_image(image: np.ndarray, caption: str | None = None) -> None:
    """Show a grayscale array as a lossless PNG at its own size, or narrower if space is short.

    The keyed container lets the page's CSS stop a long caption from stretching the picture.
    """
    data = png_bytes(image)
    key = hashlib.sha1(data + (caption or "").encode()).hexdigest()[:16]
    with st.container(key=f"pixels-{key}"):
        st.image(data, caption=caption, output_format="PNG", width="content")


def download_png(label: str, image: np.ndarray, file_name: str, key: str) -> None:
    # The PNG is encoded only when the button is pressed, not on every rerun of the page.
    st.download_button(label, lambda: png_bytes(image), file_name=file_name, mime="image/png",
                       key=key, icon=":material/download:", on_click="ignore")


def evolution_gif(run: Run, scale: int = 1, frame_ms: int = 120) -> bytes:
    """Every epoch's grid, labelled "Epoch N", as one looping GIF (the last frame lingers)."""
    frames = []
    for epoch in epochs(run):
        try:
            image = labelled_grid(grid(run, epoch), scale=scale, title=f"Epoch {epoch}")
        except RunError:
            continue
        frames.append(Image.fromarray(image, mode="L"))
    if not frames:
        raise RunError(f"run {run.name}: no grid to animate yet")
    durations = [frame_ms] * (len(frames) - 1) + [2500]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=durations, optimize=False)
    return buffer.getvalue()


def tile_columns(n: int) -> int:
    """Columns for a near-square mosaic of n digits."""
    return max(1, math.ceil(math.sqrt(n)))


# ---------------------------------------------------------------------------------------------
# Page furniture

CSS = """
<style>
/* Digits are pixel art: never let the browser smooth them when it resizes an image. */
[data-testid="stImage"] img { image-rendering: pixelated; border-radius: 0; }
[class*="st-key-pixels-"] [data-testid="stImage"] img { width: auto !important; margin: 0 auto; }
[data-testid="stButtonGroup"] button[aria-checked="true"] { background: #0B4F9C !important; }
[data-testid="stButtonGroup"] button[aria-checked="true"] p { color: #FFFFFF; font-weight: 700; }
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; padding-bottom: 3rem; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {
  font-size: 1rem; line-height: 1.45; }
[data-testid="stCaptionContainer"] { opacity: 1; }
[data-testid="stCaptionContainer"] p { font-size: 0.9rem; color: #1F2937; }
[data-testid="stImageCaption"] [data-testid="stCaptionContainer"] p {
  font-size: 1.05rem; color: #000; font-weight: 600; }
</style>
"""


def explain(text: str) -> None:
    """A short explanation a student can read from the back of the hall."""
    with st.container(border=True):
        st.markdown(text)
