"""One look for every chart in the app: a Plotly template for a projector at the back of a hall.

    from app import plots

    figure = go.Figure(...)
    plots.style(figure, "D and G loss per epoch", x_title="Epoch", y_title="Loss")
    plots.show(figure, key="losses_chart")

Black text, none under 16 px (ticks and legend 16, axis titles 18, titles 20); titles short
enough for a chart 400 pixels wide and kept inside the chart (they are laid out with
``automargin``); bold, colour-blind-safe lines. Digit axes name every digit 0-9 (``digit_axis``).
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from app.i18n import N_, _

TEMPLATE = "cgan"
BLUE, ORANGE, GREEN, PURPLE, RED, TEAL = "#0B4F9C", "#C2410C", "#15803D", "#7E22CE", "#B91C1C", "#0E7490"
GREY = "#444444"
COLOURS = (BLUE, ORANGE, GREEN, PURPLE, RED, TEAL)  # one per run when runs are overlaid
TEXT_PX = 16  # the smallest chart text: ticks, legend, annotations, bar values
LABEL_PX = 18  # axis titles
TITLE_PX = 20
HEIGHT = 440

pio.templates[TEMPLATE] = go.layout.Template(layout=go.Layout(
    font=dict(family="Arial, Helvetica, sans-serif", size=LABEL_PX, color="#000000"),
    title=dict(font=dict(size=TITLE_PX, color="#000000"), x=0, xanchor="left", xref="paper",
               yref="container", y=0.98, yanchor="top", automargin=True),
    paper_bgcolor="#FFFFFF", plot_bgcolor="#FFFFFF", colorway=list(COLOURS),
    hovermode="x unified", hoverlabel=dict(font=dict(size=TEXT_PX)),
    legend=dict(orientation="h", x=0, xanchor="left", y=-0.2, yanchor="top",
                font=dict(size=TEXT_PX), bgcolor="rgba(255,255,255,0.85)"),
    margin=dict(l=10, r=30, t=50, b=10),  # r: room for the last tick's label ("200") at the edge
    xaxis=dict(showgrid=True, gridcolor="#D0D5DD", linecolor="#000000", ticks="outside",
               tickfont=dict(size=TEXT_PX), title=dict(font=dict(size=LABEL_PX), standoff=8),
               automargin=True, zeroline=False),
    yaxis=dict(showgrid=True, gridcolor="#D0D5DD", linecolor="#000000", ticks="outside",
               tickfont=dict(size=TEXT_PX), title=dict(font=dict(size=LABEL_PX), standoff=8),
               automargin=True, zeroline=False),
    # A light box behind each note, so it reads where a curve runs through it.
    annotationdefaults=dict(font=dict(size=TEXT_PX, color="#000000"), bgcolor="rgba(255,255,255,0.85)"),
    bargap=0.25,
))


def style(figure: go.Figure, title: str, x_title: str | None = None, y_title: str | None = None,
          height: int = HEIGHT, legend: bool = True) -> go.Figure:
    """The app's look for `figure`: template, title, axis titles, height; epochs as whole numbers."""
    figure.update_layout(template=TEMPLATE, title_text=title, height=height, showlegend=legend)
    if x_title is not None:
        figure.update_layout(xaxis_title_text=x_title)
    if y_title is not None:
        figure.update_layout(yaxis_title_text=y_title)
    xs = [x for trace in figure.data if trace.x is not None for x in trace.x]
    if xs and all(isinstance(x, (int, float)) for x in xs):
        figure.update_xaxes(tickformat="d", dtick=1 if max(xs) <= 12 else None)
    return figure


def digit_axis(figure: go.Figure, title: str = N_("Digit asked for")) -> go.Figure:
    """An x axis with every digit 0-9 named (never 0, 2, 4 ... only); `title` in the session's
    language (the default is translated here)."""
    figure.update_xaxes(title_text=_(title), type="category", tickmode="array",
                        tickvals=[str(d) for d in range(10)], ticktext=[str(d) for d in range(10)],
                        categoryorder="array", categoryarray=[str(d) for d in range(10)],
                        tickfont=dict(size=LABEL_PX), showgrid=False)
    return figure


def show(figure: go.Figure, key: str) -> None:
    """Draw a styled figure the width of its column (Streamlit's own theme would override ours)."""
    st.plotly_chart(figure, key=key, theme=None, width="stretch",
                    config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]})
