"""Conditional GANs on MNIST: the teaching app.

    python -m app                    (from anywhere: the launcher passes the project's settings)
    streamlit run app/main.py        (from the repository root; settings in streamlit_config.toml)

The sidebar holds the page list, the run every page shows and the jobs training now. Pages only
read runs (cgan.runs) and draw from their generators (cgan.sampling); training happens elsewhere.
"""

from __future__ import annotations

from pathlib import Path


import streamlit as st

from app import access
from app.i18n import _, language_selector
from app.preload import chart_code_html
from app.safety import exposure_warnings, keep_errors_private
from app.style import CSS, PRESENTATION_CSS

VIEWS = Path(__file__).resolve().parent / "views"
ICON = Path(__file__).resolve().parent / "static" / "icon.png"  # local: no request leaves the machine

st.set_page_config(page_title=_("Conditional GANs on MNIST"), page_icon=str(ICON), layout="wide")
keep_errors_private()
access.claim_key()  # the lecturer's link: this session is the lecturer's, the key leaves the address bar
# Sent before the app's modules (and torch) are imported: the browser loads the chart code while
# the server imports.
st.html(CSS + chart_code_html(), unsafe_allow_javascript=True)

from app import common  # noqa: E402  (after the page's first message; see above)

for level, message in exposure_warnings():
    (st.error if level == "error" else st.warning)(message)


def page(file: str, title: str, icon: str, **options) -> st.Page | None:
    """A page of the app, or None while its file does not exist yet."""
    if not (VIEWS / file).is_file():
        return None
    # The folder is not called pages/: that name would make Streamlit run a page on its own
    # (without this file) when a server's first request asks for that page's URL.
    return st.Page(f"views/{file}", title=title, icon=icon, **options)


pages = [
    page("evolution.py", _("Training evolution"), ":material/animation:", default=True),
    page("generate.py", _("Generate"), ":material/draw:"),
    page("compare.py", _("Compare epochs"), ":material/view_column:"),
    page("losses.py", _("Loss curves"), ":material/show_chart:"),
    page("quality.py", _("Quality"), ":material/verified:"),
    page("real_vs.py", _("Real vs CGAN vs cDCGAN"), ":material/compare:"),
    page("interpolate.py", _("Interpolation"), ":material/linear_scale:"),
    page("discriminator.py", _("The discriminator's verdict"), ":material/gavel:"),
    page("train.py", _("Train"), ":material/model_training:"),
]
navigation = st.navigation([p for p in pages if p is not None], position="sidebar", expanded=True)

with st.sidebar, common.page_errors():
    chosen = common.sidebar_run_picker()
    common.sidebar_jobs()
    common.presentation_toggle()
    common.averaged_choice(chosen)
    if chosen is not None and chosen.state() == "running":
        common.follow_training(chosen)
with st.sidebar:  # on its own: drawn even when a part above fails
    language_selector()

if common.presenting():
    st.html(PRESENTATION_CSS)
    st.button(_("Exit presentation"), key="present_exit", icon=":material/close_fullscreen:",
              on_click=common.stop_presenting)

navigation.run()
