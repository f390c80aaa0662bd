"""The app's one chart template: no text under 16 px anywhere a chart writes, every digit named."""

from __future__ import annotations

import plotly.graph_objects as go

from app import plots


def sizes(figure: go.Figure) -> dict[str, int]:
    """The font size of each kind of text: the figure's own, else its template's, else the base."""
    layout, template = figure.layout, figure.layout.template.layout  # the template style() set
    base = layout.font.size or template.font.size

    def size(own, default):
        return own or default or base

    found = {"font": base, "title": size(layout.title.font.size, template.title.font.size),
             "legend": size(layout.legend.font.size, template.legend.font.size)}
    for axis in ("xaxis", "yaxis"):
        mine, theirs = layout[axis], template[axis]
        found[f"{axis} ticks"] = size(mine.tickfont.size, theirs.tickfont.size)
        found[f"{axis} title"] = size(mine.title.font.size, theirs.title.font.size)
    for a in layout.annotations:
        found[f"annotation {a.text}"] = size(a.font.size, template.annotationdefaults.font.size)
    return found


def test_every_chart_text_is_at_least_16_px():
    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[1.0, 2.0, 1.5], name="D loss"))
    figure.add_hline(y=1.39, annotation_text="log 4")
    plots.style(figure, "D and G loss per epoch", x_title="Epoch", y_title="Loss")
    found = sizes(figure)
    assert min(found.values()) >= 16, found
    assert found["title"] > found["xaxis title"] >= found["xaxis ticks"] >= 16
    assert figure.layout.xaxis.dtick == 1  # few epochs: every one named, as a whole number


def test_digit_axis_names_every_digit():
    figure = go.Figure(go.Bar(x=[str(d) for d in range(10)], y=list(range(10))))
    plots.digit_axis(plots.style(figure, "Accuracy per digit"))
    assert list(figure.layout.xaxis.tickvals) == [str(d) for d in range(10)]
    assert list(figure.layout.xaxis.ticktext) == [str(d) for d in range(10)]
    assert min(sizes(figure).values()) >= 16
