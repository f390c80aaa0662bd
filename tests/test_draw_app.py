"""Draw a digit on the discriminator page, headless (AppTest): the section is there with the canvas
package, and without it the page says in one line how to install it and shows everything else."""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

INSTALL = "pip install streamlit-drawable-canvas==0.13.0"


@pytest.fixture
def judged_checkpoints(monkeypatch, tmp_path, judged_run):
    shutil.copytree(judged_run.path, tmp_path / "cgan-report")
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(tmp_path))
    return tmp_path


def discriminator_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    at.switch_page("views/discriminator.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_draw_a_digit_waits_for_a_drawing(judged_checkpoints):
    at = discriminator_page()
    assert "Draw a digit" in [s.value for s in at.subheader]
    assert any("Draw a digit with the mouse" in m.value for m in at.markdown)
    assert not any(INSTALL in i.value for i in at.info)


def test_without_the_canvas_package_one_line_says_how_to_install_it(judged_checkpoints, monkeypatch):
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", None)  # as if never installed
    at = discriminator_page()
    assert [i.value for i in at.info if INSTALL in i.value] == [
        f"Drawing a digit needs one more package: `{INSTALL}`"
    ]
    # The rest of the page is all there: the verdict on one digit and D's view across the epochs.
    assert [s.value for s in at.subheader] == ["Ask D about one digit", "Draw a digit", "D's view across the epochs"]
    assert len(at.get("plotly_chart")) == 3
