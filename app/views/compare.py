"""Compare epochs: grids (or one digit and seed) side by side at chosen epochs (report Figure 4).

The report's four epochs sit in one row, each labelled above, and the whole figure fits the first
screen of a 1280x720 projector: the panels take their size from the window.
"""

from __future__ import annotations

import math

import streamlit as st

from app import common

WHOLE_GRID = "Whole grid"
ONE_DIGIT = "One digit"
EPOCHS_KEY = "compare_epochs"
COLUMN_KEY = "compare_column"
MOST_EPOCHS = 8

if not common.presenting():
    st.title("Compare epochs")


def per_row(count: int) -> int:
    """Up to four panels share one row (the report's figure); more make two even rows."""
    return count if count <= 4 else math.ceil(count / 2)


def fit_height(count: int, controls_rem: float) -> str:
    """The CSS height a panel may take: the window less the controls above, shared by the rows."""
    rows = math.ceil(count / per_row(count))
    above = 4.5 if common.presenting() else controls_rem
    return f"calc((100vh - {above}rem) / {rows} - {2.2 * (rows - 1)}rem)"


def use_report_epochs(epochs: list[int]) -> None:
    st.session_state[EPOCHS_KEY] = common.report_epochs(epochs)


def chosen_epochs(epochs: list[int]) -> list[int]:
    """The epochs picker, starting on the report's epochs (or the nearest) for each run."""
    fresh = st.session_state.get("compare_run") != run.name
    if fresh or EPOCHS_KEY not in st.session_state:
        st.session_state[EPOCHS_KEY] = common.report_epochs(epochs)
    else:
        st.session_state[EPOCHS_KEY] = [e for e in st.session_state[EPOCHS_KEY] if e in epochs]
    st.session_state["compare_run"] = run.name
    chosen = st.multiselect("Epochs", epochs, key=EPOCHS_KEY, max_selections=MOST_EPOCHS,
                            help="The report compares epochs 20, 50, 75 and 200.")
    return sorted(chosen)


def grid_panels(run, chosen: list[int], column: int | None) -> list[tuple[object, str]]:
    # No column numbers: a quarter of the screen makes them too small to read; the outline
    # marks the column instead.
    return [(common.labelled_grid(common.grid(run, epoch), scale=2, highlight=column,
                                  column_numbers=False),
             f"Epoch {epoch}") for epoch in chosen]


def digit_panels(run, chosen: list[int], saved: list[int], digit: int, seed: int,
                 count: int) -> list[tuple[object, str]]:
    panels = []
    for epoch in chosen:
        used = common.nearest(epoch, saved)
        note = "" if used == epoch else f" (weights of {used})"
        images = common.samples(run, used, digit, seed, count)
        picture = common.fitted_mosaic(images, common.tile_columns(count), width=480, height=480)
        panels.append((picture, f"Epoch {epoch}{note}"))
    return panels


with common.page_errors():
    run = common.current_run()
    epochs = common.require_epochs(run) if run is not None else []
    if epochs:
        with st.container(key="controls-compare"):
            top = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
            mode = top.segmented_control(
                "Show", [WHOLE_GRID, ONE_DIGIT], default=WHOLE_GRID, required=True,
                key="compare_mode", width="content",
            )
            with top.container(width=350):
                chosen = chosen_epochs(epochs)
            with top:
                st.button("Report's epochs", key="compare_report_epochs", on_click=use_report_epochs,
                          args=(epochs,),
                          help="20, 50, 75 and 200 (or the nearest this run has)")
            column = None
            if mode == WHOLE_GRID:
                column = st.session_state.get(COLUMN_KEY)
            saved = common.require_epochs(run, with_weights=True) if mode == ONE_DIGIT else []
            if mode == ONE_DIGIT and saved:
                row = st.container(horizontal=True, vertical_alignment="bottom", gap="small")
                with row:
                    digit = common.digit_control("compare_digit")
                with row.container(width="content"):
                    seed = common.seed_control("compare_seed")
                count = int(row.number_input("Samples", 1, 16, 9, key="compare_count", width=170))
            elif mode == WHOLE_GRID:
                st.pills("Outline a column (one noise vector) in every panel", list(range(10)),
                         key=COLUMN_KEY)
        if not chosen:
            st.info("Pick one or more epochs to compare.")
        elif mode == WHOLE_GRID or saved:
            if mode == WHOLE_GRID:
                panels = grid_panels(run, chosen, column)
                height = fit_height(len(chosen), 17.5)
            else:
                panels = digit_panels(run, chosen, saved, digit, seed, count)
                height = fit_height(len(chosen), 19.5)
            common.show_figures([(common.png_bytes(p), label) for p, label in panels],
                                per_row=per_row(len(chosen)), max_height=height,
                                caption_above=True, key="compare")
            if not common.presenting():
                what = "grids" if mode == WHOLE_GRID else f"digit{digit}-seed{seed}"
                common.download_png(
                    "PNG of this figure",
                    lambda: common.labelled_panels(panels, per_row(len(chosen))),
                    f"{run.name}-epochs-{'-'.join(map(str, chosen))}-{what}.png",
                    key="compare_png",
                )
        if not common.presenting():
            common.explain(
                "**Between epoch 20 and 200.** At epoch 20 the digits are rough outlines; 0 and 1 "
                "come first because they are the easiest shapes. Then the rows grow apart and the "
                "strokes get cleaner; from about epoch 75 the pictures barely change. The noise is "
                "the same in every panel, so you watch the *same* handwriting improve."
            )
