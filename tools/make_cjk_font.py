"""Build app/fonts/NotoSansCJKsc-subset.otf: the Simplified Chinese face of Noto Sans CJK cut
down to the characters the app draws into its PNGs and GIFs, and write its licence beside it.

    .venv/bin/python tools/make_cjk_font.py           # rebuild after the catalog changed
    .venv/bin/python tools/make_cjk_font.py --check   # exit 1 if the shipped font is out of date

The characters: every msgstr of the Chinese catalog (app/locale/zh_CN/LC_MESSAGES/messages.po)
and printable ASCII (run names, numbers). Run it again whenever the catalog gains characters;
tests/test_font.py fails while the shipped font lacks one.

Needs fontTools (a tool for the developer only, not for running the app; it is in
requirements-test.txt: `.venv/bin/pip install fonttools==4.62.1`) and Babel (requirements.txt).
The source font is Debian's fonts-noto-cjk (Noto Sans CJK 2.004, SIL Open Font License 1.1):
the installed /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc when present, else the
package is fetched with `apt-get download fonts-noto-cjk` (56 MB, not installed) into
~/.cache/cgan-fonts/ and unpacked there with dpkg-deb. `--source PATH` names another copy of
NotoSansCJK-Regular.ttc (or NotoSansCJKsc-Regular.otf).

The output is the same bytes for the same source and catalog (no time stamp is written), so
`--check` can compare.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "app" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
OUT = ROOT / "app" / "fonts" / "NotoSansCJKsc-subset.otf"
LICENCE = ROOT / "app" / "fonts" / "OFL.txt"
PACKAGE = "fonts-noto-cjk"
INSTALLED = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
IN_PACKAGE = "usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
COPYRIGHT_FILE = "usr/share/doc/fonts-noto-cjk/copyright"
CACHE = Path.home() / ".cache" / "cgan-fonts"
FAMILY = "Noto Sans CJK SC"  # the face of the collection to keep
ASCII = "".join(chr(code) for code in range(0x20, 0x7F))
# Name records kept: copyright, family, style, id, full name, version, PostScript name,
# trademark, licence and its address.
NAME_IDS = [0, 1, 2, 3, 4, 5, 6, 7, 13, 14]


class Problem(Exception):
    """Something the developer must do; printed as one line."""


def catalog_characters(path: Path = CATALOG) -> str:
    """Every character of every translation (msgstr, plural forms too) in the .po at `path`."""
    from babel.messages.pofile import read_po

    if not path.is_file():
        raise Problem(f"no catalog at {path}")
    with path.open("rb") as f:
        catalog = read_po(f)
    found: set[str] = set()
    for message in catalog:
        if not message.id:
            continue  # the header
        strings = message.string if isinstance(message.string, (tuple, list)) else [message.string]
        for text in strings:
            found.update(text or "")
    return "".join(sorted(found))


def wanted_characters(path: Path = CATALOG) -> str:
    """The characters the subset must draw: the catalog's and printable ASCII, sorted."""
    chars = set(catalog_characters(path)) | set(ASCII)
    return "".join(sorted(c for c in chars if c.isprintable() or c == " "))


def unpacked_package() -> Path:
    """The folder where Debian's fonts-noto-cjk is unpacked (fetched once into the cache)."""
    target = CACHE / PACKAGE
    if (target / IN_PACKAGE).is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{PACKAGE}_*.deb"):
        old.unlink()
    try:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=CACHE, check=True,
                       capture_output=True, text=True)
        (deb,) = CACHE.glob(f"{PACKAGE}_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True,
                       capture_output=True, text=True)
    except (OSError, ValueError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise Problem(f"could not fetch Debian's {PACKAGE} (apt-get download, dpkg-deb): "
                      f"{detail.strip().splitlines()[-1] if detail.strip() else error}; "
                      f"install it (apt-get install {PACKAGE}) or pass --source") from None
    return target


def source_font(given: Path | None) -> Path:
    if given is not None:
        if not given.is_file():
            raise Problem(f"--source {given}: no such file")
        return given
    if INSTALLED.is_file():
        return INSTALLED
    return unpacked_package() / IN_PACKAGE


def ofl_text() -> str:
    """The SIL Open Font License 1.1 as Debian's copyright file of fonts-noto-cjk gives it."""
    for copyright_file in (Path("/") / COPYRIGHT_FILE, CACHE / PACKAGE / COPYRIGHT_FILE):
        if copyright_file.is_file():
            break
    else:
        copyright_file = unpacked_package() / COPYRIGHT_FILE
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    start = lines.index("License: SIL-1.1", lines.index("License: SIL-1.1") + 1)
    body = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        body.append("" if line.strip() == "." else line[1:])
    return "\n".join(body).strip("\n") + "\n"


def open_face(path: Path):
    """The Simplified Chinese face of a Noto Sans CJK collection (.ttc), or a single font."""
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() in (".ttc", ".otc"):
        names = [face["name"].getDebugName(1) for face in TTCollection(str(path), lazy=True)]
        if FAMILY not in names:
            raise Problem(f"{path} has no face named {FAMILY!r} (it has {', '.join(names)})")
        return TTFont(str(path), fontNumber=names.index(FAMILY), recalcTimestamp=False)
    return TTFont(str(path), recalcTimestamp=False)


def subset_bytes(source: Path, characters: str) -> tuple[bytes, int]:
    """The subset font's bytes and its number of glyphs."""
    from fontTools import subset

    options = subset.Options()
    options.layout_features = ["kern"]  # horizontal text only: no vertical or locale variants
    options.drop_tables += ["vhea", "vmtx", "VORG", "BASE"]
    options.name_IDs = NAME_IDS
    options.name_languages = [0x409]
    options.recalc_timestamp = False
    options.notdef_outline = True  # a character the font lacks shows as a box, not as nothing
    font = open_face(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted({ord(c) for c in characters}))
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue(), font["maxp"].numGlyphs


def licence_text(source: Path, characters: str) -> str:
    from fontTools.ttLib import TTFont

    face = open_face(source) if source.suffix.lower() in (".ttc", ".otc") else TTFont(str(source))
    names = face["name"]
    return (
        f"{OUT.name}: a subset of {names.getDebugName(4)} (version "
        f"{names.getDebugName(5).split(';')[0].removeprefix('Version ')}, from Debian's "
        f"{PACKAGE}) holding only the {len(characters)} characters the app draws into its "
        f"images (horizontal text), made by tools/make_cjk_font.py. The outlines are "
        f"unchanged.\n\n"
        f"{names.getDebugName(0)}\n{names.getDebugName(7)}\n\n"
        "This Font Software is licensed under the SIL Open Font License, Version 1.1.\n\n"
        + ofl_text()
    )


def build(source: Path | None = None, catalog: Path = CATALOG) -> tuple[bytes, str, int, int]:
    """(font bytes, licence text, characters, glyphs) for the current catalog."""
    path = source_font(source)
    characters = wanted_characters(catalog)
    data, glyphs = subset_bytes(path, characters)
    return data, licence_text(path, characters), len(characters), glyphs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="NotoSansCJK-Regular.ttc to cut from")
    parser.add_argument("--check", action="store_true",
                        help="only compare with the shipped font and licence; exit 1 if stale")
    args = parser.parse_args(argv)
    try:
        import fontTools  # noqa: F401
    except ImportError:
        print("make_cjk_font: needs fontTools: .venv/bin/pip install fonttools==4.62.1",
              file=sys.stderr)
        return 2
    try:
        data, licence, characters, glyphs = build(args.source)
    except Problem as problem:
        print(f"make_cjk_font: {problem}", file=sys.stderr)
        return 2
    if args.check:
        stale = [p.name for p, new in ((OUT, data), (LICENCE, licence.encode()))
                 if not p.is_file() or p.read_bytes() != new]
        if stale:
            print(f"make_cjk_font: out of date: {', '.join(stale)} "
                  f"(run .venv/bin/python tools/make_cjk_font.py)", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date: {characters} characters, {glyphs} glyphs, "
              f"{len(data):,} bytes")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    LICENCE.write_text(licence, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {characters} characters, {glyphs} glyphs, "
          f"{len(data):,} bytes; and {LICENCE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
