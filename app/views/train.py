"""Train: start a short run from the browser, watch its epochs arrive, stop, resume or delete it.

Each run trains in a process of its own (cgan.jobs), so closing the tab or restarting the app does
not stop it; this page only starts, lists and signals those processes.
"""

from __future__ import annotations

import time

import plotly.graph_objects as go
import streamlit as st

from app import common
from cgan import jobs
from cgan.models import get_model
from cgan.limits import TRAIN_IMAGES
from cgan.runs import RunError, checkpoints_root

REFRESH_SECONDS = 2.0
MODEL_KEY = "train_model"
NAME_KEY = "train_name"
DEVICE_KEY = "train_device"
ERRORS_KEY = "train_errors"  # {field: message} from the last press of Start
NOTICE_KEY = "train_notice"  # (kind, text, shown until) after an action
NOTICE_SECONDS = 10
CONFIRM_KEY = "train_confirm_delete"  # the run whose deletion awaits confirmation
MODEL_LABELS = {"cgan": "CGAN (the report's MLP)", "cdcgan": "cDCGAN (convolutional)"}
STATE_BADGES = {
    "running": ":blue-badge[:material/sync: running]",
    "stopping": ":orange-badge[:material/hourglass_top: stopping after this epoch]",
    "finished": ":green-badge[:material/check_circle: finished]",
    "stopped": ":gray-badge[:material/pause_circle: stopped]",
    "interrupted": ":orange-badge[:material/warning: interrupted]",
    "failed": ":red-badge[:material/error: failed]",
}
# A short run that shows rough digits within a minute or two on a laptop's CPU.
QUICK_EPOCHS = 10
QUICK_IMAGES = 10_000


def field_key(model: str, name: str) -> str:
    """Each model keeps its own form values, so switching model brings back its defaults."""
    return f"train_{model}_{name}"


def suggest_name() -> str:
    taken = {path.name for path in checkpoints_root().iterdir()} if checkpoints_root().is_dir() else set()
    number = 1
    while f"live-{number}" in taken:
        number += 1
    return f"live-{number}"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def notice(place: str, kind: str, text: str, seconds: float = NOTICE_SECONDS) -> None:
    """A message shown at `place` ("form" or "jobs") for a few seconds after an action."""
    st.session_state[f"{NOTICE_KEY}_{place}"] = (kind, text, time.time() + seconds)


def show_notice(place: str) -> None:
    kind, text, until = st.session_state.get(f"{NOTICE_KEY}_{place}", (None, None, 0))
    if time.time() > until:
        st.session_state.pop(f"{NOTICE_KEY}_{place}", None)
        return
    icons = {"error": ":material/error:", "success": ":material/check_circle:", "info": ":material/info:"}
    getattr(st, kind)(text, icon=icons[kind])


# ---------------------------------------------------------------------------------------------
# Starting


def request_from_form() -> jobs.JobRequest:
    state = st.session_state
    model = state[MODEL_KEY]

    def value(name: str):
        return state.get(field_key(model, name))

    return jobs.JobRequest(
        name=(state.get(NAME_KEY) or "").strip(),
        model=model,
        epochs=int(value("epochs")),
        batch_size=int(value("batch_size")),
        lr=float(value("lr")),
        seed=int(value("seed")),
        device=state.get(DEVICE_KEY) or "cpu",
        width=1.0 if value("width") is None else float(value("width")),
        limit=None if value("limit") is None else int(value("limit")),
    )


def start_from_form() -> None:
    """The Start button: validate, then launch; every problem goes beside its field."""
    request = request_from_form()
    problems = request.problems()
    if not problems:
        try:
            job = jobs.start(request)
        except jobs.JobError as exc:
            problems = {exc.field or "start": str(exc)}
        else:
            notice("form", "success", f"Started {job.name}. Its epochs appear below and on the other "
                                      "pages as they finish; closing this tab does not stop it.")
            st.session_state[NAME_KEY] = suggest_name()
    st.session_state[ERRORS_KEY] = problems


def field_error(name: str) -> None:
    message = st.session_state.get(ERRORS_KEY, {}).get(name)
    if message:
        st.error(message, icon=":material/error:")


def start_form(devices: list[str]) -> None:
    if NAME_KEY not in st.session_state:
        st.session_state[NAME_KEY] = suggest_name()
    if st.session_state.get(DEVICE_KEY) not in devices:
        st.session_state[DEVICE_KEY] = "cuda" if "cuda" in devices else devices[0]
    model = st.radio(
        "Model", list(MODEL_LABELS), key=MODEL_KEY, horizontal=True,
        format_func=MODEL_LABELS.get,
    )
    defaults = get_model(model).defaults
    with st.form("train_form", enter_to_submit=False):
        left, middle, right = st.columns(3)
        with left:
            st.number_input("Epochs", value=QUICK_EPOCHS, step=1, key=field_key(model, "epochs"),
                            help=f"The report trains {defaults.epochs}; a few are enough to see digits form.")
            field_error("epochs")
            st.number_input("Learning rate", value=defaults.lr, step=1e-4, format="%g",
                            key=field_key(model, "lr"),
                            help=f"Adam's step size (the report: {defaults.lr:g}).")
            field_error("lr")
        with middle:
            limit_key = field_key(model, "limit")
            if limit_key not in st.session_state:
                st.session_state[limit_key] = QUICK_IMAGES  # not value=: that could not be emptied
            st.number_input("Training images", value=None, step=1000, placeholder="all 60,000",
                            key=limit_key,
                            help="Train on the first N MNIST images only; empty for all 60,000.")
            field_error("limit")
            st.number_input("Seed", value=0, step=1, key=field_key(model, "seed"),
                            help="Decides the initial weights, the noise and the fixed grid.")
            field_error("seed")
        with right:
            st.number_input("Batch size", value=defaults.batch_size, step=1,
                            key=field_key(model, "batch_size"),
                            help=f"The report uses {defaults.batch_size}.")
            field_error("batch_size")
            if model == "cdcgan":
                st.number_input("Width", value=1.0, step=0.125, format="%g",
                                key=field_key(model, "width"),
                                help="Scales the channels: 1 = the report's 256/128; 0.25 trains "
                                     "much faster.")
                field_error("width")
            st.selectbox("Device", devices, key=DEVICE_KEY)
            field_error("device")
        st.text_input("Run name", key=NAME_KEY, max_chars=64,
                      help=f"The run's folder under {checkpoints_root()}.")
        field_error("name")
        st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:",
                              key="train_start", on_click=start_from_form)
        field_error("capacity")
        field_error("start")
        show_notice("form")


# ---------------------------------------------------------------------------------------------
# Watching and controlling


def press_stop(name: str) -> None:
    try:
        job = jobs.stop(name)
    except jobs.JobError as exc:
        notice("jobs", "error", str(exc))
    else:
        if job.state == "stopping":
            notice("jobs", "info", f"{name} stops once the epoch it is training is written.")


def press_resume(name: str) -> None:
    try:
        jobs.resume(name)
    except jobs.JobError as exc:
        notice("jobs", "error", str(exc))
    else:
        notice("jobs", "success", f"Resumed {name} from its last complete epoch.")


def press_delete(name: str) -> None:
    st.session_state[CONFIRM_KEY] = name


def confirm_delete(name: str) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    try:
        jobs.delete(name)
    except jobs.JobError as exc:
        notice("jobs", "error", str(exc))
    else:
        notice("jobs", "success", f"Deleted {name}.")


def cancel_delete() -> None:
    st.session_state.pop(CONFIRM_KEY, None)


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
            f"seed {config.get('seed', '?')}",
        ]
        if config.get("model") == "cdcgan":
            parts.insert(1, f"width {float(config.get('width', 1.0)):g}")
    except (TypeError, ValueError):
        parts = ["unreadable configuration"]
    if job.device:
        parts.append(job.device)
    return " · ".join(parts)


def progress_text(job: jobs.Job) -> str:
    done, total = job.epochs_done, job.epochs_total
    text = f"Epoch {done} of {total}"
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


def loss_chart(job: jobs.Job) -> go.Figure:
    epochs = [r.epoch for r in job.history]
    figure = go.Figure()
    figure.add_scatter(x=epochs, y=[r.d_loss for r in job.history], name="D loss", mode="lines+markers")
    figure.add_scatter(x=epochs, y=[r.g_loss for r in job.history], name="G loss", mode="lines+markers")
    figure.update_layout(
        height=220, margin=dict(l=10, r=10, t=10, b=10), hovermode="x unified",
        legend=dict(orientation="h", y=1.12, x=0), xaxis_title="epoch", yaxis_title="loss",
        xaxis=dict(range=[0.5, max(job.epochs_total, 1) + 0.5]),
    )
    return figure


def show_job(job: jobs.Job) -> None:
    with st.container(border=True):
        st.markdown(f"#### {job.name} &nbsp; {STATE_BADGES.get(job.state, job.state)}")
        st.caption(describe(job))
        show_actions(job)
        total = max(job.epochs_total, 1)
        st.progress(min(job.epochs_done / total, 1.0), text=progress_text(job))
        if job.state == "failed" and job.message:
            st.error(job.message, icon=":material/error:")
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
            st.plotly_chart(loss_chart(job), key=f"train_losses_{job.name}", width="stretch")
        with st.expander("Trainer output (last lines)", expanded=job.state == "failed"):
            st.code(job.log_tail() or "(nothing yet)", language=None)


def show_actions(job: jobs.Job) -> None:
    name = job.name
    if st.session_state.get(CONFIRM_KEY) == name and not job.active:
        st.warning(f"Delete {name} and all its epochs? This cannot be undone.", icon=":material/delete:")
        with st.container(horizontal=True):
            st.button(f"Yes, delete {name}", key=f"train_confirm_{name}", type="primary",
                      on_click=confirm_delete, args=(name,), icon=":material/delete_forever:")
            st.button("Cancel", key=f"train_cancel_{name}", on_click=cancel_delete)
        return
    with st.container(horizontal=True):
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
        if not job.active:
            st.button("Delete", key=f"train_delete_{name}", on_click=press_delete, args=(name,),
                      icon=":material/delete:")
        if job.run.exists() and st.button(
            "Show on all pages", key=f"train_show_{name}", on_click=show_on_other_pages, args=(name,),
            icon=":material/visibility:", help="Pick this run in the sidebar, so every page shows it.",
        ):
            st.rerun(scope="app")  # the sidebar's picker is outside this fragment


def what_pages_see(all_jobs: list[jobs.Job]) -> tuple[bool, tuple[str, ...]]:
    """Whether a job runs (the refresh timer) and which job runs the run pickers can list."""
    return any(job.active for job in all_jobs), tuple(job.name for job in all_jobs if job.run.exists())


def jobs_list(seen: tuple[bool, tuple[str, ...]]) -> None:
    """Every job, newest first. While one runs this part reruns by itself every few seconds."""
    show_notice("jobs")
    all_jobs = jobs.list_jobs()
    if what_pages_see(all_jobs) != seen:
        # A job started or ended (the refresh timer is set when the page runs) or a new run got
        # its configuration (the sidebar's run picker can list it now): run the whole page again.
        st.rerun(scope="app")
    if not all_jobs:
        st.info("No training started from here yet.")
    for job in all_jobs:
        show_job(job)


# ---------------------------------------------------------------------------------------------
# The page

st.title("Train")
st.markdown(
    "Start a short run, keep talking, and watch its epochs arrive here and on the other pages. "
    "Training runs in the background: closing this tab does not stop it."
)
with common.page_errors():
    start_form(jobs.available_devices())
    st.subheader("Training jobs")
    limit = jobs.max_jobs()
    st.caption(f"At most {limit} job{'s' if limit > 1 else ''} at a time (set CGAN_MAX_JOBS to change it).")
    seen = what_pages_see(jobs.list_jobs())
    running = seen[0]
    st.fragment(run_every=REFRESH_SECONDS if running else None)(jobs_list)(seen)
