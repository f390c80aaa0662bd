"""Names and messages from disk are shown as plain text (app.text.plain): a run named like a
Markdown image, bold text or a Streamlit icon reads as written on every page, and nothing in it is
turned into a link, an image to fetch or formatting."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.text import plain
from tests.conftest import PAGES, ROOT, as_shown

HOSTILE = "![x](https:evil.example)"


@pytest.mark.parametrize("text", [
    HOSTILE, "[link](http://evil.example)", "**bold** _it_ ~~gone~~ `code`", ":material/home: :red[x]",
    "$x^2$", "<img src=x>", "# heading", "> quote", "- item", "1. first", "a\nb\rc\x00d", "back\\slash",
])
def test_markup_is_escaped_and_reads_as_written(text):
    shown = plain(text)
    assert "\n" not in shown and "\r" not in shown
    assert as_shown(shown) == " ".join(text.split())
    for mark in ("](", "**", "~~", "`", "$", "<img", ":material", ":red["):
        assert mark not in shown.replace("\\" + mark[0], ""), (text, shown)


@pytest.mark.parametrize("text", ["cgan-report", "generator_0004.pt", "RuntimeError: out of memory",
                                  "live-1", "my run", "history.jsonl: line 3 is damaged"])
def test_ordinary_names_and_messages_are_unchanged(text):
    assert plain(text) == text


@given(st.text(max_size=60))
def test_any_text_reads_back_as_written(text):
    assert as_shown(plain(text)) == " ".join(text.split())


@pytest.fixture
def hostile_root(tmp_path, cgan_run, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(cgan_run.path, root / HOSTILE)
    config = json.loads((root / HOSTILE / "config.json").read_text())
    (root / HOSTILE / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(root))
    return root


def texts(at) -> list[str]:
    found = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader",
                 "header", "toast"):
        found += [str(element.value) for element in getattr(at, kind)]
    return found


def test_a_run_named_like_markdown_is_plain_text_on_every_page(hostile_root):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=180)
    at.session_state["run"] = HOSTILE
    at.run()
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        shown = texts(at)
        # Markup left after the escaped characters (a backslash and the one it escapes) and code
        # spans (shown as written) are taken out.
        unsafe = [t for t in shown if "](" in re.sub(r"`[^`]*`", "", re.sub(r"\\.", "", t))]
        assert not unsafe, (page, unsafe)
        assert at.selectbox(key="run").value == HOSTILE, page
