"""Quality: measured, not eyeballed. A digit classifier judges the generated digits (cgan.quality).

Three tabs, the curves first: the curves of conditional accuracy and Fréchet distance beside the
D/G losses (raw and weight-averaged generator when both are measured) come from the run's history
and the stored real reference, so they are on screen at once, even without MNIST on the machine.
The two questions students ask are one click away: "Which digits are hardest?" (per-digit
accuracy and diversity, the samples the classifier rejects) and "Is it copying?" (the nearest
training images of a generated digit; the only part that needs MNIST). Only the open tab runs.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app import access, common, plots
from app.i18n import N_, _, language, ngettext
from app.numbers import percent
from app.text import code, plain
from cgan import quality
from cgan.classifier import MetricsError
from cgan.data import MNIST_INSTALL_HINT, MnistError
from cgan.metrics import AVERAGED_KEY, measured
from cgan.neighbours import nearest_training_images
from cgan.runs import Run, RunError

REJECTED_SHOWN = 24
NEIGHBOURS = 6
SUGGESTED = 4  # epochs pre-selected for "Evaluate now"
TABS = (N_("Curves"), N_("Which digits are hardest?"), N_("Is it copying?"))
TAB_KEY = "quality_tab"
OPEN_TAB_KEY = "quality_open_tab"  # session state: (index of the open tab, its language)
# The two charts of the Curves tab: side by side on a 1280x720 projector with the sidebar open
# (about 410 px wide each, where the quality legend takes a line per curve) and on its first screen.
CURVES_HEIGHT = 480
MARKED_POINTS = 40  # curves with more measurements than this are drawn without a dot per point

st.title(_("Quality"))
# The headline figures must read from the back of the hall; a pair of charts shares a row where
# each gets at least 380 pixels (a 1280-pixel projector with the sidebar open), else they stack.
st.html("""<style>
[data-testid='stMetricValue'] p { font-size: inherit; }
.st-key-quality_row [data-testid='stHorizontalBlock'] { flex-wrap: wrap; }
.st-key-quality_row [data-testid='stColumn'] { flex: 1 1 380px !important; min-width: min(380px, 100%); }
</style>""")


# What real digits score (stored beside the classifier: no MNIST, no wait) and cached samples


def real_figures(per_digit: int) -> dict | None:
    """Real digits' accuracy and (when stored for this sample size) their Fréchet floor, or None
    when the stored reference does not belong to the classifier in use."""
    reference = quality.stored_reference()
    if reference is None:
        return None
    floor = reference.floor if per_digit == quality.DEFAULT_PER_DIGIT else None
    return {"accuracy": reference.accuracy, "floor": floor, "typical": reference.typical_distance}


@st.cache_data(show_spinner=False, max_entries=64)
def _rejected(weights_path: str, mtime_ns: int, size: int, run_path: str, epoch: int, digit: int,
              per_digit: int, seed: int):
    # The weights file's version is part of the key: a recreated run is drawn afresh.
    generator = common.generator(Run(run_path), epoch)
    return quality.rejected_samples(generator, digit, per_digit=per_digit, seed=seed)


def rejected(run: Run, epoch: int, digit: int, per_digit: int, seed: int) -> quality.Rejected:
    """The very samples behind the stored per-digit accuracy (same count, same noise seed)."""
    return _rejected(*common.file_key(run.weights_path(epoch)), str(run.path), epoch, digit,
                     per_digit, seed)


@st.cache_data(show_spinner=False, max_entries=64)
def neighbours(image: np.ndarray):
    return nearest_training_images(image, k=NEIGHBOURS)


# Figures


def loss_figure(records) -> go.Figure:
    figure, x = go.Figure(), [r.epoch for r in records]
    figure.add_trace(go.Scatter(x=x, y=[r.d_loss for r in records], name=_("D loss"), mode="lines",
                                line=dict(color=plots.BLUE, width=3), hovertemplate="%{y:.3f}"))
    figure.add_trace(go.Scatter(x=x, y=[r.g_loss for r in records], name=_("G loss"), mode="lines",
                                line=dict(color=plots.ORANGE, width=3), hovertemplate="%{y:.3f}"))
    return plots.style(figure, _("D and G loss per epoch"), x_title=_("Epoch"), y_title=_("Loss"),
                       height=CURVES_HEIGHT)


def quality_figure(records, real: dict | None) -> go.Figure:
    """Accuracy (left axis) and Fréchet distance (right axis) per measured epoch; the averaged
    generator's, where measured, dotted beside the raw one's."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    series = [("", lambda r: r.metrics if measured(r.metrics) else None, "solid")]
    if any(measured(r.metrics, averaged=True) for r in records):
        series = [(_(" raw"), series[0][1], "solid"),
                  (_(" averaged"), lambda r: r.metrics[AVERAGED_KEY] if measured(r.metrics, True) else None,
                   "dot")]
    epochs = []
    for suffix, pick, dash in series:
        points = [(r.epoch, pick(r)) for r in records if pick(r) is not None]
        x = [e for e, _ in points]
        epochs += x
        # A dot per measurement while they are few (a short run's, so each one can be seen to
        # arrive); a line alone for many, where 200 dots would only blur the curve.
        mode = "lines+markers" if len(points) <= MARKED_POINTS else "lines"
        figure.add_trace(go.Scatter(
            x=x, y=[100 * m["accuracy"] for _, m in points], name=_("Accuracy") + suffix,
            mode=mode, line=dict(color=plots.GREEN, width=3, dash=dash),
            hovertemplate="%{y:.1f}%"), secondary_y=False)
        figure.add_trace(go.Scatter(
            x=x, y=[m["frechet"] for _, m in points], name=_("Fréchet") + suffix,
            mode=mode, line=dict(color=plots.ORANGE, width=3, dash=dash),
            hovertemplate="%{y:.2f}"), secondary_y=True)
    if real is not None and epochs:
        span = [min(epochs), max(epochs)]
        figure.add_trace(go.Scatter(x=span, y=[100 * real["accuracy"]] * 2, name=_("Real digits"),
                                    mode="lines", line=dict(color=plots.GREEN, width=2, dash="dash"),
                                    hovertemplate="%{y:.1f}%"), secondary_y=False)
        if real["floor"] is not None:
            figure.add_trace(go.Scatter(x=span, y=[real["floor"]] * 2, name=_("Real floor"), mode="lines",
                                        line=dict(color=plots.ORANGE, width=2, dash="dash"),
                                        hovertemplate="%{y:.2f}"), secondary_y=True)
    plots.style(figure, _("Measured quality per epoch"), x_title=_("Epoch"), height=CURVES_HEIGHT)
    figure.update_yaxes(title_text=_("Accuracy (%) ↑"), range=[0, 101], secondary_y=False)
    figure.update_yaxes(title_text=_("Fréchet distance ↓"), rangemode="tozero", showgrid=False,
                        tickmode="auto", nticks=6, secondary_y=True)  # round numbers, not synced ticks
    return figure


def per_digit_figure(values, title: str, y_title: str, colour: str, reference: float | None,
                     percent: bool) -> go.Figure:
    shown = [None if v is None else (100 * v if percent else v) for v in values]
    figure = go.Figure(go.Bar(
        x=[str(d) for d in range(10)], y=shown, marker_color=colour,
        text=[("" if v is None else (f"{v:.0f}" if percent else f"{v:.2f}")) for v in shown],
        # Values inside the bar top (white on colour), clear of the dashed reference line.
        textposition="auto", insidetextanchor="end", textangle=0,
        insidetextfont=dict(size=plots.TEXT_PX, color="#FFFFFF"),
        outsidetextfont=dict(size=plots.TEXT_PX, color="#000000"),
        cliponaxis=False, hovertemplate=_("digit %{x}: %{y:.3g}") + "<extra></extra>",
    ))
    if reference is not None:
        figure.add_hline(y=reference, line=dict(color=plots.GREY, width=2, dash="dash"))
    plots.style(figure, title, y_title=y_title, height=380, legend=False)
    figure.update_layout(uniformtext=dict(minsize=plots.TEXT_PX, mode="show"))
    plots.digit_axis(figure)
    top = max([v for v in shown if v is not None] + [reference or 0])
    figure.update_yaxes(range=[0, 105 if percent else max(1.2, top * 1.1)])
    figure.update_layout(hovermode="closest")
    return figure


# Tabs


def confidence_text(share: float) -> str:
    return percent(share)  # the app's one convention: never a rounded-up, overconfident 100%


def suggested(epochs: list[int], most: int = SUGGESTED) -> list[int]:
    """A spread of epochs, first and last included."""
    if len(epochs) <= most:
        return list(epochs)
    picks = np.unique(np.round(np.linspace(0, len(epochs) - 1, most)).astype(int))
    return [epochs[i] for i in picks]


def samples_per_digit(measured_records) -> int:
    if not measured_records:
        return quality.DEFAULT_PER_DIGIT
    return int(measured_records[-1].metrics.get("samples_per_digit", quality.DEFAULT_PER_DIGIT))


def curves_tab(run: Run, records, measured_records, weights: list[int]) -> None:
    real = real_figures(samples_per_digit(measured_records))
    with st.container(key="quality_row"):
        left, right = st.columns(2)
    with left:
        if measured_records:
            plots.show(quality_figure(records, real), key="quality_curves")
        else:
            st.info(_("Run {run} has no quality measurements yet. Measure saved epochs below, "
                      "or run {command}.").format(
                run=plain(run.name), command=code(f"python -m cgan.metrics evaluate {run.path}")))
    with right:
        plots.show(loss_figure(records), key="quality_losses")
    if measured_records and real is None:
        st.caption(_("The dashed real-digit lines need the real reference of this classifier: "
                     "`python -m cgan.metrics reference` stores it."))
    samples = samples_per_digit(measured_records)
    if samples != quality.DEFAULT_PER_DIGIT:
        st.caption(_("Measured on {samples} samples of each digit, to measure often during a short "
                     "run (the shipped runs use {shipped}): on fewer samples the "
                     "Fréchet distance reads higher, so compare it within this run.").format(
            samples=f"{samples:,}", shipped=f"{quality.DEFAULT_PER_DIGIT:,}"))
    missing = [e for e in weights if e not in {r.epoch for r in measured_records}]
    if missing:
        with st.expander(_("Evaluate now"), expanded=not measured_records, icon=":material/speed:"):
            evaluate_now(run, missing)
    common.explain(_(EXPLANATION))


def evaluate_now(run: Run, missing: list[int]) -> None:
    st.markdown(ngettext(
        "**{count} saved epoch not measured yet.** Each takes a few seconds ({samples} samples per "
        "digit).",
        "**{count} saved epochs not measured yet.** Each takes a few seconds ({samples} samples per "
        "digit).", len(missing)).format(count=len(missing), samples=f"{quality.DEFAULT_PER_DIGIT:,}"))
    if run.state() == "running":
        st.info(_("This run is training: measure it when it stops, or train with {flag}.").format(
            flag="--metrics-every K"))
        return
    if not access.is_lecturer():
        access.held_back(_("measuring a run"))
        return
    chosen = st.multiselect(_("Epochs to measure"), missing, default=suggested(missing),
                            key=f"quality_evaluate_{run.name}", placeholder=_("Choose options"))
    if st.button(ngettext("Evaluate now ({count} epoch)", "Evaluate now ({count} epochs)",
                          len(chosen)).format(count=len(chosen)),
                 key="quality_evaluate", disabled=not chosen, icon=":material/speed:",
                 type="primary"):
        progress = st.progress(0.0, text=_("Measuring..."))
        with st.spinner(_("Generating and classifying samples...")):
            for done, epoch in enumerate(sorted(chosen)):
                progress.progress(done / len(chosen), text=_("Epoch {epoch} ({done} of {count})").format(
                    epoch=epoch, done=done + 1, count=len(chosen)))
                result = quality.evaluate_generator(common.generator(run, epoch))
                run.update_metrics(epoch, result)
        progress.progress(1.0, text=_("Done"))
        st.rerun()


def hardest_tab(run: Run, measured_records, weights: list[int]) -> None:
    if not measured_records:
        st.info(_("Run {run} has no quality measurements yet: measure epochs on the Curves tab.").format(
            run=plain(run.name)))
        return
    by_epoch = {r.epoch: r for r in measured_records}
    epoch = common.epoch_control(_("Epoch"), list(by_epoch), "quality_epoch")
    m = by_epoch[epoch].metrics
    per_digit = int(m.get("samples_per_digit", quality.DEFAULT_PER_DIGIT))
    diversity = [v for v in m.get("diversity", []) if isinstance(v, (int, float))]
    real = real_figures(per_digit)
    with st.container(key="quality_row"):
        left, right = st.columns(2)
    with left:
        plots.show(per_digit_figure(
            m.get("per_digit_accuracy", [None] * 10),
            _("Accuracy per digit, epoch {epoch}").format(epoch=epoch),
            _("Accuracy (%)"), plots.GREEN, 100 * real["accuracy"] if real else None, percent=True,
        ), key="quality_per_digit")
    with right:
        plots.show(per_digit_figure(
            m.get("diversity", [None] * 10), _("Diversity per digit, epoch {epoch}").format(epoch=epoch),
            _("Diversity (real = 1.0)"), plots.BLUE, 1.0, percent=False,
        ), key="quality_diversity")
    tiles = st.columns(3)
    tiles[0].metric(_("Accuracy"), f"{100 * m['accuracy']:.1f}%",
                    help=_("Share of samples the classifier reads as the digit asked for."))
    tiles[1].metric(_("Fréchet distance"), f"{m['frechet']:.2f}",
                    help=_("Distance of the samples' feature statistics to real test digits."))
    tiles[2].metric(_("Diversity (mean)"), f"{np.mean(diversity):.2f}" if diversity else "-",
                    help=_("1.0 = as varied as real digits; near 0 = the same digit over and over."))
    if real is not None:
        score = f"{100 * real['accuracy']:.1f}%"
        if real["floor"] is not None:
            text = _("Real MNIST digits score {score} and a Fréchet distance of {floor} (the floor). "
                     "Measured on {samples} samples per digit.")
        else:
            text = _("Real MNIST digits score {score}. Measured on {samples} samples per digit.")
        st.caption(text.format(score=score, floor=f"{real['floor'] or 0:.2f}",
                               samples=f"{per_digit:,}"))
    st.subheader(_("What the classifier rejects"))
    if epoch not in weights:
        st.info(_("Epoch {epoch}'s generator weights are not on disk, so its samples cannot be "
                  "drawn.").format(epoch=epoch))
        return
    rejected_section(run, epoch, m, per_digit)


@st.fragment
def rejected_section(run: Run, epoch: int, m: dict, per_digit: int) -> None:
    """Drawn after the bars; picking a digit reruns only this part (its errors stay in it)."""
    with common.page_errors():
        try:
            rejected_digits(run, epoch, m, per_digit)
        except MetricsError as exc:
            st.error(str(exc))


def rejected_digits(run: Run, epoch: int, m: dict, per_digit: int) -> None:
    accuracies = [a if isinstance(a, (int, float)) else 1.0 for a in m.get("per_digit_accuracy", [])]
    hardest = int(np.argmin(accuracies)) if len(accuracies) == 10 else 0
    key = "quality_hard_digit"
    if st.session_state.get("quality_hard_for") != (run.name, epoch):
        st.session_state[key] = hardest  # a new epoch starts on its hardest digit
        st.session_state["quality_hard_for"] = (run.name, epoch)
    digit = st.segmented_control(_("Digit"), list(range(10)), key=key, required=True)
    digit = hardest if digit is None else int(digit)
    if not access.allow_generation():
        return
    with st.spinner(_("Drawing samples...")):
        found = rejected(run, epoch, digit, per_digit, int(m.get("seed", quality.EVAL_SEED)))
    count = len(found.images)
    if count == 0:
        st.success(_("The classifier read every one of the {total} generated {digit}s as a "
                     "{digit}.").format(total=f"{found.total:,}", digit=digit))
        return
    read_as = np.bincount(found.read_as, minlength=10)
    instead = ", ".join(f"{d} ({read_as[d]})" for d in np.argsort(-read_as, kind="stable") if read_as[d])
    st.markdown(_("Of {total} generated **{digit}s**, the classifier rejected **{count}** "
                  "({share}). It read them as: {instead}.").format(
        total=f"{found.total:,}", digit=digit, count=count, share=f"{count / found.total:.1%}",
        instead=instead))
    shown = min(count, REJECTED_SHOWN)
    captions = [_("read {digit} · {share}").format(digit=r, share=confidence_text(c))
                for r, c in zip(found.read_as[:shown], found.confidence[:shown], strict=True)]
    st.image([common.png_bytes(common.upscale(image, 5)) for image in found.images[:shown]],
             caption=captions, width=140, output_format="PNG")
    if count > shown:
        text = _("The {shown} most confidently misread of {count}; the percentage is how sure the "
                 "classifier was of its reading.")
    else:
        text = _("The {shown} most confidently misread; the percentage is how sure the classifier "
                 "was of its reading.")
    st.caption(text.format(shown=shown, count=count))


def copying_tab(run: Run, weights: list[int]) -> None:
    if not weights:
        st.info(_("Run {run} has no generator weights on disk, so it cannot draw digits.").format(
            run=plain(run.name)))
        return
    digit = common.digit_control("quality_nn_digit")
    seed_column, epoch_column = st.columns([2, 3], gap="large", vertical_alignment="bottom")
    with seed_column:
        seed = common.seed_control("quality_nn_seed")
    with epoch_column:
        epoch = common.epoch_control(_("Epoch"), weights, "quality_nn_epoch")
    if not access.allow_generation():
        return
    image = common.samples(run, epoch, digit, seed, 1)[0]
    try:
        with st.spinner(_("Searching the 60,000 training images...")):
            found = neighbours(image)
    except MnistError:
        common.show_image(common.upscale(image, 5), caption=_("Generated {digit}").format(digit=digit))
        st.warning(_("The 60,000 training images are not on this machine, so the search cannot run. "
                     "{command} provides them (then reload the page).").format(
            command=f"`{MNIST_INSTALL_HINT}`"))
        return
    reference = quality.stored_reference()
    picture, strip = st.columns([1, 5], vertical_alignment="top")
    with picture:
        common.show_image(common.upscale(image, 5), caption=_("Generated {digit}").format(digit=digit))
    with strip:
        st.image([common.png_bytes(common.upscale(n, 4)) for n in found.images],
                 caption=[f"{lab} · {d:.1f}" for lab, d in zip(found.labels, found.distances, strict=True)],
                 width=112, output_format="PNG")
    nearest = float(found.distances[0])
    typical = reference.typical_distance if reference is not None else None
    if typical is None:
        st.markdown(_("Nearest training image: distance **{distance}**; an exact copy would be "
                      "**0**.").format(distance=f"{nearest:.1f}"))
    else:
        if nearest < 0.6 * typical:
            verdict = _("closer than real unseen digits usually are: compare them, it may be a near-copy")
        elif nearest <= 1.5 * typical:
            verdict = _("about as far as a real, unseen digit: a new drawing, not a copy")
        else:
            verdict = _("farther than real digits are: not a copy, and not yet much like any real digit")
        st.markdown(_("Nearest training image: distance **{distance}**. A real test digit (never "
                      "trained on) is typically **{typical}** from its nearest training image; an "
                      "exact copy would be **0**. This one is {verdict}.").format(
            distance=f"{nearest:.1f}", typical=f"{typical:.1f}", verdict=verdict))
    st.caption(_("Captions: the training image's label · its pixel distance to the generated digit."))
    common.explain(_(
        "**Copying?** A GAN's generator never sees a training image: it only hears from the "
        "discriminator. Still, a generator could learn to reproduce training digits. The search "
        "compares the generated digit pixel by pixel with all 60,000 training images (distance "
        "on the [-1, 1] pixels) and shows the closest. If the closest is about as far as a real "
        "digit the network never saw, the generator drew something new."
    ))


EXPLANATION = N_("""
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
give the same numbers. *Raw* and *averaged*: a run trained with weight averaging keeps a moving
average of the generator's weights too; both are measured and drawn (averaged dotted).
""")


def page() -> None:
    run = common.current_run()
    if run is None:
        return
    records = common.history(run)
    if not records:
        common.require_epochs(run)
        return
    measured_records = [r for r in records if measured(r.metrics)]
    weights = common.weight_epochs(run)
    labels = [_(tab) for tab in TABS]
    # Tabs are told apart by their labels: after a change of language, open the tab that was open.
    index, lang = st.session_state.get(OPEN_TAB_KEY, (0, language()))
    default = labels[index] if lang != language() and 0 <= index < len(labels) else None
    curves, hardest, copying = st.tabs(labels, key=TAB_KEY, on_change="rerun", default=default)
    opened = [tab.open for tab in (curves, hardest, copying)]
    st.session_state[OPEN_TAB_KEY] = (opened.index(True) if True in opened else 0, language())
    # Only the open tab runs: the curves never wait for samples or a search.
    if curves.open:
        with curves:
            curves_tab(run, records, measured_records, weights)
    if hardest.open:
        with hardest:
            hardest_tab(run, measured_records, weights)
    if copying.open:
        with copying:
            copying_tab(run, weights)


with common.page_errors():
    try:
        page()
    except MetricsError as exc:
        st.error(str(exc))
    except (RunError, MnistError, OSError):
        raise  # page_errors says these in its own words
    except Exception as exc:  # the lecture goes on: one line, never a traceback
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        st.error(_("Quality measures failed: {error}").format(
            error=f"{type(exc).__name__}{': ' + first if first else ''}"))
