"""Draw a digit: a canvas drawing (RGBA) made into the centred 28x28 MNIST digit the networks see."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cgan import verdict
from cgan.classifier import classify
from cgan.data import mnist_in_memory


def drawing(strokes, width: int = verdict.STROKE_WIDTH, transparent: bool = False) -> np.ndarray:
    """White polylines on a black (or transparent) 280x280 canvas, as the canvas returns it."""
    canvas = Image.new("RGBA", (verdict.CANVAS, verdict.CANVAS), (0, 0, 0, 0 if transparent else 255))
    pen = ImageDraw.Draw(canvas)
    for points in strokes:
        pen.line(points, fill=(255, 255, 255, 255), width=width, joint="curve")
    return np.asarray(canvas)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(image.shape) + 0.5
    mass = image.astype(np.float64).sum()
    return (rows * image).sum() / mass, (columns * image).sum() / mass


def test_a_vertical_bar_is_read_as_a_one():
    digit = verdict.digit_from_drawing(drawing([[(140, 40), (140, 240)]]))
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    rows = np.flatnonzero(digit.any(axis=1))
    assert len(rows) == verdict.DIGIT_BOX  # the taller side fills the 20-pixel box
    reading = classify(digit[None])
    assert reading.predictions[0] == 1 and reading.confidence[0] > 0.9


@pytest.mark.parametrize("expected, strokes", [
    (7, [[(70, 50), (210, 50), (120, 240)]]),
    (4, [[(170, 240), (170, 40), (70, 170), (210, 170)]]),
    (2, [[(80, 80), (110, 50), (170, 50), (200, 90), (80, 230), (210, 230)]]),
])
def test_drawn_digits_are_read_as_drawn(expected, strokes):
    assert classify(verdict.digit_from_drawing(drawing(strokes))[None]).predictions[0] == expected


def test_centring_moves_an_off_centre_blob_to_the_middle():
    rgba = drawing([[(20, 20), (60, 20)], [(20, 40), (60, 40)]])  # in the top-left corner
    digit = verdict.digit_from_drawing(rgba)
    y, x = centre_of_mass(digit)
    assert abs(y - 14) <= 0.5 and abs(x - 14) <= 0.5
    # The same strokes drawn in the opposite corner give the same 28x28.
    moved = drawing([[(200, 220), (240, 220)], [(200, 240), (240, 240)]])
    np.testing.assert_array_equal(verdict.digit_from_drawing(moved), digit)


def test_scaling_averages_areas_and_keeps_the_aspect_ratio():
    rgba = drawing([[(100, 140), (180, 140)]], width=20)  # a dash 80+ px wide, 20 px tall
    digit = verdict.digit_from_drawing(rgba)
    columns, rows = np.flatnonzero(digit.any(axis=0)), np.flatnonzero(digit.any(axis=1))
    assert len(columns) == verdict.DIGIT_BOX and 3 <= len(rows) <= 6  # about 20 * 20/100 tall
    assert len(np.unique(digit[digit > 0])) > 1  # grey edges from area averaging, not a hard mask


def test_stroke_width_gives_mnist_thickness():
    # A 0, a 7 and a 1 about 200 px tall: the share of bright pixels is within 25 % of MNIST's.
    strokes = [[(140, 40), (140, 240)], [(70, 50), (210, 50), (120, 240)]]
    digits = [verdict.digit_from_drawing(drawing([s])) for s in strokes]
    ring = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(ring).ellipse((80, 40, 200, 240), outline=(255, 255, 255, 255), width=verdict.STROKE_WIDTH)
    digits.append(verdict.digit_from_drawing(np.asarray(ring)))
    drawn = np.mean([(d > 127).mean() for d in digits])
    mnist = (mnist_in_memory().test_images[:2000] > 127).mean()
    assert abs(drawn - mnist) / mnist < 0.25, (drawn, mnist)


def test_transparent_canvas_counts_as_black():
    strokes = [[(140, 40), (140, 240)]]
    np.testing.assert_array_equal(
        verdict.digit_from_drawing(drawing(strokes, transparent=True)), verdict.digit_from_drawing(drawing(strokes))
    )


def test_an_empty_canvas_is_nothing_drawn():
    assert verdict.digit_from_drawing(drawing([])) is None
    faint = np.zeros((280, 280, 4), np.uint8)
    faint[..., :3], faint[..., 3] = 10, 255  # below the ink threshold everywhere
    assert verdict.digit_from_drawing(faint) is None


def test_not_an_rgba_image_is_one_clear_error():
    with pytest.raises(ValueError, match="RGBA"):
        verdict.digit_from_drawing(np.zeros((280, 280), np.uint8))
