"""Chinese in the pictures the app exports: the shipped font (a subset of Noto Sans CJK SC made by
tools/make_cjk_font.py) holds every character of the Chinese catalog, each draws as a real glyph
and not as the missing-glyph box, and the grid PNG, the evolution GIF and the Compare PNG
downloaded from a Chinese page carry their labels in Chinese, drawn in that font."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
FONT = ROOT / "app" / "fonts" / "NotoSansCJKsc-subset.otf"
LICENCE = ROOT / "app" / "fonts" / "OFL.txt"
CATALOG = ROOT / "app" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
SCRIPT = ROOT / "tools" / "make_cjk_font.py"
NOT_IN_ANY_FONT = "\ue000"  # a private-use character: every font draws its missing-glyph box
GAP = 24  # app.figures.labelled_panels' gap between panels
SOURCE_CHANCE = shutil.which("apt-get") or Path(
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").is_file()


def catalog() -> dict[str, str]:
    """msgid -> msgstr of the Chinese catalog (plural forms joined), translated entries only."""
    from babel.messages.pofile import read_po

    with CATALOG.open("rb") as f:
        po = read_po(f)
    found = {}
    for message in po:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, (tuple, list)) else message.id
        strings = message.string if isinstance(message.string, (tuple, list)) else [message.string]
        if any(strings):
            found[key] = "".join(s or "" for s in strings)
    return found


def zh(msgid: str) -> str:
    texts = catalog()
    assert msgid in texts, f"{msgid!r} has no Chinese translation in {CATALOG.relative_to(ROOT)}"
    return texts[msgid]


def catalog_characters() -> set[str]:
    return {c for text in catalog().values() for c in text if not c.isspace()}


def glyph(font, char: str) -> np.ndarray:
    """The pixels `font` draws for one character (its ink box)."""
    mask = font.getmask(char)
    return np.asarray(mask).reshape(mask.size[1], mask.size[0])


def ink(picture: np.ndarray, threshold: int = 160) -> np.ndarray:
    """The part of a grayscale picture that holds dark pixels (the drawn text)."""
    ys, xs = np.nonzero(picture < threshold)
    assert ys.size, "no text drawn here"
    return picture[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def drawn(text: str, font) -> np.ndarray:
    width = int(font.getlength(text)) + 40
    canvas = Image.new("L", (width, 2 * font.size), 255)
    ImageDraw.Draw(canvas).text((20, font.size), text, font=font, fill=0, anchor="lm")
    return ink(np.asarray(canvas))


def difference(band: np.ndarray, text: str, font_at) -> float:
    """How far the text in `band` (grayscale, white around it) is from `text` drawn by
    `font_at(size)` at the size that fits it best: mean absolute pixel difference (0-255)."""
    shown = ink(band)
    best = 255.0
    for size in range(8, 140):
        ours = drawn(text, font_at(size))
        if abs(ours.shape[0] - shown.shape[0]) <= 1 and abs(ours.shape[1] - shown.shape[1]) <= 2:
            h, w = min(ours.shape[0], shown.shape[0]), min(ours.shape[1], shown.shape[1])
            best = min(best, float(np.abs(ours[:h, :w].astype(int) - shown[:h, :w]).mean()))
    return best


def assert_chinese_label(band: np.ndarray, text: str) -> None:
    """`band` shows `text` drawn with the shipped font, every character a real glyph: the
    picture matches the text drawn with that font, not with Pillow's own font (which has no
    Chinese and draws a box for each character), and the font has each character."""
    assert any(ord(c) >= 0x2E80 for c in text), f"{text!r} is not Chinese"
    shipped = difference(band, text, lambda size: ImageFont.truetype(str(FONT), size))
    pillows = difference(band, text, lambda size: ImageFont.load_default(size=size))
    assert shipped < 8 < pillows, (text, shipped, pillows)
    font = ImageFont.truetype(str(FONT), 48)
    box = glyph(font, NOT_IN_ANY_FONT)
    boxes = [c for c in text if not c.isspace() and np.array_equal(glyph(font, c), box)]
    assert not boxes, f"drawn as the missing-glyph box: {boxes}"


# ---------------------------------------------------------------------------------------------
# The font


def test_the_shipped_font_is_a_small_subset_with_its_licence():
    from fontTools.ttLib import TTFont

    assert FONT.stat().st_size < 1_000_000, FONT.stat().st_size
    font = TTFont(str(FONT))
    assert font["name"].getDebugName(1) == "Noto Sans CJK SC"
    assert font["maxp"].numGlyphs < 5000  # a subset: the whole face has 65,535
    licence = LICENCE.read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence
    assert font["name"].getDebugName(0) in licence  # the font's own copyright line
    assert "5) The Font Software, modified or unmodified" in licence  # the whole text


def test_the_font_has_every_character_of_the_chinese_catalog_and_ascii():
    from fontTools.ttLib import TTFont

    mapped = {chr(code) for code in TTFont(str(FONT)).getBestCmap()}
    wanted = catalog_characters() | {chr(code) for code in range(0x21, 0x7F)}
    assert len(catalog_characters()) > 100  # the catalog has Chinese in it
    missing = "".join(sorted(wanted - mapped))
    assert not missing, (f"{FONT.name} lacks {missing!r}: run "
                         f".venv/bin/python tools/make_cjk_font.py")


def test_every_catalog_character_draws_a_glyph_not_the_missing_glyph_box():
    font = ImageFont.truetype(str(FONT), 40)
    box = glyph(font, NOT_IN_ANY_FONT)
    assert box.size and (box > 0).sum() > 50  # the box itself is visible
    boxes = "".join(sorted(c for c in catalog_characters()
                           if np.array_equal(glyph(font, c), box)))
    assert not boxes, f"drawn as the missing-glyph box: {boxes!r}"
    # Pillow's own font, used before, draws a box for a Chinese character: the check sees it.
    default = ImageFont.load_default(size=40)
    assert np.array_equal(glyph(default, "轮"), glyph(default, NOT_IN_ANY_FONT))


@pytest.mark.skipif(not SOURCE_CHANCE, reason="needs Debian's apt-get (or fonts-noto-cjk installed) "
                                               "to get the source font")
@pytest.mark.timeout(300)
def test_the_script_makes_the_shipped_font_again_byte_for_byte():
    pytest.importorskip("fontTools")
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 0, done.stderr
    assert "is up to date" in done.stdout


def test_the_script_says_in_one_line_what_is_wrong(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--source", str(tmp_path / "none.ttc")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"make_cjk_font: --source {tmp_path / 'none.ttc'}: no such file"


# ---------------------------------------------------------------------------------------------
# Pictures downloaded from a Chinese page


def chinese_app(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    at.query_params["lang"] = "zh"
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_grid_png_gif_and_compare_png_from_a_chinese_page_carry_chinese_labels(checkpoints,
                                                                              downloads):
    from app.figures import header_height

    at = chinese_app("evolution")
    at.slider(key="evolution_epoch").set_value(2).run()
    files = downloads(at)

    # The grid PNG: the run's grid enlarged 4x, its title below it.
    png = np.asarray(Image.open(io.BytesIO(files["evolution_png"][1])).convert("L"))
    title = png[header_height(4) + 4 * 280 :]
    assert_chinese_label(title, zh("{run}, epoch {epoch}").format(run="cgan-report", epoch=2))

    # The GIF: one frame per epoch, each titled with its epoch below the 280-pixel grid.
    gif = Image.open(io.BytesIO(files["evolution_gif"][1]))
    assert gif.n_frames == 4
    for k in range(gif.n_frames):
        gif.seek(k)
        frame = np.asarray(gif.convert("L"))
        assert_chinese_label(frame[280:], zh("Epoch {epoch}").format(epoch=k + 1))

    # The Compare PNG: four panels in a row, each under its label.
    at.switch_page("views/compare.py").run()
    at.multiselect(key="compare_epochs").set_value([1, 2, 3, 4]).run()
    figure = np.asarray(Image.open(io.BytesIO(downloads(at)["compare_png"][1])).convert("L"))
    width = (figure.shape[1] - 3 * GAP) // 4
    label_size = max(24, width // 12)  # as app.figures.labelled_panels draws it
    for k, epoch in enumerate([1, 2, 3, 4]):
        band = figure[: label_size + 10, k * (width + GAP) : k * (width + GAP) + width]
        assert_chinese_label(band, zh("Epoch {epoch}").format(epoch=epoch))
    assert not at.exception, [e.value for e in at.exception]
