"""Real vs CGAN vs cDCGAN: real MNIST digits beside both models' samples (report Figure 6)."""

from __future__ import annotations

import streamlit as st

from app import access, common
from app.i18n import _

COUNT = 16
PANEL = dict(width=640, height=640)  # drawn large; the page shrinks it to the space it has
FIT = "calc(100vh - 20.5rem)"

st.title(_("Real vs CGAN vs cDCGAN"))


def run_chooser(column, label: str, model: str, preferred: str, key: str):
    """A chooser over the runs of one model, starting on `preferred` or the newest such run."""
    candidates = common.runs_of_model(model)
    names = [run.name for run in candidates]
    if not names:
        column.info(_("No {model} run yet: train one with {flag}.").format(
            model=label, flag=f"--model {model}"))
        return None
    if st.session_state.get(key) not in names:
        st.session_state[key] = common.default_run_name(names, preferred)
    name = column.selectbox(_("{model} run").format(model=label), names, key=key)
    return next(run for run in candidates if run.name == name)


def model_panel(column, label: str, run, digit: int, seed: int) -> None:
    with column, common.page_errors():
        st.subheader(label)
        if run is None:
            return
        saved = common.require_epochs(run, with_weights=True)
        if saved:
            images = common.samples(run, saved[-1], digit, seed, COUNT)
            common.show_image(common.fitted_mosaic(images, 4, **PANEL),
                              caption=_("{run}, epoch {epoch}").format(run=run.name, epoch=saved[-1]),
                              max_height=FIT)


with common.page_errors():
    digit = common.digit_control("real_vs_digit")
    seed_column, cgan_column, cdcgan_column = st.columns([4, 3, 3], gap="medium")
    with seed_column:
        seed = common.seed_control("real_vs_seed")
    cgan_run = run_chooser(cgan_column, "CGAN", "cgan", "cgan-report", "real_vs_cgan")
    cdcgan_run = run_chooser(cdcgan_column, "cDCGAN", "cdcgan", "cdcgan-report", "real_vs_cdcgan")

    if not access.allow_generation():
        st.stop()
    real_column, cgan_column, cdcgan_column = st.columns(3, gap="large")
    with real_column, common.page_errors():
        st.subheader(_("Real MNIST"))
        images = common.real_digits(digit, COUNT, seed)
        common.show_image(common.fitted_mosaic(images, 4, **PANEL),
                          caption=_("Training images of {digit}").format(digit=digit), max_height=FIT)
    model_panel(cgan_column, "CGAN", cgan_run, digit, seed)
    model_panel(cdcgan_column, "cDCGAN", cdcgan_run, digit, seed)
    common.explain(_(
        "**Two generators, one task.** The CGAN is two small fully connected layers: it sees "
        "an image as 784 unrelated numbers. The cDCGAN uses convolutions, which know that "
        "neighbouring pixels belong together, so its strokes are smoother and it needs far "
        "fewer epochs to get there, although each epoch takes longer to train."
    ))
