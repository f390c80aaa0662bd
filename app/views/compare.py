"""Compare epochs: grids (or one digit and seed) side by side at chosen epochs (report Figure 4)."""

from __future__ import annotations

import streamlit as st

from app import common

REPORT_EPOCHS = (20, 50, 75, 200)
WHOLE_GRID = "Whole grid"
ONE_DIGIT = "One digit and seed"

st.title("Compare epochs")


def report_epochs(available: list[int]) -> list[int]:
    """The report's epochs 20, 50, 75, 200, or the nearest this run has (no repeats)."""
    chosen = []
    for wanted in REPORT_EPOCHS:
        epoch = common.nearest(wanted, available)
        if epoch not in chosen:
            chosen.append(epoch)
    return chosen


def panels(count: int) -> list:
    """One place per epoch: two per row for four (as in the report), else up to three per row."""
    per_row = 2 if count in (2, 4) else min(count, 3)
    places = []
    while len(places) < count:
        places.extend(st.columns(per_row, gap="medium"))
    return places[:count]


with common.page_errors():
    run = common.current_run()
    epochs = common.require_epochs(run) if run is not None else []
    if epochs:
        top_left, top_right = st.columns([1, 2], vertical_alignment="bottom")
        mode = top_left.segmented_control(
            "Show", [WHOLE_GRID, ONE_DIGIT], default=WHOLE_GRID, required=True, key="compare_mode"
        )
        fresh = st.session_state.get("compare_run") != run.name
        if fresh or "compare_epochs" not in st.session_state:
            st.session_state["compare_epochs"] = report_epochs(epochs)
        else:
            st.session_state["compare_epochs"] = [
                e for e in st.session_state["compare_epochs"] if e in epochs
            ]
        st.session_state["compare_run"] = run.name
        chosen = top_right.multiselect(
            "Epochs", epochs, key="compare_epochs", max_selections=6,
            help="The report compares epochs 20, 50, 75 and 200.",
        )
        chosen = sorted(chosen)
        if not chosen:
            st.info("Pick one or more epochs to compare.")
        elif mode == ONE_DIGIT:
            saved = common.require_epochs(run, with_weights=True)
            if saved:
                digit = common.digit_control("compare_digit")
                seed_column, count_column, _ = st.columns([5, 3, 4], gap="medium")
                with seed_column:
                    seed = common.seed_control("compare_seed")
                count = count_column.number_input("Samples", 1, 16, 9, key="compare_count")
                for column, epoch in zip(panels(len(chosen)), chosen):
                    used = common.nearest(epoch, saved)
                    note = "" if used == epoch else f" (weights of epoch {used})"
                    with column, common.page_errors():
                        images = common.samples(run, used, digit, seed, int(count))
                        picture = common.fitted_mosaic(images, common.tile_columns(int(count)),
                                                       width=480, height=480)
                        common.show_image(picture, caption=f"Epoch {epoch}{note}")
        else:
            for column, epoch in zip(panels(len(chosen)), chosen):
                with column, common.page_errors():
                    common.show_image(common.labelled_grid(common.grid(run, epoch), scale=2),
                                      caption=f"Epoch {epoch}")
        common.explain(
            "**Between epoch 20 and 200.** At epoch 20 the digits are rough outlines; 0 and 1 "
            "come first because they are the easiest shapes. Then the rows grow apart and the "
            "strokes get cleaner; from about epoch 75 the pictures barely change. The noise is "
            "the same in every panel, so you watch the *same* handwriting improve."
        )
