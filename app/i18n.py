"""The app's words in the reader's language: English (the source) or Simplified Chinese.

Every string a page shows goes through the message catalog::

    from app.i18n import _, N_, formatter, ngettext

    st.header(_("Loss curves"))
    st.caption(_("Epoch {epoch} of {total}").format(epoch=5, total=200))  # format after lookup
    CHOICES = {"grid": N_("Whole grid")}    # marked at import time, looked up where shown:
    st.radio(_("Show"), list(CHOICES), format_func=formatter(CHOICES))  # values stay the keys
    ngettext("{n} epoch", "{n} epochs", n).format(n=n)

``_()`` reads the session's language on every call (many students share one server, each in
their own language). The language is, in order: the sidebar's choice (``language_selector()``,
drawn by app/main.py on every page), ``?lang=zh`` / ``?lang=en`` in the address, the browser's
language (``st.context.locale``, else the Accept-Language header), else English. Outside a
Streamlit run (the command line, the library) it is English.

Catalogs: app/locale/<locale>/LC_MESSAGES/messages.po, read with Babel at run time (no compiled
.mo files in the repository) and cached until the file changes. app/locale/messages.pot is the
template extracted from the source. After wrapping new strings::

    python -m app.i18n update     # pybabel extract (babel.cfg) + update: new msgids appear empty
    python -m app.i18n check      # lists msgids without a translation

An entry without a translation (or marked fuzzy) falls back to the English text.
"""

from __future__ import annotations

import contextlib
import gettext
import os
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

LANGUAGES = {"en": "English", "zh": "简体中文"}  # code -> its own name (never translated)
DEFAULT = "en"
LOCALES = {"zh": "zh_CN"}  # language code -> catalog folder under app/locale/
KEY = "lang"  # the address parameter, and session state's language (kept while pages change)
WIDGET = "lang_choice"  # the sidebar's control
IN_ADDRESS = "lang_in_address"  # session state: keep ?lang= in the address (it was given or chosen)

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


class Catalog:
    """A .po file's translations: msgid -> text, (singular, plural) -> texts, the plural rule."""

    def __init__(self, path: Path):
        from babel.messages.pofile import read_po

        with path.open("rb") as f:
            po = read_po(f, locale=path.parent.parent.name)
        self.singular: dict[str, str] = {}
        self.plural: dict[tuple[str, str], tuple[str, ...]] = {}
        for message in po:
            if not message.id or message.fuzzy:
                continue
            if isinstance(message.id, tuple):
                texts = tuple(message.string)
                if all(texts):
                    self.plural[message.id[0], message.id[1]] = texts
            elif message.string:
                self.singular[message.id] = message.string
        self.plural_index = gettext.c2py(po.plural_expr)


_catalogs: dict[str, tuple[float, Catalog]] = {}


def catalog(lang: str) -> Catalog | None:
    """The catalog of `lang` (None for English, the source), re-read when its file changes."""
    if lang not in LOCALES:
        return None
    path = catalog_path(lang)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    cached = _catalogs.get(lang)
    if cached is None or cached[0] != mtime:
        cached = _catalogs[lang] = (mtime, Catalog(path))
    return cached[1]


# ---------------------------------------------------------------------------------------------
# The session's language


def _in_script_run() -> bool:
    if "streamlit" not in sys.modules:
        return False
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    return get_script_run_ctx(suppress_warning=True) is not None


def _code(tag: object) -> str | None:
    """A language code of ours for a tag like "zh-CN", "zh_Hans", "en-US" (None: not ours)."""
    if not isinstance(tag, str):
        return None
    base = tag.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def browser_language() -> str | None:
    """The browser's language where Streamlit exposes it: navigator.language
    (``st.context.locale``), else the first of ours in the Accept-Language header."""
    import streamlit as st

    try:
        found = _code(st.context.locale)
    except Exception:  # an older client that does not send it
        found = None
    if found is not None:
        return found
    try:
        header = st.context.headers.get("Accept-Language") or ""
    except Exception:  # no request (AppTest)
        header = ""
    for part in header.split(","):
        found = _code(part.split(";")[0])
        if found is not None:
            return found
    return None


_using: ContextVar[str | None] = ContextVar("cgan_language", default=None)


@contextlib.contextmanager
def using(lang: str) -> Iterator[None]:
    """Translate into `lang` inside the block, wherever it runs: work a page hands on to run
    later, outside its run (a download's data made when the button is pressed)."""
    token = _using.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _using.reset(token)


def language() -> str:
    """The session's language code ("en" or "zh"); inside ``using(lang)``, `lang`; English
    outside a Streamlit run."""
    forced = _using.get()
    if forced is not None:
        return forced
    if not _in_script_run():
        return DEFAULT
    import streamlit as st

    chosen = st.session_state.get(KEY)
    if chosen in LANGUAGES:
        return chosen
    asked = _code(st.query_params.get(KEY))
    if asked is not None:
        st.session_state[IN_ADDRESS] = True
    lang = asked or browser_language() or DEFAULT
    st.session_state[KEY] = lang
    return lang


def translate(message: str, lang: str) -> str:
    """`message` in language `lang`."""
    found = catalog(lang) if lang != DEFAULT else None
    if found is None:
        return message
    return found.singular.get(message, message)


def gettext_(message: str) -> str:
    """`message` in the session's language."""
    return translate(message, language())


def formatter(labels: dict | None = None) -> Callable[[object], str]:
    """A widget's format_func: each option's label (``labels[option]``, marked with N_, or the
    option itself) in the session's language. The language is fixed when it is made, since
    Streamlit may call it outside the script's run (AppTest does)."""
    lang = language()

    def format_option(option: object) -> str:
        return translate(str(labels[option] if labels is not None else option), lang)

    return format_option


def ngettext(singular: str, plural: str, n: int) -> str:
    """`singular` or `plural` by `n`, in the session's language; format with n after lookup."""
    lang = language()
    found = catalog(lang) if lang != DEFAULT else None
    texts = found.plural.get((singular, plural)) if found is not None else None
    if texts is None:
        return singular if n == 1 else plural
    index = found.plural_index(n)
    return texts[index] if index < len(texts) else texts[-1]


def N_(message: str) -> str:
    """Mark a string for the catalog where it is defined (import time); translate it with _()
    where it is shown."""
    return message


def said(message: object, value: Callable[[object], str] = str) -> str:
    """A message from the library in the session's language. A cgan.messages.Problem (a str with
    the `template` and `values` it was made from) is its translated template filled with its
    values, each said the same way (a value that is a Problem is translated too; any other goes
    through `value`, e.g. app.text.plain); a cgan.jobs.JobProblem (`label` and `problem`) is
    "{label}: {problem}." with both translated; an error that carries either as its `problem`
    (cgan.jobs.JobError) is said as that; anything else is `value(message)`, as it is."""
    template, values = getattr(message, "template", None), getattr(message, "values", None)
    if isinstance(template, str) and isinstance(values, dict):
        return gettext_(template).format(**{key: said(found, value) for key, found in values.items()})
    problem = getattr(message, "problem", None)
    if problem is not None and hasattr(message, "label"):
        if not message.label:
            return said(problem, value)
        from cgan.jobs.request import SENTENCE

        return gettext_(SENTENCE).format(label=gettext_(message.label), problem=said(problem, value))
    if isinstance(message, BaseException) and problem is not None:
        return said(problem, value)
    return value(message)


_ = gettext_


# ---------------------------------------------------------------------------------------------
# The sidebar's choice


def _chosen() -> None:
    import streamlit as st

    lang = st.session_state.get(WIDGET)
    if lang in LANGUAGES:
        st.session_state[KEY] = lang
        st.session_state[IN_ADDRESS] = True
        st.query_params[KEY] = lang


def language_selector() -> None:
    """English / 简体中文 in the sidebar; the choice goes into the address (?lang=) once made or
    given there, so a page reload or a shared link keeps it. Page, run, epoch, digit and seed stay:
    they live in session state and the address, and widgets keep their keys."""
    import streamlit as st

    lang = language()
    if st.session_state.get(WIDGET) != lang:
        st.session_state[WIDGET] = lang
    st.segmented_control(_("Language"), list(LANGUAGES), format_func=LANGUAGES.get, key=WIDGET,
                         required=True, on_change=_chosen, width="content")
    if st.session_state.get(IN_ADDRESS) and st.query_params.get(KEY) != lang:
        st.query_params[KEY] = lang  # page switches clear the address's parameters


# ---------------------------------------------------------------------------------------------
# Catalog upkeep: python -m app.i18n update | check

BABEL_CFG = ROOT / "babel.cfg"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = ("_", "N_", "ngettext:1,2")


def extract_config(fileobj, keywords, comment_tags, options):
    """Babel extractor for cgan/config.py (babel.cfg): its marked messages, plus the help text of
    each training option, ``option(default, N_("Label"), "help", ...)``: the Train page shows it,
    the command line's --help keeps it English."""
    import ast
    import io

    from babel.messages.extract import extract_python

    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, options)
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "option"
                and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant)
                and isinstance(node.args[2].value, str)):
            yield node.args[2].lineno, "N_", node.args[2].value, []


def _pybabel(*args: str) -> None:
    from babel.messages.frontend import main as pybabel

    saved = sys.argv
    sys.argv = ["pybabel", *args]
    try:
        pybabel()
    finally:
        sys.argv = saved


def update() -> None:
    """Extract the msgids from the source into messages.pot and merge them into every .po:
    new ones appear untranslated, translations are kept, msgids gone from the source are kept
    as obsolete (#~) entries, never dropped."""
    os.chdir(ROOT)
    keywords = [arg for kw in KEYWORDS for arg in ("-k", kw)]
    _pybabel("extract", "-F", str(BABEL_CFG.relative_to(ROOT)), "--no-default-keywords",
             *keywords, "--sort-by-file", "--add-comments=TRANSLATORS:", "--project", "cgan-mnist",
             "--no-wrap",
             "-o", str(TEMPLATE.relative_to(ROOT)), ".")
    for lang, locale in LOCALES.items():
        _pybabel("update", "-i", str(TEMPLATE.relative_to(ROOT)), "-d",
                 str(LOCALE_DIR.relative_to(ROOT)), "-l", locale, "--no-fuzzy-matching",
                 "--no-wrap")
        revive(catalog_path(lang))


def revive(path: Path) -> None:
    """Give an untranslated msgid the translation its obsolete (#~) entry kept, when a message
    comes back to the source (or was translated before it was marked), and drop that #~ entry."""
    from babel.messages.pofile import read_po, write_po

    with path.open("rb") as f:
        po = read_po(f, locale=path.parent.parent.name)
    revived = 0
    for msgid, old in list(po.obsolete.items()):
        current = po.get(msgid)
        if current is not None and not current.string and old.string:
            current.string = old.string
            del po.obsolete[msgid]
            revived += 1
    if revived:
        with path.open("wb") as f:
            write_po(f, po, width=0)


def missing(lang: str) -> list[str]:
    """msgids of the template without a translation in `lang`'s catalog."""
    from babel.messages.pofile import read_po

    with TEMPLATE.open("rb") as f:
        template = read_po(f)
    found = catalog(lang)
    out = []
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            if found is None or tuple(message.id[:2]) not in found.plural:
                out.append(message.id[0])
        elif found is None or message.id not in found.singular:
            out.append(message.id)
    return out


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "update":
        update()
    elif command == "check":
        gaps = {lang: missing(lang) for lang in LOCALES}
        for lang, ids in gaps.items():
            for msgid in ids:
                print(f"{lang}: {msgid}")
        sys.exit(1 if any(gaps.values()) else 0)
    else:
        print("usage: python -m app.i18n update | check", file=sys.stderr)
        sys.exit(2)
