"""Train: start a short run from the browser, watch its epochs arrive, stop, resume or delete it.

Each run trains in a process of its own (cgan.jobs), so closing the tab or restarting the app does
not stop it; this page only starts, lists and signals those processes. Every run in the
checkpoints folder that was trained (here or at a terminal) is listed, from its directory alone.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid

import plotly.graph_objects as go
import streamlit as st

from app import access, common, plots
from app.selection import duration
from app.text import plain
from app.widgets import symptom_notes
from cgan import jobs
from cgan.data import MNIST_INSTALL_HINT, mnist_status
from cgan.limits import QUALITY_SAMPLES, TRAIN_IMAGES
from cgan.models import get_model
from cgan.presets import LECTURE, REPORT, choices, preset
from cgan.runs import RunError, checkpoints_root

REFRESH_SECONDS = 2.0
MODEL_KEY = "train_model"
NAME_KEY = "train_name"
DEVICE_KEY = "train_device"
ERRORS_KEY = "train_errors"  # {field: message} from the last press of Start
SCROLL_KEY = "train_scroll_up"  # set by Start: bring the confirmation at the top into view
TOAST_KEY = "train_toast"  # (text, icon) to show once as a toast on the next run
STARTED_KEY = "train_started"  # the run this session started last: its banner at the top
LAST_PRESS_KEY = "train_last_press"  # (time, settings) of the last Start that started a job
DIALOG_DONE_KEY = "train_dialog_done"  # a button of the delete dialog was pressed
PRESET_KEY = "train_preset"  # the recipe last picked to fill the form
REPEAT_SECONDS = 4.0  # a second press with the same settings this soon is the same press
MODEL_LABELS = {"cgan": "CGAN (the report's MLP)", "cdcgan": "cDCGAN (convolutional)"}
STATE_BADGES = {
    "queued": ":violet-badge[:material/schedule: queued]",
    "running": ":blue-badge[:material/sync: running]",
    "stopping": ":orange-badge[:material/hourglass_top: stopping after this epoch]",
    "finished": ":green-badge[:material/check_circle: finished]",
    "stopped": ":gray-badge[:material/pause_circle: stopped]",
    "interrupted": ":orange-badge[:material/warning: interrupted]",
    "failed": ":red-badge[:material/error: failed]",
}
# The cDCGAN's first values: a short run (its epochs cost about ten of the CGAN's).
QUICK_EPOCHS = 10
QUICK_IMAGES = 10_000
EMA_DECAY = 0.999  # the weight average the form's checkbox asks for



def field_key(model: str, name: str) -> str:
    """Each model keeps its own form values, so switching model brings back its defaults."""
    return f"train_{model}_{name}"


def suggest_name() -> str:
    taken = {path.name for path in checkpoints_root().iterdir()} if checkpoints_root().is_dir() else set()
    number = 1
    while f"live-{number}" in taken:
        number += 1
    return f"live-{number}"


def toast(text: str, icon: str) -> None:
    """A timed notice, shown on the next run (callbacks run before the page is drawn)."""
    st.session_state[TOAST_KEY] = (plain(text), icon)  # names and messages from disk: as written


def show_toast() -> None:
    pending = st.session_state.pop(TOAST_KEY, None)
    if pending:
        st.toast(pending[0], icon=pending[1], duration="long")


def measure_text(every: int, epochs: int | None = None, per_digit: int = QUALITY_SAMPLES) -> str:
    samples = "" if per_digit == QUALITY_SAMPLES else f" on {per_digit:,} samples of each digit"
    if epochs is not None and every >= epochs:
        return f"Quality (accuracy, Fréchet distance) is measured{samples} after the last epoch"
    if every == 1:
        return f"Quality (accuracy, Fréchet distance) is measured{samples} after every epoch"
    return f"Quality (accuracy, Fréchet distance) is measured{samples} every {every} epochs and after the last"


# ---------------------------------------------------------------------------------------------
# Starting


def parse_lr(text) -> float | None:
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def request_from_form() -> tuple[jobs.JobRequest | None, dict[str, str]]:
    """The request the form describes, or the fields that are not numbers at all."""
    state = st.session_state
    model = state[MODEL_KEY]

    def value(name: str):
        return state.get(field_key(model, name))

    lr = parse_lr(value("lr"))
    if lr is None:
        return None, {"lr": "Learning rate: must be a number more than 0 and at most 1 (e.g. 0.001)."}
    whole = [("epochs", "Epochs"), ("batch_size", "Batch size"), ("seed", "Seed")]
    if model == "cgan":
        whole.append(("g_steps", "G steps per D step"))
    missing = {name: f"{label}: a whole number is needed." for name, label in whole if value(name) is None}
    if missing:
        return None, missing
    if value("beta1") is None:
        return None, {"beta1": "Adam beta1: a number is needed (the report: 0.5)."}
    limit = None if value("limit") is None else int(value("limit"))
    width = 1.0 if value("width") is None else float(value("width"))
    request = jobs.JobRequest(
        name=(state.get(NAME_KEY) or "").strip(),
        model=model,
        epochs=int(value("epochs")),
        batch_size=int(value("batch_size")),
        lr=lr,
        seed=int(value("seed")),
        device=state.get(DEVICE_KEY) or "cpu",
        width=width,
        limit=limit,
        beta1=float(value("beta1")),
        ema=EMA_DECAY if value("ema") else 0.0,
        g_steps=int(value("g_steps")) if model == "cgan" else 1,
    )
    # A run started here measures its quality as it trains, as often as costs at most a fifth
    # of its training time (on fewer samples when a short run could not show its curves grow).
    return request.with_quality_plan(), {}


def is_repeat(request: jobs.JobRequest) -> bool:
    """A second press with the same settings moments after one that started a job: a double
    click, or a press before the page showed the first. It is the same press: one job."""
    last = st.session_state.get(LAST_PRESS_KEY)
    settings = dataclasses.replace(request, name="")
    return bool(last) and time.time() - last[0] < REPEAT_SECONDS and last[1] == settings


def start_from_form() -> None:
    """The Start button: validate, then launch; every problem goes beside its field."""
    if not access.is_lecturer():  # the button is disabled for a visitor; a forged press does nothing
        return
    request, problems = request_from_form()
    if request is not None and is_repeat(request):
        return  # already started: the banner at the top says so, once
    if request is not None:
        problems = request.problems()
    if not problems:
        try:
            job = jobs.start(request, session=session_id())
        except jobs.JobError as exc:
            problems = {exc.field or "start": str(exc)}
        else:
            st.session_state[LAST_PRESS_KEY] = (time.time(), dataclasses.replace(request, name=""))
            st.session_state[STARTED_KEY] = job.name
            st.session_state[common.RUN_KEY] = job.name  # every page follows it from now on
            st.session_state[SCROLL_KEY] = True
            st.session_state[NAME_KEY] = suggest_name()
    st.session_state[ERRORS_KEY] = problems


def session_id() -> str:
    """This browser session's id, for the per-session job limit."""
    if "train_session" not in st.session_state:
        st.session_state["train_session"] = uuid.uuid4().hex[:12]
    return st.session_state["train_session"]


def field_error(name: str) -> None:
    message = st.session_state.get(ERRORS_KEY, {}).get(name)
    if message:
        st.error(plain(message), icon=":material/error:")


def preset_values(config) -> dict:
    """The form's fields for a TrainConfig (a recipe's settings)."""
    return dict(epochs=config.epochs, lr=f"{config.lr:g}", limit=config.limit, batch_size=config.batch_size,
                beta1=config.beta1, ema=config.ema > 0, g_steps=config.g_steps)


def form_defaults(model: str) -> dict:
    """The form's first values for `model`: the CGAN's are the lecture's run (digits within a
    minute); the cDCGAN's are the report's numerics over a quick run."""
    if model == LECTURE.overrides["model"]:
        return {**preset_values(LECTURE.config()), "seed": 0}
    defaults = get_model(model).defaults
    return dict(epochs=QUICK_EPOCHS, lr=f"{defaults.lr:g}", limit=QUICK_IMAGES, seed=0,
                batch_size=defaults.batch_size, beta1=defaults.beta1, ema=False, g_steps=1)


def fill_form(name: str) -> None:
    """Fill the form with a recipe's settings (the seed and run name stay)."""
    config = preset(name).config()
    st.session_state[MODEL_KEY] = config.model
    for field, value in preset_values(config).items():
        st.session_state[field_key(config.model, field)] = value
    st.session_state.pop(ERRORS_KEY, None)


def apply_preset() -> None:
    """Picking a recipe fills the form with its settings."""
    name = st.session_state.get(PRESET_KEY)
    if name:
        fill_form(name)


def use_report_recipe() -> None:
    st.session_state[PRESET_KEY] = REPORT.name
    fill_form(REPORT.name)


def what_the_class_sees(model: str) -> str:
    """One sentence under Start: what the run the form describes will show, and when."""
    state = st.session_state
    values = {name: state.get(field_key(model, name)) for name in ("epochs", "lr", "limit", "batch_size")}
    lecture = {name: form_defaults(LECTURE.overrides["model"])[name] for name in values}
    if model == LECTURE.overrides["model"] and values == lecture:
        return LECTURE.promise
    return ""


def preset_picker() -> None:
    options = {item.name: item for item in choices()}
    # Folded until asked for: the form and its Start button stay on a projector's first screen.
    with st.expander("Start from a recipe: the report's, or a failure on purpose",
                     icon=":material/science:"):
        st.radio(
            "Recipe", list(options), key=PRESET_KEY, index=None,
            format_func=lambda name: options[name].title,
            captions=[item.description for item in options.values()],
            on_change=apply_preset,
            help="Fills the form below with the recipe's settings; change any field before you start.",
        )


def start_form(devices: list[str]) -> None:
    lecturer = access.is_lecturer()
    if NAME_KEY not in st.session_state:
        st.session_state[NAME_KEY] = suggest_name()
    if st.session_state.get(DEVICE_KEY) not in devices:
        st.session_state[DEVICE_KEY] = "cuda" if "cuda" in devices else devices[0]
    models, recipes = st.columns([1, 2])  # one row: the form stays high on the screen
    with models:
        model = st.radio("Model", list(MODEL_LABELS), key=MODEL_KEY, format_func=MODEL_LABELS.get)
    with recipes:
        preset_picker()
    defaults = get_model(model).defaults
    # First values through the session state, not value=: a recipe can then fill the fields
    # without Streamlit's warning about a widget given both.
    for name, value in form_defaults(model).items():
        st.session_state.setdefault(field_key(model, name), value)
    with st.form("train_form", enter_to_submit=False):
        # Four to a row: every label on one line and the Start button on a projector's first
        # screen (the banner at the top then shows a started run without scrolling).
        first, second = st.columns(4), st.columns(4)
        with first[0]:
            st.number_input("Epochs", step=1, key=field_key(model, "epochs"),
                            help=f"The report trains {defaults.epochs}; a few are enough to see digits form.")
            field_error("epochs")
        with first[1]:
            # Text, not a number box: a browser's number box blanks a value like 1e400 and the
            # old value would be used without a word; here it is refused beside the field.
            st.text_input("Learning rate", key=field_key(model, "lr"),
                          help=f"Adam's step size (the report: {defaults.lr:g}).")
            field_error("lr")
        with first[2]:
            st.number_input("Adam beta1", step=0.05, format="%g", key=field_key(model, "beta1"),
                            help=f"The momentum of Adam's steps (the report: {defaults.beta1:g}).")
            field_error("beta1")
        with first[3]:
            st.number_input("Training images", value=None, step=1000, placeholder=f"all {TRAIN_IMAGES:,}",
                            key=field_key(model, "limit"),
                            help=f"Train on the first N MNIST images only; empty for all {TRAIN_IMAGES:,}.")
            field_error("limit")
        with second[0]:
            st.number_input("Seed", step=1, key=field_key(model, "seed"),
                            help="Decides the initial weights, the noise and the fixed grid.")
            field_error("seed")
        with second[1]:
            st.number_input("Batch size", step=1, key=field_key(model, "batch_size"),
                            help=f"The report uses {defaults.batch_size}.")
            field_error("batch_size")
        with second[2]:
            st.selectbox("Device", devices, key=DEVICE_KEY)
            field_error("device")
        with second[3]:
            if model == "cdcgan":
                st.number_input("Width", value=1.0, step=0.125, format="%g",
                                key=field_key(model, "width"),
                                help="Scales the channels: 1 = the report's 256/128; 0.25 trains "
                                     "much faster.")
                field_error("width")
            else:
                st.number_input("G steps per D step", min_value=None, step=1,
                                key=field_key(model, "g_steps"),
                                help="How many times the generator trains for each step of the "
                                     "discriminator (the report: 1). More lets G outrun D.")
                field_error("g_steps")
        name, average = st.columns(2, vertical_alignment="bottom")
        with name:
            st.text_input("Run name", key=NAME_KEY, max_chars=64,
                          help=f"The run's folder under {checkpoints_root()}.")
            field_error("name")
        with average:
            st.checkbox(f"Keep a weight average of G (EMA {EMA_DECAY:g})",
                        key=field_key(model, "ema"),
                        help="Saved beside the raw weights at every kept epoch; an average of many "
                             "steps often draws cleaner digits. Off in the report's recipe.")
            field_error("ema")
        with st.container(horizontal=True, vertical_alignment="center"):  # Start stays on screen
            st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:",
                                  key="train_start", on_click=start_from_form, disabled=not lecturer)
            st.form_submit_button("The report's recipe", icon=":material/menu_book:", key="train_report",
                                  on_click=use_report_recipe,
                                  help="Fills the form with the report's settings: all 60,000 images, "
                                       "200 epochs. Start then trains it.")
        if not lecturer:
            access.held_back()
        promise = what_the_class_sees(model)
        st.caption(f"**{promise}** {quality_caption(model)}" if promise else quality_caption(model))
        field_error("capacity")
        field_error("start")
    missing = mnist_status()
    if missing:  # the trainer would try the internet; say so before anyone presses Start
        st.warning(f"MNIST is not on this machine, so a run can only start with internet access "
                   f"(the trainer then downloads it). Offline: `{MNIST_INSTALL_HINT}`. "
                   f"({plain(missing)})", icon=":material/cloud_off:")


def quality_caption(model: str) -> str:
    """How often the run the form describes (as last submitted) will measure its quality."""
    state = st.session_state
    limit = state.get(field_key(model, "limit"))
    width = state.get(field_key(model, "width")) or 1.0
    epochs = state.get(field_key(model, "epochs"))
    try:
        images = int(limit) if limit else TRAIN_IMAGES
        epochs = epochs if isinstance(epochs, int) and epochs > 0 else None
        plan = jobs.measure_plan(model, max(1, min(images, TRAIN_IMAGES)), max(0.01, float(width)), epochs)
    except (TypeError, ValueError):
        return ""
    return (f"{measure_text(plan.every, epochs, plan.per_digit)} "
            f"(for {images:,} images: at most a fifth of the training time).")


# ---------------------------------------------------------------------------------------------
# Watching and controlling


def press_stop(name: str) -> None:
    if not access.is_lecturer():
        return
    try:
        job = jobs.stop(name)
    except jobs.JobError as exc:
        toast(str(exc), ":material/error:")
    else:
        if job.state == "stopping":
            toast(f"{name} stops once the epoch it is training is written.", ":material/info:")


def job_action(action, name: str, done: str, icon: str) -> bool:
    """Run one of cgan.jobs' actions on `name`; a toast says what happened. True if it did."""
    if not access.is_lecturer():
        return False
    try:
        action(name)
    except jobs.JobError as exc:
        toast(str(exc), ":material/error:")
        return False
    toast(done, icon)
    return True


def press_cancel(name: str) -> None:
    job_action(jobs.cancel, name, f"Cancelled {name}; it left the queue.", ":material/cancel:")


def press_resume(name: str) -> None:
    job_action(jobs.resume, name, f"Resumed {name} from its last complete epoch.", ":material/play_arrow:")


def confirm_delete(name: str) -> None:
    deleted = job_action(jobs.delete, name, f"Deleted {name}.", ":material/delete:")
    if deleted and st.session_state.get(STARTED_KEY) == name:
        st.session_state.pop(STARTED_KEY, None)
    st.session_state[DIALOG_DONE_KEY] = True


def cancel_delete() -> None:
    st.session_state[DIALOG_DONE_KEY] = True


@st.dialog("Delete a run")
def delete_dialog(name: str) -> None:
    if st.session_state.pop(DIALOG_DONE_KEY, False):
        st.rerun()  # a button of this dialog was pressed: close it and redraw the page
    st.warning(f"Delete {plain(name)} and all its epochs? This cannot be undone.", icon=":material/delete:")
    with st.container(horizontal=True):
        st.button(f"Yes, delete {plain(name)}", key=f"train_confirm_{name}", type="primary",
                  on_click=confirm_delete, args=(name,), icon=":material/delete_forever:")
        st.button("Cancel", key=f"train_cancel_{name}", on_click=cancel_delete)


def show_on_other_pages(name: str) -> None:
    st.session_state[common.RUN_KEY] = name


def describe(job: jobs.Job) -> str:
    """The run's configuration in one line: from its config.json, or from the arguments it was
    launched with while the trainer has not written that yet."""
    try:
        config = job.run.config()
    except RunError:
        options = dict(zip(job.arguments[::2], job.arguments[1::2], strict=False))
        config = {key.lstrip("-").replace("-", "_"): value for key, value in options.items()}
    try:
        images = config.get("limit")
        parts = [
            MODEL_LABELS.get(str(config.get("model")), str(config.get("model", "?"))).split(" (")[0],
            f"{int(images):,} images" if images else f"all {TRAIN_IMAGES:,} images",
            f"batch {config.get('batch_size', '?')}",
            f"lr {float(config.get('lr', 'nan')):g}",
            f"beta1 {float(config.get('beta1', 0.5)):g}",
            f"seed {config.get('seed', '?')}",
        ]
        if float(config.get("ema") or 0):
            parts.append(f"weight average {float(config['ema']):g}")
        if config.get("model") == "cdcgan":
            parts.insert(1, f"width {float(config.get('width', 1.0)):g}")
        plan = quality_plan(job)
        if plan.every:
            samples = "" if plan.per_digit == QUALITY_SAMPLES else f" ({plan.per_digit} per digit)"
            parts.append(f"quality every {plan.every}{samples}")
    except (TypeError, ValueError):
        parts = ["unreadable configuration"]
    if job.device:
        parts.append(job.device)
    return " · ".join(parts)


def progress_text(job: jobs.Job) -> str:
    done, total = job.epochs_done, job.epochs_total
    text = f"Epoch {done} of {total}"
    if job.queued:
        when = "as soon as a slot frees" if not job.starts_in else f"in about {duration(job.starts_in)}"
        return f"Queued, place {job.place or '?'}: starts {when}"
    if job.state == "running" and not job.history:
        return text + " · starting: loading MNIST and building the networks"
    if job.state == "stopping":
        return text + " · stopping once the epoch it is training is written"
    eta = job.eta_seconds()
    if eta is not None:
        text += f" · about {duration(eta)} left"
    elif job.state == "finished" and job.history:
        text += f" · trained in {duration(sum(r.wall_seconds for r in job.history))}"
    return text


TRACEBACK_FRAME = re.compile(r"^(Traceback \(most recent call last\):|\s+File \"|\s{2,}\S|\s+\^+\s*$)")


def readable_log(text: str) -> str:
    """The trainer's output without traceback frames (file paths, source lines): the error's
    own last line says what went wrong."""
    return "\n".join(line for line in text.splitlines() if not TRACEBACK_FRAME.match(line))


def loss_chart(job: jobs.Job) -> go.Figure:
    """D and G loss per epoch, in the app's chart template; the x axis spans the whole run."""
    epochs = [r.epoch for r in job.history]
    figure = go.Figure()
    figure.add_scatter(x=epochs, y=[r.d_loss for r in job.history], name="D loss", mode="lines+markers",
                       line=dict(width=3, color=plots.BLUE))
    figure.add_scatter(x=epochs, y=[r.g_loss for r in job.history], name="G loss", mode="lines+markers",
                       line=dict(width=3, color=plots.ORANGE))
    plots.style(figure, "D and G loss per epoch", x_title="Epoch", y_title="Loss", height=320)
    figure.update_xaxes(range=[0.5, max(job.epochs_total, 1) + 0.5])
    return figure


def show_job(job: jobs.Job) -> None:
    with st.container(border=True):
        st.markdown(f"#### {plain(job.name)} &nbsp; {STATE_BADGES.get(job.state, job.state)}")
        st.caption(plain(describe(job)))
        show_actions(job)
        total = max(job.epochs_total, 1)
        st.progress(min(job.epochs_done / total, 1.0), text=progress_text(job))
        if job.message and (job.state == "failed" or not job.history):
            st.error(plain(job.message), icon=":material/error:")  # one line: the reason
        elif job.state == "interrupted":
            st.warning(
                "The trainer ended without finishing (killed, or the machine restarted). "
                "Resume continues from the last complete epoch.", icon=":material/warning:",
            )
        if job.history:
            last = job.history[-1]
            st.markdown(
                f"Epoch {last.epoch}: **D loss {last.d_loss:.3f}** · **G loss {last.g_loss:.3f}** · "
                f"{last.epoch_seconds:.1f} s of training"
            )
            plots.show(loss_chart(job), key=f"train_losses_{job.name}")
            # The Loss curves page's words: a warning while it trains, a note once it is done.
            symptom_notes(job.history, training=job.active, run_name=job.name)
        with st.expander("Trainer output (last lines)"):
            st.code(readable_log(job.log_tail(30)) or "(nothing yet)", language=None)


def show_button(job: jobs.Job) -> None:
    """Pick the job's run in the sidebar (every visitor may: it changes no file)."""
    if job.run.exists() and st.button(
        "Show on all pages", key=f"train_show_{job.name}", on_click=show_on_other_pages, args=(job.name,),
        icon=":material/visibility:", help="Pick this run in the sidebar, so every page shows it.",
    ):
        st.rerun(scope="app")  # the sidebar's picker is outside this fragment


def show_actions(job: jobs.Job) -> None:
    name = job.name
    if not access.is_lecturer():  # a visitor watches: no Stop, Resume, Cancel or Delete
        show_button(job)
        return
    with st.container(horizontal=True):
        if job.queued:
            st.button("Cancel", key=f"train_cancel_queued_{name}", on_click=press_cancel,
                      args=(name,), icon=":material/cancel:", help="Take it out of the queue.")
            return
        if job.active:
            stopping = job.state == "stopping"
            st.button(
                "Stop now" if stopping else "Stop", key=f"train_stop_{name}", on_click=press_stop,
                args=(name,), icon=":material/stop:",
                help="Stops at once; the epochs already written stay." if stopping
                else "Stops after the epoch it is training is written.",
            )
        elif job.resumable:
            st.button("Resume", key=f"train_resume_{name}", on_click=press_resume, args=(name,),
                      icon=":material/play_arrow:", help="Continue from the last complete epoch.")
        if not job.active and st.button("Delete", key=f"train_delete_{name}", icon=":material/delete:"):
            delete_dialog(name)
        show_button(job)


def what_pages_see(all_jobs: list[jobs.Job]) -> tuple[bool, tuple[str, ...]]:
    """Whether a job runs or waits (the refresh timer) and which job runs the run pickers can list."""
    busy = any(job.active or job.queued for job in all_jobs)
    return busy, tuple(job.name for job in all_jobs if job.run.exists())


def quality_plan(job: jobs.Job) -> jobs.MeasurePlan:
    """How often, and on how many samples of each digit, the job's run measures its quality."""
    try:
        config = job.run.config()
        return jobs.MeasurePlan(int(config.get("metrics_every") or 0),
                                int(config.get("metrics_samples") or QUALITY_SAMPLES))
    except (RunError, TypeError, ValueError):
        return jobs.MeasurePlan(0, QUALITY_SAMPLES)


SCROLL_TO_TOP = """<script>
for (const scroller of [document.querySelector('[data-testid="stMain"]'),
                        document.querySelector('[data-testid="stAppViewContainer"]'),
                        document.scrollingElement]) { scroller?.scrollTo({top: 0}); }
</script>"""


def started_banner() -> None:
    """At the top, visible without scrolling: the run this session started and how it goes."""
    name = st.session_state.get(STARTED_KEY)
    job = jobs.get_job(name) if name else None
    if job is None:
        return
    if st.session_state.pop(SCROLL_KEY, False):
        # Start sits below the fold at 1280x720: the page would stay scrolled to it and hide this.
        st.html(SCROLL_TO_TOP, unsafe_allow_javascript=True)
    with st.container(border=True, key="train_banner"):
        if job.state == "failed":
            # One state, the whole reason first: the run never trained, no page shows it.
            st.markdown(f"**{plain(job.name)} did not start** {STATE_BADGES['failed']}")
            st.error(plain(job.message or "The trainer ended before its first epoch: see its output below."),
                     icon=":material/error:")
        else:
            plan = quality_plan(job)
            verb = "Queued" if job.queued else "Started"
            st.markdown(f"**{verb} {plain(job.name)}** {STATE_BADGES.get(job.state, job.state)} · "
                        f"{progress_text(job)}")
            note = "Every page shows it now; closing this tab does not stop it."
            if plan.every:
                note += (f" {measure_text(plan.every, job.epochs_total, plan.per_digit)}, so its Quality "
                         f"curves grow as it trains.")
            st.caption(note)
        if not job.active:
            st.button("Dismiss", key="train_banner_dismiss",
                      on_click=lambda: st.session_state.pop(STARTED_KEY, None))


def jobs_list(seen: tuple[bool, tuple[str, ...]]) -> None:
    """Every job, newest first. While one runs this part reruns by itself every few seconds."""
    if jobs.start_queued():  # a slot freed: the next queued job starts now
        st.rerun(scope="app")
    all_jobs = jobs.list_jobs()
    if what_pages_see(all_jobs) != seen:
        # A job started or ended (the refresh timer is set when the page runs) or a new run got
        # its configuration (the sidebar's run picker can list it now): run the whole page again.
        st.rerun(scope="app")
    if not all_jobs:
        st.info("No training runs yet: start one above, or run `python -m cgan.train --out "
                f"{checkpoints_root()}/NAME` at a terminal.")
    for job in all_jobs:
        show_job(job)


# ---------------------------------------------------------------------------------------------
# The page

st.title("Train")
show_toast()
# A delete dialog's button closes it through a rerun of the dialog alone; a full run of the page
# never shows a dialog nobody opened in it.
st.session_state.pop(DIALOG_DONE_KEY, None)
with common.page_errors():
    jobs.start_queued()  # whoever looks next starts what waits for a free slot
    all_jobs = jobs.list_jobs()
    seen = what_pages_see(all_jobs)
    running = seen[0]
    st.fragment(run_every=REFRESH_SECONDS if running else None)(started_banner)()
    st.markdown("Runs train in the background and show on every page; closing this tab does not stop them.")
    start_form(jobs.available_devices())
    st.subheader("Training runs")
    limit = jobs.max_jobs()
    per_session = jobs.max_jobs_per_session()
    st.caption(
        f"At most {limit} job{'s' if limit > 1 else ''} at a time; more wait in a queue and start in "
        "order as jobs end (CGAN_MAX_JOBS" + (f"; {per_session} per session, " if per_session else ", ")
        + "CGAN_MAX_JOBS_PER_SESSION)."
    )
    st.fragment(run_every=REFRESH_SECONDS if running else None)(jobs_list)(seen)
