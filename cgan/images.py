"""Grayscale digit images: tiling, nearest-neighbour enlarging, PNG bytes in and out.

Every picture the project makes is a 2-D uint8 array (0 = black ink background, 255 = white),
built here and encoded here; writing a file safely (atomically, inside a run) is cgan/runs.py's
job, so the encoders give bytes.

Tiling is numpy rather than torchvision.utils.make_grid: make_grid always pads the outer border
as well as the gaps, returns three channels for one-channel input, and wants float tensors, so
matching our exact layouts (no border, uint8, one channel) would cost a conversion each way and
a crop. The numpy canvas is one allocation and N slice copies.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

# The most pixels a PNG we write may hold. Pillow warns when it opens an image above
# Image.MAX_IMAGE_PIXELS (89,478,485) and refuses above twice that; we stay well under it so
# any PNG we write opens in Pillow, a browser or an image viewer without a fight.
MAX_PNG_PIXELS = 40_000_000


def grid_columns(n: int) -> int:
    """Columns for a near-square mosaic of n equal cells."""
    return max(1, math.ceil(math.sqrt(n)))


def tile(images: np.ndarray, columns: int, pad: int = 0, pad_value: int = 0) -> np.ndarray:
    """(N, h, w) uint8 -> one 2-D mosaic, `columns` cells per row, `pad` pixels between cells.

    No border around the outside; blank cells (pad_value) fill the last row.
    """
    n = len(images)
    rows = max(1, -(-n // columns))
    h, w = images.shape[1:3]
    canvas = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad), pad_value, dtype=np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = image
    return canvas


def mosaic_shape(n: int, columns: int, cell: tuple[int, int] = (28, 28), pad: int = 0,
                 scale: int = 1) -> tuple[int, int]:
    """(height, width) in pixels of tile(...) of n cells, enlarged `scale` times, without building it."""
    rows = max(1, -(-n // columns))
    return (rows * (cell[0] + pad) - pad) * scale, (columns * (cell[1] + pad) - pad) * scale


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge a 2-D image `factor` times with nearest neighbour, so digits stay crisp pixel art."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def png_bytes(image: np.ndarray, optimize: bool = False) -> bytes:
    """A 2-D uint8 array as 8-bit grayscale PNG bytes (optimize: smaller file, slower encode)."""
    from PIL import Image

    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode="L").save(buffer, format="PNG", optimize=optimize)
    return buffer.getvalue()


def read_gray_png(source: Path | bytes) -> np.ndarray:
    """A PNG file (or its bytes) as a 2-D uint8 array, colour converted to grayscale.

    Raises FileNotFoundError when the file is missing and ValueError (one line) when it is not a
    readable image; callers word the message for their context.
    """
    from PIL import Image, UnidentifiedImageError

    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with Image.open(stream) as image:
            return np.asarray(image.convert("L"))
    except FileNotFoundError:
        raise
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"unreadable image: {reason}") from None
