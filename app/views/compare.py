"""Compare epochs: grids (or one digit and seed) side by side at chosen epochs (report Figure 4).

The figure fills the first screen, the controls beside it in a narrow column: the panels take
whichever layout makes them largest (one row of four, or two rows of two) in the space left by the
sidebar and the window, so on a 1280x720 projector each grid is about 280 pixels or more.
"""

from __future__ import annotations

import streamlit as st

from app import common
from app.figures import show_panels
from app.i18n import N_, _, formatter

WHOLE_GRID = N_("Grids")  # the widget's values; shown through _()
ONE_DIGIT = N_("One digit")
EPOCHS_KEY = "compare_epochs"
COLUMN_KEY = "compare_column"
MOST_EPOCHS = 8
CONTROLS_WIDTH = 208  # pixels: the title and controls beside the figure
# The height the figure may take: the window less the page's top margin (presentation mode: the
# smaller margin it leaves), so the panels end on the first screen.
AVAILABLE = "calc(100vh - 3.1rem)"
AVAILABLE_PRESENTING = "calc(100vh - 2rem)"


def per_row(count: int) -> int:
    """Panels per row of the downloaded PNG: up to four in one row (the report's figure), more
    in two even rows."""
    return count if count <= 4 else -(-count // 2)


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
    chosen = st.multiselect(_("Epochs"), epochs, key=EPOCHS_KEY, max_selections=MOST_EPOCHS,
                            help=_("The report compares epochs 20, 50, 75 and 200."),
                            placeholder=_("Choose options"))
    return sorted(chosen)


def grid_panels(run, chosen: list[int], column: int | None) -> list[tuple[object, str]]:
    # No column numbers: a quarter of the screen makes them too small to read; the outline
    # marks the column instead.
    return [(common.labelled_grid(common.grid(run, epoch), scale=2, highlight=column,
                                  column_numbers=False),
             _("Epoch {epoch}").format(epoch=epoch)) for epoch in chosen]


def digit_panels(run, chosen: list[int], saved: list[int], digit: int, seed: int,
                 count: int) -> list[tuple[object, str]]:
    panels = []
    for epoch in chosen:
        used = common.nearest(epoch, saved)
        note = "" if used == epoch else _(" (weights of {epoch})").format(epoch=used)
        images = common.samples(run, used, digit, seed, count)
        picture = common.fitted_mosaic(images, common.grid_columns(count), width=480, height=480)
        panels.append((picture, _("Epoch {epoch}").format(epoch=epoch) + note))
    return panels


title = st.empty()  # the page's title, where there is no figure (beside the figure otherwise)
shown = False
with common.page_errors():
    run = common.current_run()
    epochs = common.require_epochs(run) if run is not None else []
    if epochs:
        shown = True
        layout = st.container(horizontal=True, gap="small", key="compare_layout")
        figure_part = layout.container()
        with layout.container(width=CONTROLS_WIDTH, key="controls-compare"):
            st.title(_("Compare epochs"))
            mode = st.segmented_control(
                _("Show"), [WHOLE_GRID, ONE_DIGIT], default=WHOLE_GRID, required=True,
                key="compare_mode", width="content", format_func=formatter(),
            )
            chosen = chosen_epochs(epochs)
            st.button(_("Report's epochs"), key="compare_report_epochs", on_click=use_report_epochs,
                      args=(epochs,), help=_("20, 50, 75 and 200 (or the nearest this run has)"))
            column = None
            if mode == WHOLE_GRID:
                column = st.session_state.get(COLUMN_KEY)
            saved = common.require_epochs(run, with_weights=True) if mode == ONE_DIGIT else []
            if mode == ONE_DIGIT and saved:
                digit = common.digit_control("compare_digit")
                seed = common.seed_control("compare_seed")
                count = int(st.number_input(_("Samples"), 1, 16, 9, key="compare_count", width=170))
            elif mode == WHOLE_GRID:
                st.pills(_("Outline a column"), list(range(10)), key=COLUMN_KEY,
                         help=_("One noise vector: the same column outlined in every panel"))
            download = st.container()
        with figure_part:
            if not chosen:
                st.info(_("Pick one or more epochs to compare."))
            elif mode == WHOLE_GRID or saved:
                if mode == WHOLE_GRID:
                    panels = grid_panels(run, chosen, column)
                else:
                    panels = digit_panels(run, chosen, saved, digit, seed, count)
                show_panels([(common.png_bytes(p), label) for p, label in panels],
                            AVAILABLE_PRESENTING if common.presenting() else AVAILABLE,
                            key="compare")
                with download:
                    what = "grids" if mode == WHOLE_GRID else f"digit{digit}-seed{seed}"
                    common.download_png(
                        _("PNG of this figure"),
                        lambda: common.labelled_panels(panels, per_row(len(chosen))),
                        f"{run.name}-epochs-{'-'.join(map(str, chosen))}-{what}.png",
                        key="compare_png",
                    )
        if not common.presenting():
            common.explain(_(
                "**Between epoch 20 and 200.** At epoch 20 the digits are rough outlines; 0 and 1 "
                "come first because they are the easiest shapes. Then the rows grow apart and the "
                "strokes get cleaner; from about epoch 75 the pictures barely change. The noise is "
                "the same in every panel, so you watch the *same* handwriting improve."
            ))
if not shown and not common.presenting():
    title.title(_("Compare epochs"))
