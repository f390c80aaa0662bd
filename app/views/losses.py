"""Loss curves: D and G loss per epoch (report Figure 5), epoch time, quality if measured, and
the symptom the numbers show (cgan.symptoms), named while the run trains."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import common, plots, widgets

D_REFERENCE = math.log(4)  # D's loss when it outputs 1/2 for every image: it cannot tell
G_REFERENCE = math.log(2)  # G's loss at that point

st.title("Loss curves")
# Two charts share a row where each gets at least 560 pixels, else they stack.
st.html("""<style>
.st-key-losses_row [data-testid='stHorizontalBlock'] { flex-wrap: wrap; }
.st-key-losses_row [data-testid='stColumn'] { flex: 1 1 560px !important; min-width: min(560px, 100%); }
</style>""")


def smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing moving average over `window` epochs (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (sums[i + 1] - sums[lo]) / (i + 1 - lo)
    return out


def loss_figure(curves: dict, window: int, log: bool) -> go.Figure:
    figure = go.Figure()
    several = len(curves) > 1
    for index, (name, records) in enumerate(curves.items()):
        x = [r.epoch for r in records]
        for loss, label, dash, colour in (
            ("d_loss", "D loss", "solid", plots.BLUE),
            ("g_loss", "G loss", "solid", plots.ORANGE),
        ):
            if several:
                colour = plots.COLOURS[index % len(plots.COLOURS)]
                dash = "solid" if loss == "d_loss" else "dot"
            figure.add_trace(go.Scatter(
                x=x, y=smooth([getattr(r, loss) for r in records], window),
                name=f"{label} ({name})" if several else label, mode="lines",
                line=dict(color=colour, width=3, dash=dash),
                hovertemplate="%{y:.3f}",
            ))
    # Short labels: they must fit a chart 560 pixels wide on a projector.
    figure.add_hline(y=D_REFERENCE, line=dict(color=plots.GREY, width=2, dash="dash"),
                     annotation_text="log 4 ≈ 1.39: D can't tell", annotation_position="top right")
    figure.add_hline(y=G_REFERENCE, line=dict(color="#777777", width=1.5, dash="dash"),
                     annotation_text="log 2 ≈ 0.69", annotation_position="bottom right")
    plots.style(figure, "D and G loss per epoch", x_title="Epoch", y_title="Loss")
    figure.update_yaxes(type="log" if log else "linear")
    return figure


def time_figure(curves: dict) -> go.Figure:
    figure = go.Figure()
    for index, (name, records) in enumerate(curves.items()):
        figure.add_trace(go.Scatter(
            x=[r.epoch for r in records], y=[r.epoch_seconds for r in records],
            name=name, mode="lines+markers" if len(records) < 30 else "lines",
            line=dict(color=plots.COLOURS[index % len(plots.COLOURS)], width=3),
            hovertemplate="%{y:.2f} s",
        ))
    return plots.style(figure, "Training time per epoch", x_title="Epoch", y_title="Seconds")


def metric_figure(curves: dict, key: str, title: str, y_title: str, scale: float = 1.0):
    figure = go.Figure()
    for index, (name, records) in enumerate(curves.items()):
        points = [(r.epoch, r.metrics[key]) for r in records
                  if isinstance(r.metrics, dict) and isinstance(r.metrics.get(key), (int, float))]
        if points:
            figure.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[p[1] * scale for p in points], name=name,
                mode="lines+markers", line=dict(color=plots.COLOURS[index % len(plots.COLOURS)], width=3),
                hovertemplate="%{y:.3g}",
            ))
    if not figure.data:
        return None
    return plots.style(figure, title, x_title="Epoch", y_title=y_title, height=360)


def show_symptoms(run, records) -> None:
    """What the run's numbers show, in the same words as the Train page's job view."""
    with st.container(key="losses_symptoms"):
        widgets.symptom_notes(records, training=common.training_state(run) == "running", run_name=run.name)


with common.page_errors():
    run = common.current_run()
    if run is not None:
        by_name = {r.name: r for r in common.runs()}
        names = list(by_name)
        if st.session_state.get("losses_for") != run.name or "losses_runs" not in st.session_state:
            st.session_state["losses_runs"] = [run.name]
        st.session_state["losses_runs"] = [n for n in st.session_state["losses_runs"] if n in names]
        st.session_state["losses_for"] = run.name
        picked, options = st.columns([3, 2], vertical_alignment="bottom")
        shown = picked.multiselect("Runs", names, key="losses_runs",
                                   help="Add runs to overlay their curves.")
        with options:
            log = st.toggle("Log scale", key="losses_log")
            window = st.slider("Smoothing (epochs averaged)", 1, 25, 1, key="losses_smooth")
        curves = {}
        for name in shown:
            records = common.history(by_name[name])
            if records:
                curves[name] = records
            else:
                st.info(f"Run {name} has no finished epoch yet.")
        if run.name in curves:
            show_symptoms(run, curves[run.name])
        if curves:
            accuracy = metric_figure(curves, "accuracy", "Classifier accuracy", "Accuracy (%)", scale=100)
            frechet = metric_figure(curves, "frechet", "Fréchet distance to real", "Distance ↓")
            with st.container(key="losses_row"):
                left, right = st.columns(2) if (accuracy or frechet) else (st.container(), None)
            with left:
                plots.show(loss_figure(curves, window, log), key="losses_chart")
            if right is not None:
                with right:
                    for figure, key in ((accuracy, "losses_accuracy"), (frechet, "losses_frechet")):
                        if figure is not None:
                            plots.show(figure, key=key)
            common.explain(
                "**What the losses mean.** D (the discriminator) is scored on telling real digits "
                "from generated ones; G (the generator) is scored on fooling D. Early on D wins "
                "easily: low D loss, high G loss. As G improves, D's loss rises toward "
                "**log 4 ≈ 1.39**, the loss of a D that answers 50/50 for every image, and G's "
                "falls toward log 2 ≈ 0.69. The curves flatten long before the pictures stop "
                "improving, so look at the grids (and the quality curves) too."
            )
            plots.show(time_figure(curves), key="losses_time")
