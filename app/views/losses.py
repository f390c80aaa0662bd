"""Loss curves: D and G loss per epoch (report Figure 5), epoch time, quality if measured, and
the symptom the numbers show (cgan.symptoms), named while the run trains."""

from __future__ import annotations

import math
import statistics

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import common, plots, widgets
from app.i18n import N_, _
from app.text import plain
from cgan.runs import list_runs

D_REFERENCE = math.log(4)  # D's loss when it outputs 1/2 for every image: it cannot tell
G_REFERENCE = math.log(2)  # G's loss at that point

LOSS_HEIGHT = 480  # the loss chart; the two quality charts beside it share its height
METRIC_HEIGHT = 230
CHART_MIN_WIDTH = 380  # pixels: two charts share a row where each gets this much, else they stack

st.title(_("Loss curves"))
st.html(f"""<style>
.st-key-losses_row [data-testid='stHorizontalBlock'] {{ flex-wrap: wrap; }}
.st-key-losses_row [data-testid='stColumn'] {{ flex: 1 1 {CHART_MIN_WIDTH}px !important;
  min-width: min({CHART_MIN_WIDTH}px, 100%); }}
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
            ("d_loss", _("D loss"), "solid", plots.BLUE),
            ("g_loss", _("G loss"), "solid", plots.ORANGE),
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
                     annotation_text=_("log 4 ≈ 1.39: D can't tell"), annotation_position="top right")
    figure.add_hline(y=G_REFERENCE, line=dict(color="#777777", width=1.5, dash="dash"),
                     annotation_text="log 2 ≈ 0.69", annotation_position="bottom right")
    plots.style(figure, _("D and G loss per epoch"), x_title=_("Epoch"), y_title=_("Loss"),
                height=LOSS_HEIGHT)
    figure.update_yaxes(type="log" if log else "linear")
    return figure


def device_name(run) -> str:
    """Where a run trained, as its status.json records it ("cpu", "cuda", ...)."""
    device = str(run.status().get("device") or "")
    kind = device.split(":")[0].lower()
    names = {"cpu": _("the CPU"), "cuda": _("a GPU (CUDA)"), "mps": _("an Apple GPU (MPS)")}
    return names.get(kind, device or _("a device not recorded"))


TIME_SUBTITLE = N_("Training only (the D and G steps): not the quality measurement or saving")


def time_figure(curves: dict) -> go.Figure:
    figure = go.Figure()
    for index, (name, records) in enumerate(curves.items()):
        figure.add_trace(go.Scatter(
            x=[r.epoch for r in records], y=[r.epoch_seconds for r in records],
            name=name, mode="lines+markers" if len(records) < 30 else "lines",
            line=dict(color=plots.COLOURS[index % len(plots.COLOURS)], width=3),
            hovertemplate=_("%{y:.2f} s"),
        ))
    plots.style(figure, _("Training time per epoch"), x_title=_("Epoch"), y_title=_("Seconds"))
    figure.update_layout(title_subtitle=dict(text=_(TIME_SUBTITLE), font=dict(size=plots.TEXT_PX)),
                         margin_t=80)
    return figure


def time_caption(curves: dict, runs: dict) -> str:
    """What the epoch times include, and where and how evenly each run took them."""
    parts = []
    for name, records in curves.items():
        training = [r.epoch_seconds for r in records]
        parts.append(_(
            "**{run}**, on {device}: {fastest} to {slowest} s of training per epoch "
            "(median {median} s), {wall} s per epoch in all"
        ).format(run=plain(name), device=device_name(runs[name]), fastest=f"{min(training):.2f}",
                 slowest=f"{max(training):.2f}", median=f"{statistics.median(training):.2f}",
                 wall=f"{statistics.median(r.wall_seconds for r in records):.2f}"))
    return _("Each point is the time an epoch spent training the two networks (the D and G steps). "
             "Measuring quality, drawing the sample grid and saving come on top: \"in all\" is the "
             "time from one epoch to the next. {runs}. The same training runs "
             "slower, and less evenly, on a machine busy with other work.").format(
                 runs=_("; ").join(parts))


def metric_figure(curves: dict, key: str, title: str, y_title: str, scale: float = 1.0,
                  x_title: str | None = N_("Epoch")):
    """One quality measure per measured epoch, a line per run in the run's colour of the loss
    chart (so no legend: the loss chart's names the runs)."""
    figure = go.Figure()
    for index, (name, records) in enumerate(curves.items()):
        points = [(r.epoch, r.metrics[key]) for r in records
                  if isinstance(r.metrics, dict) and isinstance(r.metrics.get(key), (int, float))]
        if points:
            figure.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[p[1] * scale for p in points], name=name,
                mode="lines+markers" if len(points) < 40 else "lines",
                line=dict(color=plots.COLOURS[index % len(plots.COLOURS)], width=3),
                hovertemplate="%{y:.3g}",
            ))
    if not figure.data:
        return None
    plots.style(figure, _(title), x_title=_(x_title) if x_title else None, y_title=_(y_title),
                height=METRIC_HEIGHT, legend=False)
    figure.update_layout(margin_t=40)
    return figure


def show_symptoms(run, records) -> None:
    """What the run's numbers show, in the same words as the Train page's job view."""
    with st.container(key="losses_symptoms"):
        widgets.symptom_notes(records, training=run.state() == "running", run_name=run.name)


with common.page_errors():
    run = common.current_run()
    if run is not None:
        by_name = {r.name: r for r in list_runs()}
        names = list(by_name)
        if st.session_state.get("losses_for") != run.name or "losses_runs" not in st.session_state:
            st.session_state["losses_runs"] = [run.name]
        st.session_state["losses_runs"] = [n for n in st.session_state["losses_runs"] if n in names]
        st.session_state["losses_for"] = run.name
        # One row of controls, so the charts below start high enough to end on the first screen.
        with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):
            shown = st.multiselect(_("Runs"), names, key="losses_runs",
                                   help=_("Add runs to overlay their curves."),
                                   placeholder=_("Choose options"))
            log = st.toggle(_("Log scale"), key="losses_log", width="content")
            window = st.slider(_("Smoothing (epochs averaged)"), 1, 25, 1, key="losses_smooth",
                               width=260)
        curves = {}
        for name in shown:
            records = common.history(by_name[name])
            if records:
                curves[name] = records
            else:
                st.info(_("Run {run} has no finished epoch yet.").format(run=plain(name)))
        if run.name in curves:
            show_symptoms(run, curves[run.name])
        if curves:
            accuracy = metric_figure(curves, "accuracy", N_("Classifier accuracy"), N_("Accuracy (%)"),
                                     scale=100, x_title=None)
            frechet = metric_figure(curves, "frechet", N_("Fréchet distance to real"),
                                    N_("Distance ↓"))
            if (accuracy is None) != (frechet is None):  # one quality chart: the loss chart's size
                (accuracy or frechet).update_layout(height=LOSS_HEIGHT, xaxis_title_text=_("Epoch"))
            with st.container(key="losses_row"):
                left, right = st.columns(2) if (accuracy or frechet) else (st.container(), None)
            with left:
                plots.show(loss_figure(curves, window, log), key="losses_chart")
            if right is not None:
                with right:
                    for figure, key in ((accuracy, "losses_accuracy"), (frechet, "losses_frechet")):
                        if figure is not None:
                            plots.show(figure, key=key)
            common.explain(_(
                "**What the losses mean.** D (the discriminator) is scored on telling real digits "
                "from generated ones; G (the generator) is scored on fooling D. Early on D wins "
                "easily: low D loss, high G loss. As G improves, D's loss rises toward "
                "**log 4 ≈ 1.39**, the loss of a D that answers 50/50 for every image, and G's "
                "falls toward log 2 ≈ 0.69. The curves flatten long before the pictures stop "
                "improving, so look at the grids (and the quality curves) too."
            ))
            plots.show(time_figure(curves), key="losses_time")
            st.caption(time_caption(curves, by_name))
