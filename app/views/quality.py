"""Quality: measured, not eyeballed. A digit classifier judges the generated digits (cgan.metrics).

Curves of conditional accuracy and Fréchet distance beside the D/G losses, per-digit accuracy and
diversity at one epoch, the samples the classifier rejects, and the nearest training images of a
generated digit ("is it copying?").
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app import common
from cgan import metrics
from cgan.data import MnistError
from cgan.runs import Run, RunError

BLUE, ORANGE, GREEN, GREY = "#0B4F9C", "#C2410C", "#15803D", "#555555"
FONT = dict(size=18, color="#000000")
REJECTED_SHOWN = 24
NEIGHBOURS = 6
SUGGESTED = 4  # epochs pre-selected for "Evaluate now"

st.title("Quality")
# The headline figures must read from the back of the hall.
st.html("<style>[data-testid='stMetricValue'] p { font-size: inherit; }</style>")


# ---------------------------------------------------------------------------------------------
# Cached measurements (keyed by the weights file's version)


@st.cache_resource(show_spinner="Measuring real MNIST digits once (a few seconds)...")
def real_figures(per_digit: int) -> dict:
    """What real digits score: the classifier's test accuracy and the Fréchet floor."""
    floor = metrics.frechet_floor(per_digit)
    return {"accuracy": metrics.real_reference().accuracy, "floor": floor["frechet"]}


@st.cache_data(show_spinner=False, max_entries=64)
def _rejected(run_path: str, epoch: int, mtime_ns: int, size: int, digit: int, per_digit: int,
              seed: int):
    generator = common.generator(Run(run_path), epoch)
    return metrics.rejected_samples(generator, digit, per_digit=per_digit, seed=seed)


def rejected(run: Run, epoch: int, digit: int, per_digit: int, seed: int) -> metrics.Rejected:
    """The very samples behind the stored per-digit accuracy (same count, same noise seed)."""
    _, mtime_ns, size = common.file_key(run.weights_path(epoch))
    return _rejected(str(run.path), epoch, mtime_ns, size, digit, per_digit, seed)


@st.cache_data(show_spinner=False, max_entries=64)
def neighbours(image: np.ndarray) -> metrics.Neighbours:
    return metrics.nearest_training_images(image, k=NEIGHBOURS)


@st.cache_resource(show_spinner=False)
def typical_real_distance() -> float:
    return metrics.typical_real_distance()


# ---------------------------------------------------------------------------------------------
# Figures


def style(figure: go.Figure, title: str, height: int = 460) -> go.Figure:
    figure.update_layout(
        title=dict(text=title, font=dict(size=22)), font=FONT, height=height, hovermode="x unified",
        margin=dict(l=70, r=70, t=60, b=120), plot_bgcolor="#FFFFFF", paper_bgcolor="#FFFFFF",
        legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0),
    )
    last = max((max(trace.x) for trace in figure.data if trace.x and isinstance(trace.x[0], int)), default=0)
    figure.update_xaxes(showgrid=True, gridcolor="#D0D5DD", linecolor="#000", ticks="outside",
                        dtick=1 if 0 < last <= 12 else None)
    figure.update_yaxes(showgrid=True, gridcolor="#D0D5DD", linecolor="#000", ticks="outside")
    return figure


def loss_figure(records) -> go.Figure:
    figure = go.Figure()
    x = [r.epoch for r in records]
    figure.add_trace(go.Scatter(x=x, y=[r.d_loss for r in records], name="D loss", mode="lines",
                                line=dict(color=BLUE, width=3), hovertemplate="%{y:.3f}"))
    figure.add_trace(go.Scatter(x=x, y=[r.g_loss for r in records], name="G loss", mode="lines",
                                line=dict(color=ORANGE, width=3), hovertemplate="%{y:.3f}"))
    figure.update_xaxes(title_text="Epoch", tickformat="d")
    figure.update_yaxes(title_text="Loss")
    return style(figure, "D and G loss per epoch")


def quality_figure(measured, real: dict | None) -> go.Figure:
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    x = [r.epoch for r in measured]
    figure.add_trace(go.Scatter(
        x=x, y=[100 * r.metrics["accuracy"] for r in measured], name="Accuracy (%)",
        mode="lines+markers", line=dict(color=GREEN, width=3), hovertemplate="%{y:.1f}%",
    ), secondary_y=False)
    figure.add_trace(go.Scatter(
        x=x, y=[r.metrics["frechet"] for r in measured], name="Fréchet distance",
        mode="lines+markers", line=dict(color=ORANGE, width=3), hovertemplate="%{y:.2f}",
    ), secondary_y=True)
    if real is not None:
        figure.add_trace(go.Scatter(
            x=[x[0], x[-1]], y=[100 * real["accuracy"]] * 2, name="Real digits",
            mode="lines", line=dict(color=GREEN, width=2, dash="dash"), hovertemplate="%{y:.1f}%",
        ), secondary_y=False)
        figure.add_trace(go.Scatter(
            x=[x[0], x[-1]], y=[real["floor"]] * 2, name="Real floor", mode="lines",
            line=dict(color=ORANGE, width=2, dash="dash"), hovertemplate="%{y:.2f}",
        ), secondary_y=True)
    figure.update_xaxes(title_text="Epoch", tickformat="d")
    figure.update_yaxes(title_text="Accuracy (%), higher is better", range=[0, 101], secondary_y=False)
    figure.update_yaxes(title_text="Fréchet distance, lower is better", rangemode="tozero",
                        showgrid=False, secondary_y=True)
    return style(figure, "Measured quality per epoch")


def per_digit_figure(values, title: str, y_title: str, colour: str, reference: float | None,
                     percent: bool) -> go.Figure:
    shown = [None if v is None else (100 * v if percent else v) for v in values]
    figure = go.Figure(go.Bar(
        x=[str(d) for d in range(10)], y=shown, marker_color=colour,
        text=[("" if v is None else (f"{v:.0f}" if percent else f"{v:.2f}")) for v in shown],
        textposition="outside", hovertemplate="digit %{x}: %{y:.3g}<extra></extra>",
    ))
    if reference is not None:
        figure.add_hline(y=reference, line=dict(color=GREY, width=2, dash="dash"))
    figure.update_xaxes(title_text="Digit asked for", type="category")
    top = max([v for v in shown if v is not None] + [reference or 0])
    figure.update_yaxes(title_text=y_title, range=[0, 110 if percent else max(1.2, top * 1.2)])
    style(figure, title, height=400)
    figure.update_layout(hovermode="closest", showlegend=False, margin=dict(b=70))
    return figure


# ---------------------------------------------------------------------------------------------
# Sections


def confidence_text(share: float) -> str:
    return "99%+" if share >= 0.995 else f"{share:.0%}"  # never a rounded-up, overconfident 100%


def has_measures(record) -> bool:
    m = record.metrics
    return isinstance(m, dict) and isinstance(m.get("accuracy"), (int, float)) and "frechet" in m


def suggested(epochs: list[int], most: int = SUGGESTED) -> list[int]:
    """A spread of epochs, first and last included."""
    if len(epochs) <= most:
        return list(epochs)
    picks = np.unique(np.round(np.linspace(0, len(epochs) - 1, most)).astype(int))
    return [epochs[i] for i in picks]


def evaluate_now(run: Run, missing: list[int]) -> None:
    st.markdown(
        f"**{len(missing)} saved epoch{'s' * (len(missing) != 1)} not measured yet.** Each takes a "
        f"few seconds ({metrics.DEFAULT_PER_DIGIT:,} samples per digit)."
    )
    if common.training_state(run) == "running":
        st.info("This run is training: measure it when it stops, or train with --metrics-every K.")
        return
    chosen = st.multiselect("Epochs to measure", missing, default=suggested(missing),
                            key=f"quality_evaluate_{run.name}")
    if st.button(f"Evaluate now ({len(chosen)} epoch{'s' * (len(chosen) != 1)})",
                 key="quality_evaluate", disabled=not chosen, icon=":material/speed:",
                 type="primary"):
        progress = st.progress(0.0, text="Measuring...")
        with st.spinner("Generating and classifying samples..."):
            for done, epoch in enumerate(sorted(chosen)):
                progress.progress(done / len(chosen), text=f"Epoch {epoch} ({done + 1} of {len(chosen)})")
                result = metrics.evaluate_generator(common.generator(run, epoch))
                run.update_metrics(epoch, result)
        progress.progress(1.0, text="Done")
        st.rerun()


def epoch_details(run: Run, measured, weights: list[int]) -> None:
    by_epoch = {r.epoch: r for r in measured}
    epoch = common.epoch_control("Epoch", list(by_epoch), "quality_epoch")
    m = by_epoch[epoch].metrics
    per_digit = int(m.get("samples_per_digit", metrics.DEFAULT_PER_DIGIT))
    diversity = [v for v in m.get("diversity", []) if isinstance(v, (int, float))]
    real = real_figures(per_digit)  # real digits measured on as many samples as this epoch
    tiles = st.columns(3)
    tiles[0].metric("Accuracy", f"{100 * m['accuracy']:.1f}%",
                    help="Share of samples the classifier reads as the digit asked for.")
    tiles[1].metric("Fréchet distance", f"{m['frechet']:.2f}",
                    help="Distance of the samples' feature statistics to real test digits.")
    tiles[2].metric("Diversity (mean)", f"{np.mean(diversity):.2f}" if diversity else "-",
                    help="1.0 = as varied as real digits; near 0 = the same digit over and over.")
    st.caption(f"Real MNIST digits score {100 * real['accuracy']:.1f}% and a Fréchet distance of "
               f"{real['floor']:.2f} (the floor). Measured on {per_digit:,} samples per digit.")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(per_digit_figure(
            m.get("per_digit_accuracy", [None] * 10), f"Accuracy per digit, epoch {epoch}",
            "Accuracy (%)", GREEN, 100 * real["accuracy"], percent=True,
        ), key="quality_per_digit", theme=None)
    with right:
        st.plotly_chart(per_digit_figure(
            m.get("diversity", [None] * 10), f"Diversity per digit, epoch {epoch}",
            "Diversity (real = 1.0)", BLUE, 1.0, percent=False,
        ), key="quality_diversity", theme=None)

    st.subheader("Hardest digits: what the classifier rejects")
    if epoch not in weights:
        st.info(f"Epoch {epoch}'s generator weights are not on disk, so its samples cannot be drawn.")
        return
    accuracies = [a if isinstance(a, (int, float)) else 1.0 for a in m.get("per_digit_accuracy", [])]
    hardest = int(np.argmin(accuracies)) if len(accuracies) == 10 else 0
    key = "quality_hard_digit"
    if st.session_state.get("quality_hard_for") != (run.name, epoch):
        st.session_state[key] = hardest  # a new epoch starts on its hardest digit
        st.session_state["quality_hard_for"] = (run.name, epoch)
    digit = st.segmented_control("Digit", list(range(10)), key=key, required=True)
    digit = hardest if digit is None else int(digit)
    with st.spinner("Drawing samples..."):
        found = rejected(run, epoch, digit, per_digit, int(m.get("seed", metrics.EVAL_SEED)))
    count = len(found.images)
    if count == 0:
        st.success(f"The classifier read every one of the {found.total:,} generated {digit}s as a {digit}.")
        return
    read_as = np.bincount(found.read_as, minlength=10)
    instead = ", ".join(f"{d} ({read_as[d]})" for d in np.argsort(-read_as, kind="stable") if read_as[d])
    st.markdown(f"Of {found.total:,} generated **{digit}s**, the classifier rejected **{count}** "
                f"({count / found.total:.1%}). It read them as: {instead}.")
    shown = min(count, REJECTED_SHOWN)
    st.image([common.png_bytes(common.upscale(image, 5)) for image in found.images[:shown]],
             caption=[f"read {r} · {confidence_text(c)}" for r, c in zip(found.read_as[:shown], found.confidence[:shown])],
             width=140, output_format="PNG")
    st.caption(f"The {shown} most confidently misread{' of ' + str(count) if count > shown else ''}; "
               "the percentage is how sure the classifier was of its reading.")


def copying_section(run: Run, weights: list[int]) -> None:
    st.subheader("Is the generator copying its training set?")
    digit = common.digit_control("quality_nn_digit")
    seed_column, epoch_column = st.columns(2, gap="large")
    with seed_column:
        seed = common.seed_control("quality_nn_seed")
    with epoch_column:
        epoch = common.epoch_control("Epoch", weights, "quality_nn_epoch")
    image = common.samples(run, epoch, digit, seed, 1)[0]
    with st.spinner("Searching the 60,000 training images..."):
        found = neighbours(image)
        typical = typical_real_distance()
    picture, strip = st.columns([1, 5], vertical_alignment="top")
    with picture:
        common.show_image(common.upscale(image, 5), caption=f"Generated {digit}")
    with strip:
        st.image([common.png_bytes(common.upscale(n, 4)) for n in found.images],
                 caption=[f"{lab} · {d:.1f}" for lab, d in zip(found.labels, found.distances)],
                 width=112, output_format="PNG")
    nearest = float(found.distances[0])
    if nearest < 0.6 * typical:
        verdict = "closer than real unseen digits usually are: compare them, it may be a near-copy"
    elif nearest <= 1.5 * typical:
        verdict = "about as far as a real, unseen digit: a new drawing, not a copy"
    else:
        verdict = "farther than real digits are: not a copy, and not yet much like any real digit"
    st.markdown(f"Nearest training image: distance **{nearest:.1f}**. A real test digit (never "
                f"trained on) is typically **{typical:.1f}** from its nearest training image; an "
                f"exact copy would be **0**. This one is {verdict}.")
    st.caption("Captions: the training image's label · its pixel distance to the generated digit.")


EXPLANATION = """
**How the quality is measured.** A small digit classifier (a LeNet-style network, 99% right on
real test digits) reads every generated digit.

* **Accuracy**: the share of samples it reads as the digit that was asked for. Chance is 10%; real
  digits score about 99%. It shows whether the *label* controls the drawing.
* **Fréchet distance**: compares the classifier's internal features of the samples with those of
  the 10,000 real test digits (mean and spread). 0 would be identical statistics; real training
  digits score a small floor. Lower is better. It also punishes blurry or same-looking digits.
* **Diversity**: how different the samples of one digit are from each other, relative to real
  handwriting (1.0 = as varied as real digits). Near 0 means *mode collapse*: the same digit again
  and again.

Every figure comes from the same 1,000 fixed noise vectors per digit, so the same weights always
give the same numbers.
"""


def page() -> None:
    run = common.current_run()
    if run is None:
        return
    records = common.history(run)
    if not records:
        common.require_epochs(run)
        return
    measured = [r for r in records if has_measures(r)]
    weights = common.weight_epochs(run)
    per_digit = int(measured[-1].metrics.get("samples_per_digit", metrics.DEFAULT_PER_DIGIT)) \
        if measured else metrics.DEFAULT_PER_DIGIT
    real = real_figures(per_digit) if measured else None

    left, right = st.columns(2)
    with left:
        st.plotly_chart(loss_figure(records), key="quality_losses", theme=None)
    with right:
        if measured:
            st.plotly_chart(quality_figure(measured, real), key="quality_curves", theme=None)
        else:
            st.info(f"Run {run.name} has no quality measurements yet. Measure saved epochs below, "
                    f"or run `python -m cgan.metrics evaluate {run.path}`.")
    missing = [e for e in weights if e not in {r.epoch for r in measured}]
    if missing:
        with st.expander("Evaluate now", expanded=not measured, icon=":material/speed:"):
            evaluate_now(run, missing)
    common.explain(EXPLANATION)
    if measured:
        st.header("One epoch up close")
        epoch_details(run, measured, weights)
    if weights:
        copying_section(run, weights)
        common.explain(
            "**Copying?** A GAN's generator never sees a training image: it only hears from the "
            "discriminator. Still, a generator could learn to reproduce training digits. The search "
            "compares the generated digit pixel by pixel with all 60,000 training images (distance "
            "on the [-1, 1] pixels) and shows the closest. If the closest is about as far as a real "
            "digit the network never saw, the generator drew something new."
        )


with common.page_errors():
    try:
        page()
    except metrics.MetricsError as exc:
        st.error(str(exc))
    except (RunError, MnistError, OSError):
        raise  # page_errors says these in its own words
    except Exception as exc:  # the lecture goes on: one line, never a traceback
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        st.error(f"Quality measures failed: {type(exc).__name__}{': ' + first if first else ''}")
