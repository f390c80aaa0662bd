"""Drawing and exporting the app's figures: labelled grids, side-by-side panels, PNG and GIF.

Figures reach the browser as PNG data inside the page (<img src="data:...">), not as media
files: a media file can expire while the browser still asks for it (scrubbing the epochs fast
showed broken images), data in the page cannot. CSS sizes each figure from the space it has
(width of its column, height of the window), so the same figure fits a 1280x720 projector and
grows on a 1920x1080 screen. Figures are drawn at least as large as they are ever shown, so the
browser only shrinks them (smoothly, no blur) and never enlarges a 28-pixel digit itself.

Labels drawn into the pictures (titles, panel labels) are in the page's language. English text
and numbers use Pillow's own font; text with Chinese characters uses app/fonts/
NotoSansCJKsc-subset.otf, a subset of Noto Sans CJK SC (SIL Open Font License, app/fonts/OFL.txt)
holding the characters of the Chinese catalog and ASCII, made by tools/make_cjk_font.py (run it
again when the catalog gains characters).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from app.i18n import _, language, using
from cgan.images import png_bytes as gray_png_bytes, tile, upscale
from cgan.runs import Run, RunError

LABEL_COLOUR = 0  # labels: black on the white page
GAP_COLOUR = 255  # white gaps between black digit tiles
HIGHLIGHT_RGB = (255, 122, 0)  # the outlined column: orange, seen on black digits and white paper
GRID_SCALE = 3  # the 10x10 grid is drawn 840 pixels square: about the largest it is shown
CJK_FONT = Path(__file__).resolve().parent / "fonts" / "NotoSansCJKsc-subset.otf"
SMALLEST_LABEL = 10  # pixels: a label too long for its place shrinks down to this size


def png_bytes(image: np.ndarray) -> bytes:
    """PNG bytes of a grayscale (2-D) or RGB (H, W, 3) uint8 array."""
    if image.ndim == 2:
        return gray_png_bytes(image)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def needs_cjk(text: str) -> bool:
    """Whether `text` has a character beyond Latin: CJK ideographs, kana, CJK punctuation, full
    width forms (all at U+2E80 or above)."""
    return any(ord(c) >= 0x2E80 for c in text)


@functools.lru_cache(maxsize=64)
def _cjk_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(CJK_FONT), size)


def font(size: int, text: str = ""):
    """The font that draws `text` at `size` pixels: the shipped Chinese font when the text has
    Chinese characters, else Pillow's own (English labels and numbers look as they always did)."""
    return _cjk_font(size) if needs_cjk(text) else ImageFont.load_default(size=size)


def fitted_font(text: str, size: int, width: float, above: float, below: float | None = None):
    """font() for `text`, shrunk from `size` (down to SMALLEST_LABEL) until the text drawn
    centred on a point (anchor "mm") stays within `width` pixels and `above` / `below` pixels
    of it (`below` = `above` if not given): a long run name, or Chinese glyphs (taller than
    Latin ones in Noto's metrics), are not cut off at the picture's edge."""
    below = above if below is None else below

    def fits(chosen) -> bool:
        left, top, right, bottom = chosen.getbbox(text, anchor="mm")
        return right - left <= width and -top <= above and bottom <= below

    chosen = font(size, text)
    while size > SMALLEST_LABEL and not fits(chosen):
        size = max(SMALLEST_LABEL, size - max(1, size // 10))
        chosen = font(size, text)
    return chosen


def in_page_language(make: Callable[[], object]) -> Callable[[], object]:
    """`make` to be called later, outside the page's run (a download's data, built when the
    button is pressed, on another thread), translating in the language the page has now."""
    lang = language()

    def call():
        with using(lang):
            return make()

    return call


def fitted_mosaic(
    images: np.ndarray, columns: int, width: int, height: int, most: int = 12
) -> np.ndarray:
    """A mosaic enlarged by the largest whole factor that fits width x height pixels."""
    plain = tile(images, columns, pad=2, pad_value=GAP_COLOUR)
    scale = max(1, min(most, width // plain.shape[1], height // plain.shape[0]))
    return upscale(plain, scale)


# ---------------------------------------------------------------------------------------------
# The labelled 10x10 grid


def header_height(scale: int) -> int:
    """Pixels above a labelled grid enlarged `scale` times, for its column numbers."""
    return max(20, int(28 * scale * 0.6))


def labelled_grid(
    grid_image: np.ndarray,
    scale: int = 2,
    title: str | None = None,
    highlight: int | None = None,
    row_labels: bool = True,
    column_numbers: bool = True,
) -> np.ndarray:
    """The 10x10 grid enlarged: digit of each row at its left, noise column numbers on top,
    an optional title below, and column `highlight` outlined in orange (then the result is RGB).
    """
    big = upscale(grid_image, scale)
    cell = 28 * scale
    margin = max(22, cell // 2 + 6) if row_labels else 0
    header = header_height(scale) if column_numbers else 0
    footer = max(28, cell // 2 + 8) if title else 0
    mode = "L" if highlight is None else "RGB"
    ink = LABEL_COLOUR if mode == "L" else (LABEL_COLOUR,) * 3
    canvas = Image.new(mode, (big.shape[1] + margin, header + big.shape[0] + footer),
                       255 if mode == "L" else (255, 255, 255))
    canvas.paste(Image.fromarray(big, mode="L").convert(mode), (margin, header))
    draw = ImageDraw.Draw(canvas)
    label_font = font(max(14, int(cell * 0.6)))
    number_font = font(max(12, int(header * 0.85)))
    if row_labels:
        for digit in range(10):
            draw.text((margin / 2 - 2, header + digit * cell + cell / 2), str(digit), fill=ink,
                      font=label_font, anchor="mm")
    if column_numbers:
        for column in range(10):
            colour = HIGHLIGHT_RGB if column == highlight else ink
            draw.text((margin + column * cell + cell / 2, header / 2 + 1), str(column),
                      fill=colour, font=number_font, anchor="mm")
    if highlight is not None:
        width = max(3, scale + 1)
        left = margin + highlight * cell
        draw.rectangle((left, header, left + cell - 1, header + big.shape[0] - 1),
                       outline=HIGHLIGHT_RGB, width=width)
    if title:
        draw.text((margin + big.shape[1] / 2, header + big.shape[0] + footer / 2), title,
                  fill=ink, font=fitted_font(title, max(16, footer - 8), canvas.width - 8, footer / 2),
                  anchor="mm")
    return np.asarray(canvas)


def labelled_panels(panels: list[tuple[np.ndarray, str]], per_row: int, gap: int = 24) -> np.ndarray:
    """Pictures side by side, `per_row` to a row, each with its label written above it (the
    Compare figure as one PNG). Pictures may be grayscale or RGB; the result is RGB."""
    label_size = max(24, max(p.shape[1] for p, _ in panels) // 12)
    cell_w = max(p.shape[1] for p, _ in panels)
    cell_h = max(p.shape[0] for p, _ in panels) + label_size + 12
    rows = -(-len(panels) // per_row)
    canvas = Image.new("RGB", (per_row * cell_w + (per_row - 1) * gap, rows * cell_h + (rows - 1) * gap),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (picture, label) in enumerate(panels):
        r, c = divmod(k, per_row)
        x, y = c * (cell_w + gap), r * (cell_h + gap)
        middle = label_size / 2 + 2  # the label's centre; the picture starts at label_size + 12
        # and the label keeps 2 pixels clear of it
        draw.text((x + cell_w / 2, y + middle), label, fill=(0, 0, 0),
                  font=fitted_font(label, label_size, cell_w, middle, label_size + 10 - middle),
                  anchor="mm")
        image = Image.fromarray(picture).convert("RGB")
        canvas.paste(image, (x + (cell_w - picture.shape[1]) // 2, y + label_size + 12))
    return np.asarray(canvas)


# ---------------------------------------------------------------------------------------------
# Showing figures in the page


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def show_figures(
    figures: list[tuple[bytes, str]],
    per_row: int | None = None,
    max_height: str = "calc(100vh - 12rem)",
    caption_above: bool = False,
    key: str = "figure",
) -> None:
    """PNG pictures in one grid of `per_row` columns, each with its caption, sized to the space:
    as wide as its column allows and no taller than `max_height` (a CSS length; vh = window)."""
    per_row = per_row or len(figures)
    items = []
    for data, caption in figures:
        text = html.escape(caption)
        label = f'<figcaption data-testid="stImageCaption">{text}</figcaption>' if caption else ""
        image = f'<img src="{_data_url(data)}" alt="{text}">'
        items.append(f'<figure class="cgan-figure" data-testid="stImage">'
                     f'{label + image if caption_above else image + label}</figure>')
    st.html(
        f'<div class="cgan-figures cgan-{html.escape(key)}" '
        f'style="grid-template-columns: repeat({per_row}, minmax(0, 1fr)); '
        f'--fit-height: {max_height};">{"".join(items)}</div>'
    )


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG bytes, read from the header."""
    return struct.unpack(">II", data[16:24])


PANEL_GAP = "0.75rem"
CAPTION_HEIGHT = "1.85rem"  # a one-line figcaption: its 1.5rem line and 0.15rem margins


def row_layouts(count: int) -> list[tuple[int, int]]:
    """The (columns, rows) a fitted figure of `count` panels may take: up to four in one row
    or two rows, more in two rows or three."""
    fewest = 1 if count <= 4 else 2
    rows = [r for r in (fewest, fewest + 1) if r <= count]
    return [(math.ceil(count / r), r) for r in rows]


def panel_height(columns: int, rows: int, aspect: float, available: str) -> str:
    """The CSS height of a panel in a `columns` x `rows` layout: as large as the width of its
    container (100cqw) and the height `available` to the whole figure allow."""
    by_width = f"(100cqw - {columns - 1} * {PANEL_GAP}) / {columns * aspect:.4f}"
    by_height = f"({available} - {rows - 1} * {PANEL_GAP}) / {rows} - {CAPTION_HEIGHT}"
    return f"min(calc({by_width}), calc({by_height}))"


def show_panels(figures: list[tuple[bytes, str]], available: str, key: str = "panels") -> None:
    """PNG pictures of the same shape, each captioned above, in whichever layout (one row, or two
    rows of half as many, ...) makes them largest in the width of the page's column and the
    height `available` (a CSS length, e.g. "calc(100vh - 4rem)"): four square panels take one
    row on a wide, short screen and two rows of two on a 16:9 screen beside the controls.

    The choice is made in CSS, so it follows the window and the sidebar without a rerun: each
    layout's panel height is computed (container query units, cqw), the larger one is used, and
    the figure's width is capped to hold exactly that layout's number of panels per row."""
    aspect = max(w / h for w, h in (png_size(data) for data, _ in figures))
    layouts = row_layouts(len(figures))
    heights = [panel_height(c, r, aspect, available) for c, r in layouts]
    size = heights[0] if len(heights) == 1 else f"max({heights[0]}, {heights[1]})"

    def row_width(columns: int) -> str:
        return f"calc({columns} * var(--panel) * {aspect:.4f} + {columns - 1} * {PANEL_GAP} + 2px)"

    if len(layouts) == 1:
        width = row_width(layouts[0][0])
    else:  # the first layout's width when its panels are larger, else the second's
        larger_first = f"({heights[0]} - {heights[1]}) * 100000"
        width = (f"clamp({row_width(layouts[1][0])}, calc({row_width(layouts[1][0])} + "
                 f"{larger_first}), {row_width(layouts[0][0])})")
    items = []
    for data, caption in figures:
        text = html.escape(caption)
        items.append(f'<figure class="cgan-figure" data-testid="stImage">'
                     f'<figcaption data-testid="stImageCaption">{text}</figcaption>'
                     f'<img src="{_data_url(data)}" alt="{text}"></figure>')
    st.html(
        f'<div class="cgan-fit"><div class="cgan-panels cgan-{html.escape(key)}" '
        f'style="--panel: {size}; --aspect: {aspect:.4f}; max-width: {width}; gap: {PANEL_GAP};">'
        f'{"".join(items)}</div></div>'
    )


def show_image(image: np.ndarray, caption: str | None = None,
               max_height: str = "calc(100vh - 12rem)") -> None:
    """One grayscale or RGB array as a lossless PNG, sized to the space it has."""
    show_figures([(png_bytes(image), caption or "")], per_row=1, max_height=max_height)


def download_png(label: str, image: np.ndarray | Callable[[], np.ndarray], file_name: str,
                 key: str) -> None:
    """A download button for a PNG, encoded only when pressed (not on every rerun)."""
    def encode() -> bytes:
        return png_bytes(image() if callable(image) else image)

    st.download_button(label, in_page_language(encode), file_name=file_name, mime="image/png", key=key,
                       icon=":material/download:", on_click="ignore")


def evolution_gif(run: Run, grid_of: Callable[[Run, int], np.ndarray], epochs: list[int],
                  every: int = 1, scale: int = 1, frame_ms: int = 120) -> bytes:
    """The grids of every `every`-th epoch (and always the last), labelled "Epoch N" in the
    page's language, as one looping GIF (the last frame lingers)."""
    shown = [e for i, e in enumerate(epochs) if i % every == 0 or e == epochs[-1]]
    title = _("Epoch {epoch}")
    frames = []
    for epoch in shown:
        try:
            image = labelled_grid(grid_of(run, epoch), scale=scale,
                                  title=title.format(epoch=epoch), column_numbers=False)
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


@st.cache_data(show_spinner=False, max_entries=800)
def _grid_png(path: str, mtime_ns: int, size: int, _grid_image: np.ndarray, scale: int,
              highlight: int | None) -> bytes:
    # Keyed by the grid file's version (path, mtime_ns, size) and the drawing's options; the
    # pixels themselves are left out of the key on purpose (the file's version names them).
    return png_bytes(labelled_grid(_grid_image, scale=scale, highlight=highlight))


def grid_png(run: Run, epoch: int, highlight: int | None = None, scale: int = GRID_SCALE) -> bytes:
    """PNG bytes of the labelled grid of `epoch` (cached: playing the epochs re-encodes nothing)."""
    from app.loaders import file_key, grid

    image = grid(run, epoch)  # raises RunError with the page's wording
    return _grid_png(*file_key(run.grid_path(epoch)), image, scale, highlight)
