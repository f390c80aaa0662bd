"""Loss curves: D and G loss per epoch (report Figure 5), epoch time, and quality if measured."""

from __future__ import annotations

import math
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import common

D_REFERENCE = math.log(4)  # D's loss when it outputs 1/2 for every image: it cannot tell
G_REFERENCE = math.log(2)  # G's loss at that point
COLOURS = ("#0B4F9C", "#C2410C", "#15803D", "#7E22CE", "#B91C1C", "#0E7490")
FONT = dict(size=18, color="#000000")

st.title("Loss curves")


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


def layout(figure: go.Figure, title: str, y_title: str, log: bool = False) -> go.Figure:
    figure.update_layout(
        title=dict(text=title, font=dict(size=22)), font=FONT, hovermode="x unified",
        xaxis_title="Epoch", yaxis_title=y_title, height=460, margin=dict(l=70, r=30, t=70, b=60),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0),
        plot_bgcolor="#FFFFFF", paper_bgcolor="#FFFFFF",
    )
    last = max((max(trace.x) for trace in figure.data if trace.x), default=1)
    figure.update_xaxes(showgrid=True, gridcolor="#D0D5DD", linecolor="#000", ticks="outside",
                        tickformat="d", dtick=1 if last <= 12 else None)
    figure.update_yaxes(showgrid=True, gridcolor="#D0D5DD", linecolor="#000", ticks="outside",
                        type="log" if log else "linear")
    return figure


def loss_figure(curves: dict, window: int, log: bool) -> go.Figure:
    figure = go.Figure()
    several = len(curves) > 1
    for index, (name, records) in enumerate(curves.items()):
        x = [r.epoch for r in records]
        for loss, label, dash, colour in (
            ("d_loss", "D loss", "solid", COLOURS[0]),
            ("g_loss", "G loss", "solid", COLOURS[1]),
        ):
            if several:
                colour = COLOURS[index % len(COLOURS)]
                dash = "solid" if loss == "d_loss" else "dot"
            figure.add_trace(go.Scatter(
                x=x, y=smooth([getattr(r, loss) for r in records], window),
                name=f"{label} ({name})" if several else label, mode="lines",
                line=dict(color=colour, width=3, dash=dash),
                hovertemplate="%{y:.3f}",
            ))
    figure.add_hline(y=D_REFERENCE, line=dict(color="#444", width=2, dash="dash"),
                     annotation_text="log 4 = 1.386: D cannot tell real from fake",
                     annotation_position="top left", annotation_font=dict(size=16))
    figure.add_hline(y=G_REFERENCE, line=dict(color="#888", width=1.5, dash="dash"),
                     annotation_text="log 2 = 0.693", annotation_position="bottom left",
                     annotation_font=dict(size=16))
    return layout(figure, "Discriminator and generator loss per epoch", "Loss", log)


def time_figure(curves: dict) -> go.Figure:
    figure = go.Figure()
    for index, (name, records) in enumerate(curves.items()):
        figure.add_trace(go.Scatter(
            x=[r.epoch for r in records], y=[r.epoch_seconds for r in records],
            name=name, mode="lines+markers" if len(records) < 30 else "lines",
            line=dict(color=COLOURS[index % len(COLOURS)], width=3),
            hovertemplate="%{y:.2f} s",
        ))
    return layout(figure, "Training time per epoch (ptime)", "Seconds")


def metric_figure(curves: dict, key: str, title: str, y_title: str, scale: float = 1.0):
    figure = go.Figure()
    for index, (name, records) in enumerate(curves.items()):
        points = [(r.epoch, r.metrics[key]) for r in records
                  if isinstance(r.metrics, dict) and isinstance(r.metrics.get(key), (int, float))]
        if points:
            figure.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[p[1] * scale for p in points], name=name,
                mode="lines+markers", line=dict(color=COLOURS[index % len(COLOURS)], width=3),
                hovertemplate="%{y:.3g}",
            ))
    return layout(figure, title, y_title) if figure.data else None


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
        if curves:
            accuracy = metric_figure(curves, "accuracy", "Samples a digit classifier gets right",
                                     "Accuracy (%)", scale=100)
            frechet = metric_figure(curves, "frechet", "Fréchet distance to real digits",
                                    "Distance (lower is better)")
            if accuracy or frechet:
                left, right = st.columns(2)
                with left:
                    st.plotly_chart(loss_figure(curves, window, log), key="losses_chart",
                                    theme=None)
                with right:
                    for figure, key in ((accuracy, "losses_accuracy"), (frechet, "losses_frechet")):
                        if figure is not None:
                            st.plotly_chart(figure, key=key, theme=None)
            else:
                st.plotly_chart(loss_figure(curves, window, log), key="losses_chart", theme=None)
            common.explain(
                "**What the losses mean.** D (the discriminator) is scored on telling real digits "
                "from generated ones; G (the generator) is scored on fooling D. Early on D wins "
                "easily: low D loss, high G loss. As G improves, D's loss rises toward "
                "**log 4 ≈ 1.39**, the loss of a D that answers 50/50 for every image, and G's "
                "falls toward log 2 ≈ 0.69. The curves flatten long before the pictures stop "
                "improving, so look at the grids (and the quality curves) too."
            )
            st.plotly_chart(time_figure(curves), key="losses_time", theme=None)
