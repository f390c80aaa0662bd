"""Generate: digits from one epoch's generator, for a chosen digit and noise seed."""

from __future__ import annotations

import streamlit as st

from app import common

st.title("Generate digits")

with common.page_errors():
    run = common.current_run()
    saved = common.require_epochs(run, with_weights=True) if run is not None else []
    if saved:
        digit = common.digit_control("generate_digit")
        seed_column, count_column, epoch_column = st.columns([4, 3, 5], gap="medium")
        with seed_column:
            seed = common.seed_control("generate_seed")
        count = count_column.slider("Number of samples", 1, 16, 4, key="generate_count")
        with epoch_column:
            epoch = common.epoch_control("Epoch", saved, "generate_epoch")

        pictures, notes = st.columns([3, 2], gap="large")
        with pictures:
            images = common.samples(run, epoch, digit, seed, count)
            picture = common.fitted_mosaic(images, columns=min(count, 8), width=600, height=380)
            common.show_image(
                picture,
                caption=f"Digit {digit}, seed {seed}, epoch {epoch}: {count} sample"
                + ("s" * (count != 1)),
            )
            common.download_png(
                "Download PNG", picture, f"{run.name}-epoch{epoch}-digit{digit}-seed{seed}.png",
                key="generate_png",
            )
        with notes:
            common.explain(
                "The generator turns **noise** (100 random numbers, fixed by the seed) plus the "
                "**digit you ask for** into an image. A new seed gives another handwriting; the "
                "same seed always gives the same picture.\n\n"
                "Below, one noise vector is given each of the ten labels: the *style* (slant, "
                "thickness) stays, only the digit changes. The noise carries the handwriting, "
                "the label carries the content."
            )

        # Full width, so the ten digits read from the back of the hall.
        st.subheader("Same noise, all ten digits")
        strip = common.fitted_mosaic(
            common.all_digits(run, epoch, seed), columns=10, width=900, height=110
        )
        common.show_image(strip, caption="The first sample's noise written as 0 to 9")
