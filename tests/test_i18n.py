"""The app in Simplified Chinese and English: the catalog holds a translation of every message
the source marks, and a page opened in Chinese shows no English word beyond names (CGAN, MNIST,
D, G, PNG, run names, numbers, commands); switching language keeps page, run, epoch, digit and
seed; the browser's language picks the default.

The pages run headless (AppTest) on small runs the library trains; every string a page sends
(markdown, captions, labels, help, options, metrics, tabs, figure captions, chart titles, axes,
legends, annotations and hover texts) is read from the page's messages.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from google.protobuf.message import Message

from app import i18n
from cgan import metrics
from cgan.runs import Run
from tests.conftest import ROOT

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = str(ROOT / "app" / "main.py")
TIMEOUT = 120
PAGES = ("evolution", "generate", "compare", "losses", "quality", "real_vs", "interpolate",
         "discriminator", "train")

# Latin words a Chinese page may show: names (of models, data, files, hardware, the language
# choice), the report's letters for the networks and the condition, math and units.
ALLOWED = {
    "CGAN", "cDCGAN", "GAN", "MNIST", "D", "G", "PNG", "GIF", "LeNet", "Adam", "NaN", "CPU", "GPU",
    "CUDA", "MPS", "English", "Streamlit",
    "y", "z", "t", "i", "x", "log", "s", "K", "N", "A", "B",
}


# ---------------------------------------------------------------------------------------------
# The catalog


def extracted() -> dict[object, set[str]]:
    """msgid (or (singular, plural)) -> the files that mark it, read as `python -m app.i18n
    update` reads them (babel.cfg, the same keywords)."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "N_": None, "ngettext": (1, 2)}
    found: dict[object, set[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        key = tuple(message) if isinstance(message, (tuple, list)) else message
        found.setdefault(key, set()).add(filename)
    return found


def placeholders(text: str) -> set[str]:
    """The str.format fields of `text` and Plotly's %{...} fields."""
    fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    return fields | set(re.findall(r"%\{[^}]*\}", text))


@pytest.fixture(scope="module")
def zh_catalog():
    with open(i18n.catalog_path("zh"), "rb") as f:
        return read_po(f)


def test_every_marked_message_has_a_chinese_translation_with_the_same_placeholders(zh_catalog):
    marked = extracted()
    assert len(marked) > 200  # the pages' words, not an empty extraction
    missing, mismatched = [], []
    for key, files in marked.items():
        entry = zh_catalog.get(key[0] if isinstance(key, tuple) else key)
        if entry is None or entry.fuzzy or not entry.string or (
                isinstance(entry.string, tuple) and not all(entry.string)):
            missing.append(f"{sorted(files)[0]}: {key!r}")
            continue
        sources = key if isinstance(key, tuple) else (key,)
        targets = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = set().union(*(placeholders(s) for s in sources))
        for target in targets:
            if placeholders(target) != wanted:
                mismatched.append(f"{key!r}: {sorted(wanted)} vs {sorted(placeholders(target))}")
    assert not missing, f"{len(missing)} messages without a Chinese translation:\n" + "\n".join(missing)
    assert not mismatched, "placeholders differ:\n" + "\n".join(mismatched)


def test_the_runtime_lookup_reads_the_po_file(zh_catalog):
    catalog = i18n.catalog("zh")
    assert catalog.singular["Epoch {epoch}"] == "第 {epoch} 轮"
    assert i18n.translate("Epoch {epoch}", "zh").format(epoch=75) == "第 75 轮"
    assert i18n.translate("Epoch {epoch}", "en") == "Epoch {epoch}"
    assert i18n.translate("a message nobody marked", "zh") == "a message nobody marked"
    assert i18n.catalog("en") is None
    # Outside a Streamlit run (the command line, the library): English.
    assert i18n.language() == "en" and i18n._("Epoch {epoch}") == "Epoch {epoch}"
    # Work a page hands on (a download made when its button is pressed) keeps the page's language.
    with i18n.using("zh"):
        assert i18n.language() == "zh" and i18n._("Epoch {epoch}") == "第 {epoch} 轮"
        assert i18n.ngettext("Evaluate now ({count} epoch)", "Evaluate now ({count} epochs)",
                             2) == "立即评估（{count} 轮）"
    assert i18n.language() == "en"
    translated = sum(1 for m in zh_catalog if m.id and not m.fuzzy and all(
        m.string if isinstance(m.string, tuple) else [m.string]))
    assert len(catalog.singular) + len(catalog.plural) == translated


# ---------------------------------------------------------------------------------------------
# What a page shows


SKIPPED_FIELDS = {
    "id", "form_id", "key", "icon", "type", "deferred_file_id", "url", "src", "mime", "file_name",
    "raw_values", "default", "value", "set_value", "format", "label_visibility", "element_type",
    "width_config", "height_config", "flex_container", "gap_config", "style", "spec", "body",
    "unsafe_allow_javascript", "wrap", "tag", "anchor", "options", "language",
}


def _strings(proto: Message) -> list[str]:
    """Every text field of a message, its sub-messages and repeated fields (not ids, values)."""
    found = []
    for field, value in proto.ListFields():
        if field.name in SKIPPED_FIELDS:
            continue
        repeated = not isinstance(value, (str, bytes, Message)) and hasattr(value, "__iter__")
        values = list(value) if repeated else [value]
        for item in values:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, Message):
                found += _strings(item)
    return found


def _options(proto: Message) -> list[str]:
    options = getattr(proto, "options", None)
    if options is None:
        return []
    return [o if isinstance(o, str) else getattr(o, "content", "") for o in options]


def _html_text(body: str) -> str:
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return html.unescape(body)


def _chart_texts(spec: str) -> list[str]:
    """Titles, axis titles, legend names, annotations and hover texts of a Plotly figure."""
    figure = json.loads(spec)
    layout, texts = figure.get("layout", {}), []

    def title(part) -> None:
        if isinstance(part, dict):
            title_part = part.get("title")
            if isinstance(title_part, dict):
                texts.append(str(title_part.get("text") or ""))
                texts.append(str((title_part.get("subtitle") or {}).get("text") or ""))
            elif isinstance(title_part, str):
                texts.append(title_part)

    title(layout)
    for name, part in layout.items():
        if name.startswith(("xaxis", "yaxis")):
            title(part)
            texts += [str(t) for t in part.get("ticktext") or []]
    texts += [str(a.get("text") or "") for a in layout.get("annotations") or []]
    for trace in figure.get("data", []):
        texts.append(str(trace.get("name") or ""))
        texts.append(str(trace.get("hovertemplate") or ""))
        text = trace.get("text")
        texts += [str(t) for t in text] if isinstance(text, list) else [str(text or "")]
    return [t for t in texts if t]


def shown_texts(at: AppTest) -> list[str]:
    """Every text the page sends to the browser."""
    texts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", "")
        if isinstance(proto, Message) and kind not in ("bidi_component", "component_instance"):
            # (A component's own arguments are code, not text: the drawing canvas.)
            if kind == "plotly_chart":
                texts.extend(_chart_texts(proto.spec))
            elif kind == "html":
                texts.append(_html_text(proto.body))
            else:
                if isinstance(getattr(proto, "body", None), str):
                    texts.append(proto.body)
                texts.extend(_strings(proto) + _options(proto))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    return [t for t in texts if t.strip()]


def english_words(text: str, names: set[str]) -> list[str]:
    """The Latin words of `text` that are not names, code, commands or units."""
    text = re.sub(r"`[^`]*`", " ", text)  # commands, paths, flags in code
    text = re.sub(r":material/[a-z_]+:", " ", text)  # icons
    text = re.sub(r":[a-z]+(-[a-z]+)?\[", " ", text)  # Streamlit's :green-badge[...] directives
    text = re.sub(r"https?://\S+|\?\w+=\w+", " ", text)  # links, address parameters
    text = re.sub(r"%\{[^}]*\}|<extra>.*?</extra>", " ", text)  # Plotly's hover fields
    text = re.sub(r"(?<![\w.-])--?[a-z][\w-]*", " ", text)  # flags
    text = re.sub(r"\b[\w.-]+\.(py|jsonl|json|pt|png|gif|npz)\b", " ", text)  # file names
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    words = re.findall(r"[A-Za-z]+", text)
    return [w for w in words if w not in ALLOWED and not re.fullmatch(r"\d*x", w)]


# ---------------------------------------------------------------------------------------------
# Runs and walks


@pytest.fixture(scope="module")
def zh_root(tmp_path_factory, judged_run, judged_cdcgan) -> Path:
    """cgan-report (3 epochs, D's weights, quality measured at 2 and 3) and cdcgan-report."""
    folder = tmp_path_factory.mktemp("i18n")
    run = Run(shutil.copytree(judged_run.path, folder / "cgan-report"))
    metrics.evaluate_run(run, [2, 3], per_digit=20, log=lambda line: None)
    shutil.copytree(judged_cdcgan.path, folder / "cdcgan-report")
    return folder


@pytest.fixture
def runs_folder(zh_root, monkeypatch) -> Path:
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(zh_root))
    return zh_root


def opened(page: str, lang: str | None = "zh", locale: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    if lang:
        at.query_params["lang"] = lang
    if locale:
        at.context = {"locale": locale}
    at.run()
    if page != "evolution":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def views_of(page: str, at: AppTest):
    """The page as first opened, then in each of its other modes or tabs."""
    yield "opened"
    changes = {
        "compare": [("compare_mode", "One digit")],
        "interpolate": [("interpolate_mode", "Digit")],
        "discriminator": [("discriminator_source", "A real digit")],
        "quality": [("quality_tab", "哪些数字最难？"), ("quality_tab", "它在照抄吗？")],
    }
    for key, value in changes.get(page, []):
        at.session_state[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        yield f"{key}={value}"


@pytest.mark.parametrize("page", PAGES)
def test_a_page_in_chinese_shows_no_english_beyond_names(runs_folder, page):
    at = opened(page)
    names = {p.name for p in runs_folder.iterdir()}
    left = []
    for view in views_of(page, at):
        texts = shown_texts(at)
        assert sum(bool(re.search(r"[\u4e00-\u9fff]", t)) for t in texts) >= 5, (view, texts)
        for text in texts:
            words = english_words(text, names)
            if words:
                left.append(f"{view}: {text[:120]!r} -> {words}")
    assert not left, f"English left on the {page} page in Chinese:\n" + "\n".join(dict.fromkeys(left))


# ---------------------------------------------------------------------------------------------
# Switching language keeps the state; the default


# Per page: widgets set to something else than their defaults before the language changes.
CHANGED = {"evolution": {"evolution_epoch": 2},
           "generate": {"generate_epoch": 2, "generate_count": 6},
           "compare": {"compare_epochs": [1, 3]},
           "losses": {"losses_smooth": 3},
           "real_vs": {},
           "interpolate": {"interpolate_epoch": 2, "interpolate_seed_b": 77},
           "discriminator": {"discriminator_epoch": 2},
           "quality": {"quality_tab": "Which digits are hardest?"},
           "train": {}}
SHARED = {"generate": ("generate_digit", "generate_seed"), "real_vs": ("real_vs_digit", "real_vs_seed"),
          "interpolate": ("interpolate_digit",), "discriminator": ("discriminator_digit", "discriminator_seed")}


def language_control(at: AppTest):
    return next(w for w in at.sidebar.get("button_group") if w.proto.label in ("Language", "语言"))


@pytest.mark.parametrize("page", PAGES)
def test_switching_language_keeps_page_run_epoch_digit_and_seed(runs_folder, page):
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.session_state["digit"], at.session_state["seed"] = 3, 1234  # as an earlier page left them
    at.run()
    at.switch_page(f"views/{page}.py").run()
    for key, value in CHANGED[page].items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    kept = {key: at.session_state[key] for key in CHANGED[page] if key != "quality_tab"}
    kept |= {key: at.session_state[key] for key in SHARED.get(page, ())}
    assert all(at.session_state[key] in (3, 1234) for key in SHARED.get(page, ()))
    run, title = at.query_params.get("run"), at.title[0].value

    for lang, word in (("zh", "语言"), ("en", "Language"), ("zh", "语言")):
        language_control(at).set_value(lang).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state["lang"] == lang and at.query_params.get("lang") == lang
        assert language_control(at).proto.label == word
        assert at.title[0].value == i18n.translate(title, lang)  # the same page
        assert at.query_params.get("run") == run and run
        assert {key: at.session_state[key] for key in kept} == kept, (page, lang)
        assert (at.session_state["digit"], at.session_state["seed"]) == (3, 1234)
        if page == "quality":  # the tab stays open, under its name in the new language
            assert at.session_state["quality_tab"] == (
                "哪些数字最难？" if lang == "zh" else "Which digits are hardest?")


def test_english_is_the_default_without_a_browser_language(runs_folder):
    at = opened("evolution", lang=None)
    assert at.session_state["lang"] == "en" and "lang" not in at.query_params
    assert at.title[0].value == "Training evolution"
    assert language_control(at).proto.label == "Language"


def test_a_chinese_browser_opens_in_chinese_and_the_address_wins(runs_folder):
    at = opened("evolution", lang=None, locale="zh-CN")
    assert at.session_state["lang"] == "zh" and at.title[0].value == "训练过程演变"
    at = opened("evolution", lang=None, locale="de-DE")  # no catalog of its own: English
    assert at.session_state["lang"] == "en"
    at = opened("evolution", lang="en", locale="zh-CN")
    assert at.session_state["lang"] == "en" and at.title[0].value == "Training evolution"
    at = opened("losses", lang="zh", locale="en-US")
    assert at.title[0].value == "损失曲线"
