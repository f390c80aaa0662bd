"""Interpolation: morph the handwriting (two noise seeds, one digit) or the digit (two labels, one
noise vector), as a strip of steps with PNG and GIF downloads."""

from __future__ import annotations

import streamlit as st

from app import access, common
from app.i18n import N_, _, formatter
from app.numbers import percent
from cgan import interpolate, verdict
from cgan.limits import MAX_SEED

HANDWRITING = N_("Handwriting")  # the widget's values; shown through _()
CONTENT = N_("Digit")
PATH_NAMES = {"linear": N_("Straight"), "spherical": N_("Spherical")}
PATH_IN_CAPTION = {"linear": N_("straight path"), "spherical": N_("spherical path")}
STRIP_WIDTH = 880  # the main column at 1280x720 with the sidebar open


def seed_input(label: str, key: str, default: int) -> int:
    if key not in st.session_state:
        st.session_state[key] = default
    return int(st.number_input(label, 0, MAX_SEED, step=1, key=key))


def second_digit(key: str, first: int) -> int:
    if key not in st.session_state:
        st.session_state[key] = 8 if first != 8 else 3
    digit = st.segmented_control(_("To digit"), list(range(10)), key=key, required=True)
    return 8 if digit is None else int(digit)


def show_verdicts(run, epoch: int, images, asked: list[int]) -> None:
    """D's probability that each step is a real digit of each label in `asked`, one row a label."""
    # Loaded per rerun (a small file); the discriminator page keeps its own cached copy.
    discriminator = run.load_discriminator(epoch)
    rows = []
    for label in asked:
        probabilities = verdict.verdict(discriminator, images, [label] * len(images))
        rows.append(_("**D: real {digit}?**").format(digit=label) + " "
                    + " · ".join(percent(p) for p in probabilities))
    st.markdown("  \n".join(rows))


st.title(_("Interpolation"))

with common.page_errors():
    run = common.current_run()
    saved = common.require_epochs(run, with_weights=True) if run is not None else []
    if saved:
        mode_column, steps_column, epoch_column = st.columns([5, 3, 4], gap="medium")
        mode = mode_column.segmented_control(
            _("What morphs"), [HANDWRITING, CONTENT], default=HANDWRITING, required=True,
            key="interpolate_mode", format_func=formatter(),
        ) or HANDWRITING
        steps = steps_column.slider(_("Steps"), interpolate.MIN_STEPS, 16, 7, key="interpolate_steps")
        with epoch_column:
            epoch = common.epoch_control(_("Epoch"), saved, "interpolate_epoch")
        generator = common.generator(run, epoch)

        if mode == HANDWRITING:
            digit = common.digit_control("interpolate_digit")
            first, second, path_column = st.columns([3, 3, 4], gap="medium")
            with first:
                seed_a = seed_input(_("From seed"), "interpolate_seed_a", st.session_state.get("seed", 42))
            with second:
                seed_b = seed_input(_("To seed"), "interpolate_seed_b", seed_a + 1)
            path = path_column.segmented_control(
                _("Path"), list(PATH_NAMES), format_func=formatter(PATH_NAMES), default="spherical",
                required=True, key="interpolate_path",
            ) or "spherical"
            if not access.allow_generation():
                st.stop()
            images = interpolate.handwriting_morph(generator, digit, seed_a, seed_b, steps, path)
            caption = _("Digit {digit}, seed {seed_a} → {seed_b} ({path}), epoch {epoch}").format(
                digit=digit, seed_a=seed_a, seed_b=seed_b, path=_(PATH_IN_CAPTION[path]), epoch=epoch)
            name = f"{run.name}-epoch{epoch}-digit{digit}-seeds{seed_a}-{seed_b}-{path}"
            asked = [digit]
        else:
            digit_a = common.digit_control("interpolate_from", label=_("From digit"))
            digit_b = second_digit("interpolate_to", digit_a)
            seed_column, _spare = st.columns([5, 5])
            with seed_column:
                seed = common.seed_control("interpolate_seed")
            if not access.allow_generation():
                st.stop()
            images = interpolate.digit_morph(generator, digit_a, digit_b, seed, steps)
            caption = _("Digit {digit_a} → {digit_b}, seed {seed}, epoch {epoch}").format(
                digit_a=digit_a, digit_b=digit_b, seed=seed, epoch=epoch)
            name = f"{run.name}-epoch{epoch}-digits{digit_a}-{digit_b}-seed{seed}"
            asked = [digit_a] if digit_a == digit_b else [digit_a, digit_b]

        strip = common.fitted_mosaic(images, columns=steps, width=STRIP_WIDTH, height=300)
        common.show_image(strip, caption=caption)
        if epoch in run.discriminator_epochs([epoch]):
            show_verdicts(run, epoch, images, asked)
        png_column, gif_column, _spare = st.columns([3, 3, 4])
        with png_column:
            common.download_png(_("Download PNG"), strip, f"{name}.png", key="interpolate_png")
        gif_column.download_button(
            _("Download GIF"), lambda: interpolate.animation_gif(images), file_name=f"{name}.gif",
            mime="image/gif", key="interpolate_gif", icon=":material/download:", on_click="ignore",
        )

        if mode == HANDWRITING:
            common.explain(_(
                "Left to right, the **noise** walks from one seed to the other while the label "
                "stays the same: the slant and thickness change, the digit does not. "
                "*Straight*: the middle of a straight line is shorter than real noise, so middle "
                "steps can look faint. *Spherical* turns along the sphere and keeps the noise's length."
            ))
        else:
            common.explain(_(
                "The noise stays the same; the **label** is blended: at each step the generator "
                "is told \"(1 − t) of the first digit and t of the second\". The handwriting "
                "stays while the content turns from one digit into the other."
            ))
