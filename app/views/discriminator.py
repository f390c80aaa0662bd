"""The discriminator's verdict: how sure D is that a digit is real, what D and the classifier make
of a digit drawn with the mouse, and how D's view changes over the epochs (histograms of D(x) on
real and generated digits, the fraction it gets right)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import common
from cgan import verdict
from cgan.classifier import MetricsError, classify, load_classifier
from cgan.runs import Run

try:  # optional: a machine set up from an older requirements file lacks it
    from streamlit_drawable_canvas import st_canvas
except (ImportError, AttributeError):  # AttributeError: a Streamlit without components v2
    st_canvas = None

REAL = "A real digit"
GENERATED = "A generated digit"
PER_DIGIT = 50  # digits of each label per epoch in D's view: 500 real, 500 generated
FONT = dict(size=18, color="#000000")
REAL_COLOUR, GENERATED_COLOUR, ASKED_COLOUR, OTHER_COLOUR = "#0B4F9C", "#C2410C", "#0B4F9C", "#9AA4B2"
NO_WEIGHTS = (
    "Run {name} has no discriminator weights, so there is no verdict to show. Runs trained by the "
    "current trainer keep them (Train page, or `python -m cgan.train --out checkpoints/NAME`)."
)
NO_CANVAS = "Drawing a digit needs one more package: `pip install streamlit-drawable-canvas==0.13.0`"


@st.cache_resource(show_spinner=False, max_entries=48)
def _discriminator(path: str, mtime_ns: int, size: int, run_path: str, epoch: int):
    return Run(run_path).load_discriminator(epoch)


def discriminator(run: Run, epoch: int):
    """D after `epoch`, loaded once per version of its weights file."""
    return _discriminator(*common.file_key(run.discriminator_path(epoch)), str(run.path), epoch)


@st.cache_data(show_spinner=False, max_entries=1024)
def _view(d_key: tuple, g_key: tuple, run_path: str, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    # Keyed by both weight files' versions: a rewritten file is judged again.
    view = verdict.epoch_view(Run(run_path), epoch, per_digit=PER_DIGIT)
    return view.real, view.generated


def epoch_view(run: Run, epoch: int) -> verdict.EpochView:
    keys = common.file_key(run.discriminator_path(epoch)), common.file_key(run.weights_path(epoch))
    real, generated = _view(*keys, str(run.path), epoch)
    return verdict.EpochView(epoch, real, generated)


def style(figure: go.Figure, title: str, x_title: str, y_title: str, height: int = 380) -> go.Figure:
    figure.update_layout(
        title=dict(text=title, font=dict(size=22)), font=FONT, height=height,
        xaxis_title=x_title, yaxis_title=y_title, margin=dict(l=70, r=20, t=70, b=60),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
        plot_bgcolor="#FFFFFF", paper_bgcolor="#FFFFFF",
    )
    figure.update_xaxes(showgrid=True, gridcolor="#D0D5DD", linecolor="#000", ticks="outside")
    figure.update_yaxes(showgrid=True, gridcolor="#D0D5DD", linecolor="#000", ticks="outside")
    return figure


def label_figure(probabilities: np.ndarray, asked: int) -> go.Figure:
    """D's verdict on one image under each of the ten labels, the asked one in colour."""
    colours = [ASKED_COLOUR if d == asked else OTHER_COLOUR for d in range(10)]
    figure = go.Figure(go.Bar(
        x=[str(d) for d in range(10)], y=(probabilities * 100).tolist(), marker_color=colours,
        text=[f"{p * 100:.0f}" for p in probabilities], textposition="outside", cliponaxis=False,
        textfont=dict(size=16),  # the axis says "% real": numbers alone stay 16 px on narrow bars
        hovertemplate="label %{x}: %{y:.0f}% real<extra></extra>",
    ))
    figure = style(figure, "If the label were…", "Label given to D", "D: % real", height=340)
    figure.update_yaxes(range=[0, 112], dtick=25)
    figure.update_xaxes(tickmode="linear", dtick=1)  # every label named, however narrow the chart
    return figure


def draw_a_digit(run: Run, epoch: int) -> None:
    """A canvas; the 28x28 the networks see; D's verdict under each label and the classifier's reading."""
    if st_canvas is None:
        st.info(NO_CANVAS)
        return
    # The canvas keeps its 280 px (10 per MNIST pixel) in the first column even at 1280x720.
    canvas_column, seen_column, chart_column = st.columns([37, 20, 43], gap="small")
    with canvas_column:
        st.caption("Draw here")
        drawn = st_canvas(
            stroke_width=verdict.STROKE_WIDTH, stroke_color="#FFFFFF", background_color="#000000",
            width=verdict.CANVAS, height=verdict.CANVAS, return_image_data=True, key="discriminator_canvas",
        )
    digit = verdict.digit_from_drawing(drawn.image_data) if drawn.image_data is not None else None
    if digit is None:
        seen_column.markdown("Draw a digit with the mouse, about as tall as the box. Hover over "
                             "the canvas for its tools: the bin clears it.")
        return
    try:
        reading = classify(digit[None], load_classifier())
    except MetricsError as exc:
        reading = None
        seen_column.warning(str(exc))
    every_label = verdict.verdict_for_every_label(discriminator(run, epoch), digit)
    with seen_column:
        common.show_image(common.upscale(digit, 8), caption="What the networks see", max_height="224px")
        if reading is not None:
            read = int(reading.predictions[0])
            st.markdown(f"### Reads {read}")
            st.markdown(f"The classifier reads a {read}, {reading.confidence[0]:.0%} sure.")
    with chart_column:
        asked = read if reading is not None else int(np.argmax(every_label))
        st.plotly_chart(label_figure(every_label, asked), key="discriminator_draw_labels", theme=None)
        st.caption(f"D at epoch {epoch}: is your drawing a real digit of each label?")


def histogram_figure(view: verdict.EpochView) -> go.Figure:
    real_counts, generated_counts = view.histograms()
    centres = (verdict.BINS[:-1] + verdict.BINS[1:]) / 2 * 100
    figure = go.Figure([
        go.Bar(x=centres.tolist(), y=real_counts.tolist(), name="Real test digits", marker_color=REAL_COLOUR,
               opacity=0.75),
        go.Bar(x=centres.tolist(), y=generated_counts.tolist(), name="Generated digits", marker_color=GENERATED_COLOUR,
               opacity=0.75),
    ])
    figure = style(figure, f"Epoch {view.epoch}: what D says", "D: % real", "Digits", height=420)
    figure.update_layout(barmode="overlay", bargap=0.05, margin=dict(b=150),
                         legend=dict(orientation="h", yanchor="top", y=-0.42, xanchor="left", x=0))
    figure.update_xaxes(range=[0, 100], dtick=10)
    figure.add_vline(x=50, line_dash="dash", line_color="#000")
    return figure


def fraction_figure(views: list[verdict.EpochView], chosen: int) -> go.Figure:
    epochs = [v.epoch for v in views]
    right = [v.fraction_right * 100 for v in views]
    figure = go.Figure(go.Scatter(x=epochs, y=right, mode="lines+markers", name="D right",
                                  line=dict(color="#000", width=3),
                                  hovertemplate="epoch %{x}: %{y:.0f}% right<extra></extra>"))
    picked = epochs.index(chosen)
    figure.add_trace(go.Scatter(x=[chosen], y=[right[picked]], mode="markers", showlegend=False,
                                marker=dict(size=16, color=GENERATED_COLOUR), hoverinfo="skip"))
    figure = style(figure, "How often D is right", "Epoch", "% right", height=420)
    figure.update_layout(showlegend=False, margin=dict(b=120))
    figure.update_yaxes(range=[0, 105], dtick=25)
    figure.update_xaxes(tickformat="d", dtick=1 if epochs[-1] <= 12 else None)
    figure.add_hline(y=50, line_dash="dash", line_color="#000", annotation_text="a coin toss",
                     annotation_position="bottom right", annotation_font=dict(size=16))
    return figure


st.title("The discriminator's verdict")

with common.page_errors():
    run = common.current_run()
    complete = common.epochs(run) if run is not None else []
    judged = sorted(set(run.discriminator_epochs(complete)) & set(common.weight_epochs(run))) if complete else []
    if run is not None and complete and not judged:
        st.info(NO_WEIGHTS.format(name=run.name))
    elif judged:
        st.subheader("Ask D about one digit")
        source_column, epoch_column = st.columns([6, 4], gap="medium")
        source = source_column.segmented_control(
            "Show D", [REAL, GENERATED], default=GENERATED, required=True, key="discriminator_source"
        ) or GENERATED
        with epoch_column:
            epoch = common.epoch_control("Epoch", judged, "discriminator_epoch")
        digit = common.digit_control("discriminator_digit")
        seed_column, _ = st.columns([6, 4])
        with seed_column:
            seed = common.seed_control("discriminator_seed")
        if source == REAL:
            image = common.real_digits(digit, 1, seed)[0]
            what = f"A real {digit} (MNIST training set, seed {seed})"
        else:
            image = common.samples(run, epoch, digit, seed, 1)[0]
            what = f"A generated {digit} (seed {seed}, epoch {epoch})"
        every_label = verdict.verdict_for_every_label(discriminator(run, epoch), image)

        picture_column, chart_column = st.columns([2, 3], gap="large")
        with picture_column:
            common.show_image(common.upscale(image, 10), caption=what, max_height="300px")
            st.markdown(f"## D: {every_label[digit]:.0%} real")
            st.markdown(f"D at epoch {epoch}, asked “is this a real {digit}?”")
        with chart_column:
            st.plotly_chart(label_figure(every_label, digit), key="discriminator_labels", theme=None)
        common.explain(
            "D gives the probability that the picture is a **real digit of the label it is told**. "
            "It judges the pair: a perfect 3 presented as \"8\" should be called fake. The "
            "generator wins when its digits get high scores for their own labels."
        )

        st.subheader("Draw a digit")
        draw_a_digit(run, epoch)

        st.subheader("D's view across the epochs")
        view_epoch = common.epoch_control("Epoch of the histogram", judged, "discriminator_view_epoch")
        with st.spinner("Asking D about real and generated digits…"):
            views = [epoch_view(run, e) for e in judged]
        chosen_view = views[judged.index(view_epoch)]
        histogram_column, fraction_column = st.columns(2, gap="medium")
        histogram_column.plotly_chart(histogram_figure(chosen_view), key="discriminator_histogram", theme=None)
        fraction_column.plotly_chart(fraction_figure(views, view_epoch), key="discriminator_fraction", theme=None)
        st.caption(
            f"{len(chosen_view.real)} real test digits and {len(chosen_view.generated)} digits from the same "
            f"epoch's generator ({PER_DIGIT} of each label). At epoch {view_epoch} D is right about "
            f"{chosen_view.fraction_right:.0%} of them (real called real, generated called fake)."
        )
        common.explain(
            "Early on D is sure: real digits near 100 %, generated ones near 0 %. As the generator "
            "improves the two humps move together and D's hit rate sinks towards a coin toss (50 %): "
            "the game the losses describe, seen from D's side."
        )
