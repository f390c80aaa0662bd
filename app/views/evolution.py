"""Training evolution: the run's fixed 10x10 grid after any epoch (the report's Figure 4)."""

from __future__ import annotations

import time

import streamlit as st

from app import common
from app.figures import in_page_language
from app.i18n import N_, _, formatter

EPOCH_KEY = "evolution_epoch"
PLAYING_KEY = "evolution_playing"  # while playing: (first epoch shown, clock time of Play)
SHOWN_KEY = "evolution_shown"  # while playing: (epoch, clock time) the animation put on screen
ECHO_SECONDS = 2.0  # how late the browser's report of a frame may come back and not stop Play
SPEED_KEY = "evolution_speed"
COLUMN_KEY = "evolution_column"
GIF_EVERY_KEY = "evolution_gif_every"
BASE_STEP_SECONDS = 0.4  # one epoch per 0.4 s at 1x: 200 epochs in 80 s
SPEEDS = {"1x": 1, "2x": 2, "4x": 4, "8x": 8}
GIF_EVERY = {"every epoch": 1, "every 5th": 5, "every 10th": 10}  # keys: the widget's values
GIF_EVERY_LABELS = {"every epoch": N_("every epoch"), "every 5th": N_("every 5th"),
                    "every 10th": N_("every 10th")}
PRESENT_CONTROLS_WIDTH = 290  # pixels: the epoch jumps on one line, Play and its speed on two
PRESENT_GRID_HEIGHT = "calc(100vh - 3.9rem)"  # the window less the top margin and the caption
PRESENT_GRID_SCALE = 4  # drawn 1187 pixels tall: a 1080-pixel screen only ever shrinks it

if not common.presenting():
    st.title(_("Training evolution"))


def step_seconds() -> float:
    return BASE_STEP_SECONDS / SPEEDS[st.session_state.get(SPEED_KEY) or "1x"]


def start_playing(epochs: list[int]) -> None:
    start = st.session_state.get(EPOCH_KEY, epochs[-1])
    st.session_state[PLAYING_KEY] = (epochs[0] if start >= epochs[-1] else start, time.monotonic())


def stop_playing() -> None:
    st.session_state.pop(PLAYING_KEY, None)
    st.session_state.pop(SHOWN_KEY, None)


def slider_moved() -> None:
    """The slider stops Play when the lecturer moves it. While playing, the browser may also
    report back an epoch the animation itself showed moments ago (its report crossed the next
    frames; on a busy machine, several): that is no move, and playing goes on."""
    recent = time.monotonic() - ECHO_SECONDS
    shown = {epoch for epoch, at in st.session_state.get(SHOWN_KEY, ()) if at >= recent}
    if st.session_state.get(EPOCH_KEY) not in shown:
        stop_playing()


def restart_clock() -> None:
    """A new speed while playing: carry on from the epoch on screen at the new pace."""
    if st.session_state.get(PLAYING_KEY):
        st.session_state[PLAYING_KEY] = (st.session_state[EPOCH_KEY], time.monotonic())


def step(epochs: list[int], by: int) -> None:
    stop_playing()
    here = epochs.index(st.session_state.get(EPOCH_KEY, epochs[-1]))
    st.session_state[EPOCH_KEY] = epochs[max(0, min(len(epochs) - 1, here + by))]


def play_controls(epochs: list[int], playing: bool) -> bool:
    """Step back, Play/Stop, step forward and the speed; True when Play or Stop was pressed."""
    with st.container(horizontal=True, gap="small", vertical_alignment="bottom",
                      key="evolution_play_row"):
        st.button("", key="evolution_back", icon=":material/skip_previous:", help=_("One epoch back"),
                  on_click=step, args=(epochs, -1))
        # No tooltip: the pointer rests on this button while the epochs play, and a tooltip
        # would cover the epoch buttons above it.
        pressed = st.button(_("Stop") if playing else _("Play"), key="evolution_play", type="primary",
                            icon=":material/stop:" if playing else ":material/play_arrow:")
        st.button("", key="evolution_forward", icon=":material/skip_next:",
                  help=_("One epoch forward"), on_click=step, args=(epochs, 1))
        st.segmented_control(_("Speed"), list(SPEEDS), key=SPEED_KEY, required=True,
                             on_change=restart_clock, label_visibility="collapsed",
                             help=_("Play speed: 1x is 0.4 s per epoch"))
    return pressed


def grid_figure(run, epoch: int, column: int | None, max_height: str,
                scale: int = common.GRID_SCALE) -> None:
    with common.page_errors():
        data = common.grid_png(run, epoch, highlight=column, scale=scale)
        common.show_figures([(data, _("Epoch {epoch}").format(epoch=epoch))], max_height=max_height, key="evolution")


def downloads(run, epochs: list[int], epoch: int, column: int | None) -> None:
    common.download_png(
        _("PNG of this grid"),
        lambda: common.labelled_grid(common.grid(run, epoch), scale=4, highlight=column,
                                     title=_("{run}, epoch {epoch}").format(run=run.name,
                                                                            epoch=epoch)),
        f"{run.name}-epoch{epoch}-grid.png", key="evolution_png",
    )
    every = GIF_EVERY[st.session_state.get(GIF_EVERY_KEY) or "every epoch"]
    with st.container(horizontal=True, gap="small", vertical_alignment="bottom"):
        st.download_button(
            _("GIF of the evolution"),
            in_page_language(lambda: common.evolution_gif(run, every=every)),
            file_name=f"{run.name}-evolution-every{every}.gif" if every > 1
            else f"{run.name}-evolution.gif",
            mime="image/gif", icon=":material/download:", key="evolution_gif", on_click="ignore",
            help=_("Every epoch's grid as one animation for the course notes"),
        )
        st.selectbox(_("GIF frames"), list(GIF_EVERY), key=GIF_EVERY_KEY,
                     format_func=formatter(GIF_EVERY_LABELS),
                     label_visibility="collapsed", width=170,
                     help=_("A lighter GIF: every 5th or 10th epoch (and the last)"))


def evolution(run, epochs: list[int], timer_on: bool) -> None:
    """The grid and its controls; while playing, this part alone reruns (as a fragment), one
    epoch per step.

    The epoch shown follows the clock from the moment Play was pressed, so a slow step (a busy
    laptop) skips an epoch instead of stalling the animation.
    """
    first, last = epochs[0], epochs[-1]
    playing = st.session_state.get(PLAYING_KEY)
    if playing:
        start, started_at = playing
        ahead = int((time.monotonic() - started_at) / step_seconds())
        later = [e for e in epochs if e >= start]
        st.session_state[EPOCH_KEY] = later[min(ahead, len(later) - 1)] if later else last
        now, shown = time.monotonic(), st.session_state.get(SHOWN_KEY, [])
        st.session_state[SHOWN_KEY] = [*(s for s in shown if s[1] >= now - ECHO_SECONDS),
                                       (st.session_state[EPOCH_KEY], now)]
    if timer_on != bool(playing):
        st.rerun(scope="app")  # playing stopped (a step, the slider) or started: reset the timer
    presenting = common.presenting()
    column = st.session_state.get(COLUMN_KEY)

    if presenting:
        # The grid as tall as the window; the jumps and Play beside it, where a 4:3 or 16:9
        # screen has room to spare (below it they would push the grid's bottom off the screen).
        epoch = st.session_state.get(EPOCH_KEY, last)
        layout = st.container(horizontal=True, gap="small", vertical_alignment="center",
                              key="evolution_present")
        with layout.container():
            grid_figure(run, epoch, column, max_height=PRESENT_GRID_HEIGHT, scale=PRESENT_GRID_SCALE)
        with layout.container(width=PRESENT_CONTROLS_WIDTH, key="evolution_present_side"):
            common.epoch_jumps(EPOCH_KEY, epochs, then=stop_playing)
            pressed = play_controls(epochs, bool(playing))
    else:
        picture, controls = st.columns([5, 3], gap="medium")
        with controls:
            if len(epochs) > 1:
                epoch = st.slider(_("Epoch"), first, last, key=EPOCH_KEY, on_change=slider_moved)
                common.epoch_jumps(EPOCH_KEY, epochs, then=stop_playing)
            else:
                epoch = first
                st.markdown(_("**Epoch {epoch}** is the only finished epoch so far.").format(
                    epoch=epoch))
            pressed = play_controls(epochs, bool(playing))
            st.pills(_("Outline a column (one noise vector)"), list(range(10)), key=COLUMN_KEY,
                     help=_("Click the column's number; click it again to clear the outline"))
            downloads(run, epochs, epoch, column)
        with picture:
            grid_figure(run, epoch, column, max_height="calc(100vh - 8.5rem)")
    if pressed:
        stop_playing() if playing else start_playing(epochs)
        st.rerun(scope="app")
    if playing and st.session_state[EPOCH_KEY] >= last:
        stop_playing()
        st.rerun(scope="app")  # the end: the button says Play again


# Keep the choices while presentation mode hides their widgets (Streamlit forgets the value of
# a widget that is not drawn in a run; a value written back by the page is kept).
for _key in (EPOCH_KEY, COLUMN_KEY, SPEED_KEY):
    if _key in st.session_state:
        st.session_state[_key] = st.session_state[_key]

with common.page_errors():
    run = common.current_run()
    epochs = common.require_epochs(run) if run is not None else []
    if epochs:
        common.follow_newest(EPOCH_KEY, epochs)
        if st.session_state.get(SPEED_KEY) is None:
            st.session_state[SPEED_KEY] = "1x"
        playing = bool(st.session_state.get(PLAYING_KEY))
        if playing and len(epochs) < 2:
            stop_playing()
            playing = False
        if playing:  # only the grid's part reruns, one epoch per step
            st.fragment(run_every=step_seconds())(evolution)(run, epochs, True)
        else:  # every control reruns the whole page: no part can fall out of step
            evolution(run, epochs, False)
        if not common.presenting():
            common.explain(_(
                "**How to read the grid.** Row *i* is the digit *i* (labels on the left). "
                "Each column is one fixed noise vector (numbers on top), the same at every "
                "epoch, so a column keeps its *style* (slant, thickness) while the row decides "
                "*which* digit. Outline a column to follow one noise vector.\n\n"
                "**What to look for.** Early epochs are noise. Around epoch 20 rough outlines "
                "appear (0 and 1 first); by about epoch 75 the digits are stable and later "
                "epochs change little. A column that stays ugly is a noise vector the "
                "generator has not learned to use well."
            ))
