"""Controls the pages share: digit, seed, epoch (with jumps to the report's epochs), presentation
mode and the explanation box.

Widget values are forgotten when the page changes; the shared values (digit, seed) are kept in
session state under their own names, so the next page starts where the last one left off.
"""

from __future__ import annotations

import random

import streamlit as st

from app.i18n import _
from app.loaders import nearest
from app.text import plain
from cgan.limits import MAX_SEED
from cgan.symptoms import diagnose

REPORT_EPOCHS = (20, 50, 75, 200)  # the epochs the report's Figure 4 shows
PRESENT_KEY = "present"  # session state and URL parameter (?present=1) of presentation mode


def shared_value(name: str, key: str, default):
    """Give the widget `key` the session's shared value `name` if it has none of its own yet."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(name, default)


def digit_control(key: str, label: str | None = None) -> int:
    shared_value("digit", key, 7)
    digit = st.segmented_control(label or _("Digit"), list(range(10)), key=key, required=True, width="content")
    digit = 7 if digit is None else int(digit)
    st.session_state["digit"] = digit
    return digit


def _new_seed(key: str) -> None:
    st.session_state[key] = random.randint(0, 99_999)


def seed_control(key: str) -> int:
    """A noise seed: an integer field with -/+ and a button that draws a new one, on one line."""
    shared_value("seed", key, 42)
    seed_max = min(MAX_SEED, 2**53 - 1)  # the browser's number field holds exact integers only
    if int(st.session_state[key]) > seed_max:
        st.session_state[key] = seed_max
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small",
                      key=f"{key}_row"):
        seed = st.number_input(_("Noise seed"), 0, seed_max, step=1, key=key, width=170)
        # An icon, not a word: the digit, seed and sample controls share one line at 1280 px.
        st.button("", key=f"{key}_random", on_click=_new_seed, args=(key,),
                  icon=":material/casino:", help=_("Draw a new random seed"))
    seed = int(seed)
    st.session_state["seed"] = seed
    return seed


# ---------------------------------------------------------------------------------------------
# Epochs


def follow_newest(key: str, options: list[int]) -> None:
    """Before an epoch widget `key` is drawn: start on the newest of `options` (sorted epochs),
    and stay on the newest while a trainer adds epochs, unless another epoch was chosen."""
    newest_key = f"{key}__newest"
    chosen = st.session_state.get(key)
    was_newest = chosen is not None and chosen == st.session_state.get(newest_key)
    if chosen not in options or (was_newest and chosen != options[-1]):
        st.session_state[key] = options[-1]
    st.session_state[newest_key] = options[-1]


def report_epochs(available: list[int]) -> list[int]:
    """The report's epochs 20, 50, 75, 200, or the nearest this run has (no repeats)."""
    chosen: list[int] = []
    for wanted in REPORT_EPOCHS:
        epoch = nearest(wanted, available)
        if epoch not in chosen:
            chosen.append(epoch)
    return chosen


def _jump(key: str, epoch: int, then=None) -> None:
    st.session_state[key] = epoch
    if then is not None:
        then()


def epoch_jumps(key: str, options: list[int], then=None) -> None:
    """One button per report epoch (or the nearest saved one): a click sets the widget `key`."""
    if len(options) < 2:
        return
    jumps = report_epochs(options)
    if options[0] not in jumps:
        jumps.insert(0, options[0])  # the lecture starts on epoch 1: noise
    with st.container(horizontal=True, gap="small", key=f"{key}_jumps"):
        for epoch in jumps:
            st.button(str(epoch), key=f"{key}_jump_{epoch}", on_click=_jump,
                      args=(key, epoch, then),
                      type="primary" if st.session_state.get(key) == epoch else "secondary")


def epoch_control(label: str, options: list[int], key: str) -> int:
    """Pick one of `options` (sorted epochs), starting on the newest, with jump buttons."""
    follow_newest(key, options)
    if len(options) == 1:
        st.session_state.pop(key, None)
        st.markdown(_("**{label}:** {epoch} (the only one so far)").format(label=label,
                                                                           epoch=options[0]))
        return options[0]
    epoch = int(st.select_slider(label, options, key=key))
    epoch_jumps(key, options)
    return epoch


# ---------------------------------------------------------------------------------------------
# Presentation mode and explanations


def presenting() -> bool:
    """Presentation mode: figures get the screen; controls, titles and chrome are hidden.

    Turned on by the sidebar toggle or by opening the app with ?present=1.
    """
    if PRESENT_KEY not in st.session_state:
        st.session_state[PRESENT_KEY] = st.query_params.get(PRESENT_KEY, "0") in ("1", "true")
    return bool(st.session_state[PRESENT_KEY])


def _sync_present_parameter() -> None:
    if st.session_state.get(PRESENT_KEY):
        st.query_params[PRESENT_KEY] = "1"
    else:
        st.query_params.pop(PRESENT_KEY, None)


def stop_presenting() -> None:
    st.session_state[PRESENT_KEY] = False
    _sync_present_parameter()


def presentation_toggle() -> None:
    presenting()
    st.toggle(_("Presentation mode"), key=PRESENT_KEY, on_change=_sync_present_parameter,
              help=_("Hide the controls and give the figure the screen (or open the app with "
                     "?present=1). Press the toggle again to get the controls back."))


def explain(text: str) -> None:
    """A short explanation a student can read from the back of the hall."""
    with st.container(border=True):
        st.markdown(text)


def symptom_notes(records, training: bool, run_name: str) -> None:
    """Name what a run's numbers show (cgan.symptoms), in a student's words: a warning per
    symptom while the run trains, a note once it is done; while it trains and looks healthy,
    one line that says the check was made."""
    found = diagnose(records)
    for symptom in found:
        sentence = _(symptom.template).format(**symptom.values)
        if training:
            st.warning(_("**Epoch {epoch}:** {sentence}").format(epoch=symptom.epoch,
                                                                  sentence=sentence),
                       icon=":material/warning:")
        else:
            st.info(_("**Note on {run}:** {sentence}").format(run=plain(run_name), sentence=sentence),
                    icon=":material/info:")
    if not found and training and records:
        st.caption(_("Health check at epoch {epoch}: no sign of a failing game "
                     "(discriminator winning, mode collapse, learning rate too high) or of labels "
                     "not yet learned.").format(epoch=records[-1].epoch))
