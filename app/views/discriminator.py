"""The discriminator's verdict: how sure D is that a digit is real, what D and the classifier make
of a digit drawn with the mouse, and how D's view changes over the epochs (histograms of D(x) on
real and generated digits, the fraction it gets right)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import access, common, plots
from app.i18n import N_, _, formatter
from app.numbers import percent
from cgan import verdict
from cgan.classifier import MetricsError, classify, load_classifier
from cgan.runs import Run

try:  # optional: a machine set up from an older requirements file lacks it
    from streamlit_drawable_canvas import st_canvas
except (ImportError, AttributeError):  # AttributeError: a Streamlit without components v2
    st_canvas = None

REAL = N_("A real digit")  # the widget's values; shown through _()
GENERATED = N_("A generated digit")
REAL_COLOUR, GENERATED_COLOUR, ASKED_COLOUR, OTHER_COLOUR = plots.BLUE, plots.ORANGE, plots.BLUE, "#9AA4B2"
NO_WEIGHTS = N_(
    "Run {name} has no discriminator weights, so there is no verdict to show. Runs trained by the "
    "current trainer keep them (Train page, or `python -m cgan.train --out checkpoints/NAME`)."
)
NO_CANVAS = N_("Drawing a digit needs one more package: {command}")
CANVAS_COMMAND = "`pip install streamlit-drawable-canvas==0.13.0`"


@st.cache_resource(show_spinner=False, max_entries=48)
def _discriminator(path: str, mtime_ns: int, size: int, run_path: str, epoch: int):
    return Run(run_path).load_discriminator(epoch)


def discriminator(run: Run, epoch: int):
    """D after `epoch`, loaded once per version of its weights file."""
    return _discriminator(*common.file_key(run.discriminator_path(epoch)), str(run.path), epoch)


def epoch_view(run: Run, epoch: int) -> verdict.EpochView:
    """D's view at `epoch`, computed once per server for each version of the two weight files
    (app.preload.warm_views can compute every run's views in the background as the server starts)."""
    return verdict.remembered_view(run, epoch)


def label_figure(probabilities: np.ndarray, asked: int) -> go.Figure:
    """D's verdict on one image under each of the ten labels, the asked one in colour."""
    colours = [ASKED_COLOUR if d == asked else OTHER_COLOUR for d in range(10)]
    shares = [percent(p) for p in probabilities]
    figure = go.Figure(go.Bar(
        x=[str(d) for d in range(10)], y=(probabilities * 100).tolist(), marker_color=colours,
        # The axis says "% real": "57", "99+", "<1" stay 16 px on the drawing's narrow bars.
        text=[share.replace("%", "") for share in shares], textposition="outside", cliponaxis=False,
        textfont=dict(size=plots.TEXT_PX, color="#000000"), customdata=shares,
        hovertemplate=_("label %{x}: %{customdata} real") + "<extra></extra>",
    ))
    plots.style(figure, _("If the label were…"), y_title=_("D: % real"), height=340, legend=False)
    plots.digit_axis(figure, N_("Label given to D"))
    figure.update_yaxes(range=[0, 115], tickvals=[0, 25, 50, 75, 100])
    figure.update_layout(hovermode="closest", uniformtext=dict(minsize=plots.TEXT_PX, mode="show"))
    return figure


def draw_a_digit(run: Run, epoch: int) -> None:
    """A canvas; the 28x28 the networks see; D's verdict under each label and the classifier's reading."""
    if st_canvas is None:
        st.info(_(NO_CANVAS).format(command=CANVAS_COMMAND))
        return
    # The canvas keeps its 280 px (10 per MNIST pixel) in the first column even at 1280x720.
    canvas_column, seen_column, chart_column = st.columns([37, 20, 43], gap="small")
    with canvas_column:
        st.caption(_("Draw here"))
        drawn = st_canvas(
            stroke_width=verdict.STROKE_WIDTH, stroke_color="#FFFFFF", background_color="#000000",
            width=verdict.CANVAS, height=verdict.CANVAS, return_image_data=True, key="discriminator_canvas",
        )
    digit = verdict.digit_from_drawing(drawn.image_data) if drawn.image_data is not None else None
    if digit is None:
        seen_column.markdown(_("Draw a digit with the mouse, about as tall as the box. Hover over "
                               "the canvas for its tools: the bin clears it."))
        return
    try:
        reading = classify(digit[None], load_classifier())
    except MetricsError as exc:
        reading = None
        seen_column.warning(str(exc))
    if not access.allow_generation():
        return
    every_label = verdict.verdict_for_every_label(discriminator(run, epoch), digit)
    with seen_column:
        common.show_image(common.upscale(digit, 8), caption=_("What the networks see"),
                          max_height="224px")
        if reading is not None:
            read = int(reading.predictions[0])
            st.markdown(_("### Reads {digit}").format(digit=read))
            st.markdown(_("The classifier reads a {digit}, {share} sure.").format(
                digit=read, share=percent(reading.confidence[0])))
    with chart_column:
        asked = read if reading is not None else int(np.argmax(every_label))
        plots.show(label_figure(every_label, asked), key="discriminator_draw_labels")
        st.caption(_("D at epoch {epoch}: is your drawing a real digit of each label?").format(
            epoch=epoch))


def histogram_figure(view: verdict.EpochView) -> go.Figure:
    real_counts, generated_counts = view.histograms()
    centres = (verdict.BINS[:-1] + verdict.BINS[1:]) / 2 * 100
    figure = go.Figure([
        go.Bar(x=centres.tolist(), y=real_counts.tolist(), name=_("Real test digits"),
               marker_color=REAL_COLOUR, opacity=0.75,
               hovertemplate=_("%{y} real digits") + "<extra></extra>"),
        go.Bar(x=centres.tolist(), y=generated_counts.tolist(), name=_("Generated digits"),
               marker_color=GENERATED_COLOUR, opacity=0.75,
               hovertemplate=_("%{y} generated digits") + "<extra></extra>"),
    ])
    plots.style(figure, _("Epoch {epoch}: what D says").format(epoch=view.epoch), _("D: % real"),
                _("Digits"), height=420)
    figure.update_layout(barmode="overlay", bargap=0.05, hovermode="x unified")
    figure.update_xaxes(range=[0, 100], dtick=10, tickformat="d")
    figure.add_vline(x=50, line_dash="dash", line_color="#000")
    return figure


def fraction_figure(views: list[verdict.EpochView], chosen: int) -> go.Figure:
    epochs = [v.epoch for v in views]
    right = [v.fraction_right * 100 for v in views]
    shares = [percent(v.fraction_right) for v in views]
    figure = go.Figure(go.Scatter(x=epochs, y=right, mode="lines+markers", name=_("D right"),
                                  customdata=shares, line=dict(color="#000", width=3),
                                  hovertemplate=_("epoch %{x}: %{customdata} right")
                                  + "<extra></extra>"))
    if chosen in epochs:
        picked = epochs.index(chosen)
        figure.add_trace(go.Scatter(x=[chosen], y=[right[picked]], mode="markers", showlegend=False,
                                    marker=dict(size=16, color=GENERATED_COLOUR), hoverinfo="skip"))
    plots.style(figure, _("How often D is right"), _("Epoch"), _("% right"), height=420, legend=False)
    figure.update_layout(hovermode="closest")
    figure.update_yaxes(range=[0, 105], tickvals=[0, 25, 50, 75, 100])
    figure.add_hline(y=50, line_dash="dash", line_color="#000", annotation_text=_("a coin toss"),
                     annotation_position="bottom right")
    return figure


def reading_guide(epoch: int, digit: int, every_label: np.ndarray, view: verdict.EpochView) -> str:
    """What D's verdict on one digit means, and what D's numbers are at that epoch."""
    lowest = int(np.argmin(every_label)) == digit
    return (
        _("D gives the probability that the picture is a **real digit of the label it is told**; the "
          "generator wins when its digits get high scores for their own labels.")
        + "\n\n"
        + _("In training D only ever saw matching pairs (a real digit with its own label, a generated "
            "digit with the label asked for): its verdict on a mismatched pair, such as a 3 presented "
            "as \"8\", means nothing in particular.") + " "
        + (_("Here label {digit} gets D's lowest score of the ten.").format(digit=digit) + " "
           if lowest else "")
        + _("D's score is relative to what G draws at epoch {epoch}: D learns to reject G's current "
            "{digit}s, so a real {digit} that looks like them scores low; it is not a reading of the "
            "digit.").format(epoch=epoch, digit=digit)
        + "\n\n"
        + _("At epoch {epoch} D calls **{real} of real digits real** and **{fake} of generated ones "
            "fake** ({count} of each, in D's view across the epochs below).").format(
            epoch=epoch, real=percent(view.real_called_real),
            fake=percent(view.generated_called_fake), count=len(view.real))
    )


def view_across_epochs(run: Run, judged: list[int]) -> None:
    """The histogram of the chosen epoch first, then the fraction D gets right at every epoch.

    A fragment: moving its epoch redraws this section only. The chosen epoch's view is what the
    screen shows first; the other epochs follow, with their progress in the curve's place."""
    with common.page_errors():
        view_epoch = common.epoch_control(_("Epoch of the histogram"), judged, "discriminator_view_epoch")
        chosen_view = epoch_view(run, view_epoch)
        histogram_column, fraction_column = st.columns(2, gap="medium")
        with histogram_column:
            plots.show(histogram_figure(chosen_view), key="discriminator_histogram")
        st.caption(_(
            "{real} real test digits and {generated} digits from the same "
            "epoch's generator ({per_label} of each label). At epoch {epoch} D is right about "
            "{share} of them (real called real, generated called fake)."
        ).format(real=len(chosen_view.real), generated=len(chosen_view.generated),
                 per_label=verdict.view_per_digit(run), epoch=view_epoch,
                 share=percent(chosen_view.fraction_right)))
        common.explain(_(
            "Early on D is sure: real digits near 100%, generated ones near 0%. As the generator "
            "improves the two humps move together and D's hit rate sinks towards a coin toss (50%): "
            "the game the losses describe, seen from D's side."
        ))
        with fraction_column:
            slot = st.empty()
        missing = [e for e in judged if not verdict.is_remembered(run, e)]
        views = []
        for epoch in judged:
            if epoch in missing:
                done = missing.index(epoch)
                slot.progress(done / len(missing), text=_(
                    "Asking D about epoch {epoch} ({done} of the {count} not seen yet)…").format(
                    epoch=epoch, done=done + 1, count=len(missing)))
            views.append(epoch_view(run, epoch))
        with slot:
            plots.show(fraction_figure(views, view_epoch), key="discriminator_fraction")


st.title(_("The discriminator's verdict"))

with common.page_errors():
    run = common.current_run()
    complete = common.epochs(run) if run is not None else []
    judged = sorted(set(run.discriminator_epochs(complete)) & set(common.weight_epochs(run))) if complete else []
    if run is not None and complete and not judged:
        st.info(_(NO_WEIGHTS).format(name=run.name))
    elif judged:
        st.subheader(_("Ask D about one digit"))
        source_column, epoch_column = st.columns([6, 4], gap="medium")
        source = source_column.segmented_control(
            _("Show D"), [REAL, GENERATED], default=GENERATED, required=True,
            key="discriminator_source", format_func=formatter(),
        ) or GENERATED
        with epoch_column:
            epoch = common.epoch_control(_("Epoch"), judged, "discriminator_epoch")
        digit = common.digit_control("discriminator_digit")
        seed_column, _spare = st.columns([6, 4])
        with seed_column:
            seed = common.seed_control("discriminator_seed")
        if not access.allow_generation():
            st.stop()
        if source == REAL:
            image = common.real_digits(digit, 1, seed)[0]
            what = _("A real {digit} (MNIST training set, seed {seed})").format(digit=digit, seed=seed)
        else:
            image = common.samples(run, epoch, digit, seed, 1)[0]
            what = _("A generated {digit} (seed {seed}, epoch {epoch})").format(digit=digit, seed=seed,
                                                                                epoch=epoch)
        every_label = verdict.verdict_for_every_label(discriminator(run, epoch), image)

        picture_column, chart_column = st.columns([2, 3], gap="large")
        with picture_column:
            common.show_image(common.upscale(image, 10), caption=what, max_height="300px")
            st.markdown(_("## D: {share} real").format(share=percent(every_label[digit])))
            st.markdown(_("D at epoch {epoch}, asked “is this a real {digit}?”").format(epoch=epoch,
                                                                                       digit=digit))
        with chart_column:
            plots.show(label_figure(every_label, digit), key="discriminator_labels")
        common.explain(reading_guide(epoch, digit, every_label, epoch_view(run, epoch)))

        st.subheader(_("Draw a digit"))
        draw_a_digit(run, epoch)

        st.subheader(_("D's view across the epochs"))
        st.fragment(view_across_epochs)(run, judged)
