"""Generate: digits from one epoch's generator, for a chosen digit and noise seed.

The samples and the controls share the first screen (samples left, controls right), with the same
noise written as all ten digits across the page below them: on a 1280x720 projector with the
sidebar open, four samples are each over 200 pixels tall and the strip ends on the first screen.
"""

from __future__ import annotations

import streamlit as st

from app import access, common
from app.i18n import _, ngettext

CONTROLS_WIDTH = 384  # pixels: the ten digit buttons on one line
# The strip of ten digits is at most this tall, and the samples take the window less the title,
# the captions, the strip and the gaps between them.
STRIP_HEIGHT = "11vh"
SAMPLES_HEIGHT = f"calc(100vh - {STRIP_HEIGHT} - 10.5rem)"
SAMPLES_HEIGHT_PRESENTING = f"calc(100vh - {STRIP_HEIGHT} - 7.4rem)"  # no title above them

st.title(_("Generate digits"))

with common.page_errors():
    run = common.current_run()
    saved = common.require_epochs(run, with_weights=True) if run is not None else []
    if saved:
        layout = st.container(horizontal=True, gap="small", key="generate_layout")
        pictures = layout.container()
        with layout.container(width=CONTROLS_WIDTH, key="generate_controls"):
            digit = common.digit_control("generate_digit")
            seed = common.seed_control("generate_seed")
            count = st.slider(_("Number of samples"), 1, 16, 4, key="generate_count")
            epoch = common.epoch_control(_("Epoch"), saved, "generate_epoch")
        if not access.allow_generation():
            st.stop()
        with pictures:
            images = common.samples(run, epoch, digit, seed, count)
            # Near-square, drawn large: the browser only ever shrinks it to the space it has.
            picture = common.fitted_mosaic(images, columns=common.grid_columns(count), width=1000,
                                           height=1000, most=16)
            common.show_image(
                picture,
                caption=ngettext("Digit {digit}, seed {seed}, epoch {epoch}: {count} sample",
                                 "Digit {digit}, seed {seed}, epoch {epoch}: {count} samples",
                                 count).format(digit=digit, seed=seed, epoch=epoch, count=count),
                max_height=SAMPLES_HEIGHT_PRESENTING if common.presenting() else SAMPLES_HEIGHT,
            )
        # Full width, so the ten digits read from the back of the hall.
        strip = common.fitted_mosaic(
            common.all_digits(run, epoch, seed), columns=10, width=1800, height=200
        )
        common.show_figures([(common.png_bytes(strip), _("The same noise, all ten digits (the first "
                                                        "sample's noise written as 0 to 9)"))],
                            max_height=STRIP_HEIGHT, caption_above=True, key="generate_strip")
        common.download_png(
            _("Download PNG"), picture, f"{run.name}-epoch{epoch}-digit{digit}-seed{seed}.png",
            key="generate_png",
        )
        common.explain(_(
            "The generator turns **noise** (100 random numbers, fixed by the seed) plus the "
            "**digit you ask for** into an image. A new seed gives another handwriting; the "
            "same seed always gives the same picture.\n\n"
            "Above, one noise vector is given each of the ten labels: the *style* (slant, "
            "thickness) stays, only the digit changes. The noise carries the handwriting, "
            "the label carries the content."
        ))
