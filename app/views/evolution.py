"""Training evolution: the run's fixed 10x10 grid after any epoch (the report's Figure 4)."""

from __future__ import annotations

import time

import streamlit as st

from app import common

EPOCH_KEY = "evolution_epoch"
PLAYING_KEY = "evolution_playing"  # while playing: (first epoch shown, clock time of Play)
STEP_SECONDS = 0.4

st.title("Training evolution")


def toggle_play(first: int, last: int) -> None:
    if st.session_state.get(PLAYING_KEY):
        stop_playing()
        return
    start = st.session_state.get(EPOCH_KEY, last)
    st.session_state[PLAYING_KEY] = (first if start >= last else start, time.monotonic())


def stop_playing() -> None:
    st.session_state.pop(PLAYING_KEY, None)


def show_grid(run, epochs: list[int]) -> None:
    """The slider and the grid; while playing, this part alone reruns, one epoch per step.

    The epoch shown follows the clock from the moment Play was pressed, so a slow step (a busy
    laptop) skips an epoch instead of stalling the animation.
    """
    first, last = epochs[0], epochs[-1]
    playing = st.session_state.get(PLAYING_KEY)
    if playing:
        start, started_at = playing
        step = int((time.monotonic() - started_at) / STEP_SECONDS)
        st.session_state[EPOCH_KEY] = max(first, min(last, start + step))
    if len(epochs) > 1:
        epoch = st.slider("Epoch", first, last, key=EPOCH_KEY, on_change=stop_playing)
    else:
        epoch = first
        st.markdown(f"**Epoch {epoch}** is the only finished epoch so far.")
    with common.page_errors():
        image = common.labelled_grid(common.grid(run, epoch), scale=2)
        common.show_image(image, caption=f"Epoch {epoch}")
    if playing and epoch >= last:
        stop_playing()
        st.rerun(scope="app")  # the end: the button says Play again


with common.page_errors():
    run = common.current_run()
    epochs = common.require_epochs(run) if run is not None else []
    if epochs:
        first, last = epochs[0], epochs[-1]
        common.follow_newest(EPOCH_KEY, epochs)

        playing = bool(st.session_state.get(PLAYING_KEY))
        left, right = st.columns([3, 2])
        with right:
            st.button(
                "Stop" if playing else "Play all epochs",
                icon=":material/stop:" if playing else ":material/play_arrow:",
                type="primary", key="evolution_play", on_click=toggle_play, args=(first, last),
                disabled=len(epochs) < 2,
            )
            common.explain(
                "**How to read the grid.** Row *i* is the digit *i* (labels on the left). "
                "Each column is one fixed noise vector, the same at every epoch, so a column "
                "keeps its *style* (slant, thickness) while the row decides *which* digit.\n\n"
                "**What to look for.** Early epochs are noise. Around epoch 20 rough outlines "
                "appear (0 and 1 first); by about epoch 75 the digits are stable and later "
                "epochs change little. A column that stays ugly is a noise vector the "
                "generator has not learned to use well."
            )
            st.download_button(
                "Download the evolution as a GIF",
                lambda: common.evolution_gif(run),
                file_name=f"{run.name}-evolution.gif",
                mime="image/gif",
                icon=":material/download:",
                key="evolution_gif",
                on_click="ignore",
            )
        with left:
            grid_view = st.fragment(run_every=STEP_SECONDS if playing else None)(show_grid)
            grid_view(run, epochs)
