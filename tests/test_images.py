"""cgan.images: tiling, nearest-neighbour enlarging, PNG bytes in and out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cgan.files import write_bytes_atomic
from cgan.images import MAX_PNG_PIXELS, grid_columns, mosaic_shape, png_bytes, read_gray_png, tile, upscale


def digits(n: int) -> np.ndarray:
    """n distinct 28x28 cells: cell k is filled with the value k + 1 (0 stays the gap colour)."""
    return (np.arange(1, n + 1, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8))


def test_tile_places_cells_row_major_with_gaps_and_no_border():
    mosaic = tile(digits(7), columns=3, pad=2, pad_value=255)
    assert mosaic.shape == (3 * 30 - 2, 3 * 30 - 2) == mosaic_shape(7, 3, pad=2)
    for k in range(7):
        r, c = divmod(k, 3)
        assert (mosaic[r * 30 : r * 30 + 28, c * 30 : c * 30 + 28] == k + 1).all()
    assert (mosaic[28:30, :] == 255).all() and (mosaic[:, 28:30] == 255).all()  # the gaps
    assert (mosaic[60:, 30:] == 255).all()  # the blank cells after the seventh


def test_tile_of_a_run_grid_is_the_row_major_reshape():
    images = np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    expected = images.reshape(10, 10, 28, 28).transpose(0, 2, 1, 3).reshape(280, 280)
    assert np.array_equal(tile(images, columns=10), expected)


def test_grid_columns_is_near_square():
    assert [grid_columns(n) for n in (0, 1, 2, 4, 5, 100, 101, 1_000_000)] == [1, 1, 2, 2, 3, 10, 11, 1000]


def test_upscale_is_nearest_neighbour():
    image = np.array([[0, 255], [7, 9]], np.uint8)
    big = upscale(image, 3)
    assert big.shape == (6, 6) and np.array_equal(big[::3, ::3], image)
    assert (big[3:6, 0:3] == 7).all()
    assert upscale(image, 1) is image
    assert mosaic_shape(7, 3, pad=2, scale=4) == upscale(tile(digits(7), 3, pad=2), 4).shape


def test_png_round_trip_is_lossless_grayscale(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (31, 45), dtype=np.uint8)
    data = png_bytes(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(read_gray_png(data), image)
    smaller = png_bytes(image, optimize=True)
    assert np.array_equal(read_gray_png(smaller), image)
    path = tmp_path / "x.png"
    write_bytes_atomic(path, png_bytes(upscale(image, 2)))  # how cgan.sample writes a mosaic
    with Image.open(path) as opened:
        assert opened.mode == "L" and opened.size == (90, 62)
    assert np.array_equal(read_gray_png(path), upscale(image, 2))


def test_png_bytes_refuses_anything_but_2d_uint8():
    with pytest.raises(ValueError, match="2-D uint8"):
        png_bytes(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="2-D uint8"):
        png_bytes(np.zeros((28, 28), np.float32))


def test_read_gray_png_converts_colour_and_names_damage(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (4, 3), (255, 255, 255)).save(rgb)
    assert read_gray_png(rgb).shape == (3, 4) and (read_gray_png(rgb) == 255).all()
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png at all")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png_bytes(np.zeros((50, 50), np.uint8))[:40])
    for bad in (junk, truncated, tmp_path):  # random bytes, a cut file, a directory
        with pytest.raises(ValueError, match="unreadable image") as info:
            read_gray_png(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError):
        read_gray_png(tmp_path / "missing.png")


def test_the_png_cap_stays_under_pillows_decompression_warning():
    assert MAX_PNG_PIXELS < Image.MAX_IMAGE_PIXELS
