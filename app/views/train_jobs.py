"""The Train page's job list: each run's state, progress, losses and output, and its controls
(stop, resume, cancel, delete, show on all pages), plus the banner for the run this session started.

A job's configuration is read through the schema (Job.config: its config.json, or, while its
trainer has not written that yet, the arguments it was launched with) and described with the
options' labels.
"""

from __future__ import annotations

import functools
import re
import uuid

import plotly.graph_objects as go
import streamlit as st

from app import access, common, plots
from app.i18n import N_, _, said
from app.text import plain
from app.widgets import symptom_notes
from cgan import jobs
from cgan.config import OPTIONS, Option, TrainConfig
from cgan.limits import QUALITY_SAMPLES, TRAIN_IMAGES
from cgan.messages import one_line
from cgan.runs import checkpoints_root

TOAST_KEY = "train_toast"  # (text, icon) to show once as a toast on the next run
STARTED_KEY = "train_started"  # the run this session started last: its banner at the top
SCROLL_KEY = "train_scroll_up"  # set by Start: bring the confirmation at the top into view
DIALOG_DONE_KEY = "train_dialog_done"  # a button of the delete dialog was pressed
SESSION_KEY = "train_session"
MODEL_NAMES = {"cgan": "CGAN", "cdcgan": "cDCGAN"}
STATES = {  # a job's state: its badge's colour, icon and words
    "queued": ("violet", "schedule", N_("queued")),
    "running": ("blue", "sync", N_("running")),
    "stopping": ("orange", "hourglass_top", N_("stopping after this epoch")),
    "finished": ("green", "check_circle", N_("finished")),
    "stopped": ("gray", "pause_circle", N_("stopped")),
    "interrupted": ("orange", "warning", N_("interrupted")),
    "failed": ("red", "error", N_("failed")),
}
# What a job's one-line description names besides the model and its images: the recipe and the
# seed always; every other option when it differs from the model's default (epochs and quality
# have their own words).
ALWAYS_DESCRIBED = ("batch_size", "lr", "beta1", "seed")
SAID_ELSEWHERE = ("model", "epochs", "limit", "metrics_every", "metrics_samples")


def badge(state: str) -> str:
    colour, icon, words = STATES.get(state, ("gray", "help", state))
    return f":{colour}-badge[:material/{icon}: {_(words)}]"


def refusal(exc: jobs.JobError) -> str:
    """Why cgan.jobs refused, in the session's language (names shown as written, on one line)."""
    return said(exc, lambda value: plain(one_line(value)))


def toast(text: str, icon: str) -> None:
    """A timed notice, shown on the next run (callbacks run before the page is drawn)."""
    st.session_state[TOAST_KEY] = (text, icon)


def show_toast() -> None:
    pending = st.session_state.pop(TOAST_KEY, None)
    if pending:
        st.toast(pending[0], icon=pending[1], duration="long")


def session_id() -> str:
    """This browser session's id, for the per-session job limit."""
    if SESSION_KEY not in st.session_state:
        st.session_state[SESSION_KEY] = uuid.uuid4().hex[:12]
    return st.session_state[SESSION_KEY]


def measure_text(every: int, epochs: int | None = None, per_digit: int = QUALITY_SAMPLES) -> str:
    """When a run measures its quality, in one sentence."""
    if epochs is not None and every >= epochs:
        when = _("after the last epoch")
    elif every == 1:
        when = _("after every epoch")
    else:
        when = _("every {every} epochs and after the last").format(every=every)
    if per_digit == QUALITY_SAMPLES:
        return _("Quality (accuracy, Fréchet distance) is measured {when}").format(when=when)
    return _("Quality (accuracy, Fréchet distance) is measured on {samples} samples of each digit "
             "{when}").format(samples=f"{per_digit:,}", when=when)


# ---------------------------------------------------------------------------------------------
# What a job trains


def option_text(option: Option, value) -> str:
    return f"{_(option.label)} {value:g}" if isinstance(value, float) else f"{_(option.label)} {value}"


def describe(job: jobs.Job) -> str:
    """The run's configuration in one line, from the schema's labels."""
    config = job.config()
    if config is None or config.problems():
        parts = [_("unreadable configuration")]
    else:
        defaults = TrainConfig.for_model(config.model)
        parts = [MODEL_NAMES.get(config.model, config.model),
                 _("{images} images").format(images=f"{config.limit:,}") if config.limit
                 else _("all {images} images").format(images=f"{TRAIN_IMAGES:,}")]
        for o in OPTIONS:
            value = getattr(config, o.name)
            if o.name in ALWAYS_DESCRIBED or (o.name not in SAID_ELSEWHERE and value != getattr(defaults, o.name)):
                parts.append(option_text(o, value))
        if config.metrics_every:
            quality = _("quality every {every}").format(every=config.metrics_every)
            if config.metrics_samples != QUALITY_SAMPLES:
                quality += " " + _("({samples} per digit)").format(samples=config.metrics_samples)
            parts.append(quality)
    if job.device:
        parts.append(job.device.upper())
    return " · ".join(parts)


def quality_plan(job: jobs.Job) -> jobs.MeasurePlan:
    """How often, and on how many samples of each digit, the job's run measures its quality."""
    config = job.config()
    if config is None or config.problems():
        return jobs.MeasurePlan(0, QUALITY_SAMPLES)
    return jobs.MeasurePlan(config.metrics_every, config.metrics_samples)


def progress_text(job: jobs.Job) -> str:
    if job.queued:
        when = (_("in about {time}").format(time=jobs.duration(job.starts_in, _)) if job.starts_in
                else _("as soon as a slot frees"))
        return _("Queued, place {place}: starts {when}").format(place=job.place or "?", when=when)
    text = _("Epoch {done} of {total}").format(done=job.epochs_done, total=job.epochs_total)
    if job.state == "running" and not job.history:
        return text + " · " + _("starting: loading MNIST and building the networks")
    if job.state == "stopping":
        return text + " · " + _("stopping once the epoch it is training is written")
    eta = job.eta_seconds()
    if eta is not None:
        text += " · " + _("about {time} left").format(time=jobs.duration(eta, _))
    elif job.state == "finished" and job.history:
        text += " · " + _("trained in {time}").format(time=jobs.duration(sum(r.wall_seconds for r in job.history), _))
    return text


TRACEBACK_FRAME = re.compile(r"^(Traceback \(most recent call last\):|\s+File \"|\s{2,}\S|\s+\^+\s*$)")


def readable_log(text: str) -> str:
    """The trainer's output without traceback frames (file paths, source lines): the error's
    own last line says what went wrong."""
    return "\n".join(line for line in text.splitlines() if not TRACEBACK_FRAME.match(line))


def loss_chart(job: jobs.Job) -> go.Figure:
    """D and G loss per epoch, in the app's chart template; the x axis spans the whole run."""
    history = job.history
    return _loss_figure(tuple(r.epoch for r in history), tuple(r.d_loss for r in history),
                        tuple(r.g_loss for r in history), max(job.epochs_total, 1),
                        (_("D loss"), _("G loss"), _("D and G loss per epoch"), _("Epoch"), _("Loss")))


@functools.lru_cache(maxsize=256)
def _loss_figure(epochs: tuple, d_losses: tuple, g_losses: tuple, total: int, words: tuple) -> go.Figure:
    """The chart for one history, built once: the job list redraws every job every few seconds
    while one trains, and a finished job's chart does not change (Streamlit reads a figure, it
    does not change it)."""
    d_name, g_name, title, x_title, y_title = words
    figure = go.Figure()
    figure.add_scatter(x=epochs, y=d_losses, name=d_name, mode="lines+markers",
                       line=dict(width=3, color=plots.BLUE))
    figure.add_scatter(x=epochs, y=g_losses, name=g_name, mode="lines+markers",
                       line=dict(width=3, color=plots.ORANGE))
    plots.style(figure, title, x_title=x_title, y_title=y_title, height=320)
    figure.update_xaxes(range=[0.5, total + 0.5])
    return figure


# ---------------------------------------------------------------------------------------------
# Controls


def press_stop(name: str) -> None:
    if not access.is_lecturer():
        return
    try:
        job = jobs.stop(name)
    except jobs.JobError as exc:
        toast(refusal(exc), ":material/error:")
    else:
        if job.state == "stopping":
            toast(_("{name} stops once the epoch it is training is written.").format(name=plain(name)),
                  ":material/info:")


def job_action(action, name: str, done: str, icon: str) -> bool:
    """Run one of cgan.jobs' actions on `name`; a toast says what happened. True if it did."""
    if not access.is_lecturer():
        return False
    try:
        action(name)
    except jobs.JobError as exc:
        toast(refusal(exc), ":material/error:")
        return False
    toast(done.format(name=plain(name)), icon)
    return True


def press_cancel(name: str) -> None:
    job_action(jobs.cancel, name, _("Cancelled {name}; it left the queue."), ":material/cancel:")


def press_resume(name: str) -> None:
    job_action(jobs.resume, name, _("Resumed {name} from its last complete epoch."), ":material/play_arrow:")


def confirm_delete(name: str) -> None:
    deleted = job_action(jobs.delete, name, _("Deleted {name}."), ":material/delete:")
    if deleted and st.session_state.get(STARTED_KEY) == name:
        st.session_state.pop(STARTED_KEY, None)
    st.session_state[DIALOG_DONE_KEY] = True


def cancel_delete() -> None:
    st.session_state[DIALOG_DONE_KEY] = True


def delete_dialog_body(name: str) -> None:
    if st.session_state.pop(DIALOG_DONE_KEY, False):
        st.rerun()  # a button of this dialog was pressed: close it and redraw the page
    st.warning(_("Delete {name} and all its epochs? This cannot be undone.").format(name=plain(name)),
               icon=":material/delete:")
    with st.container(horizontal=True):
        st.button(_("Yes, delete {name}").format(name=plain(name)), key=f"train_confirm_{name}",
                  type="primary", on_click=confirm_delete, args=(name,), icon=":material/delete_forever:")
        st.button(_("Cancel"), key=f"train_cancel_{name}", on_click=cancel_delete)


def delete_dialog(name: str) -> None:
    st.dialog(_("Delete a run"))(delete_dialog_body)(name)  # its title in the session's language


def show_on_other_pages(name: str) -> None:
    st.session_state[common.RUN_KEY] = name


def show_button(job: jobs.Job) -> None:
    """Pick the job's run in the sidebar (every visitor may: it changes no file)."""
    if job.run.exists() and st.button(
        _("Show on all pages"), key=f"train_show_{job.name}", on_click=show_on_other_pages, args=(job.name,),
        icon=":material/visibility:", help=_("Pick this run in the sidebar, so every page shows it."),
    ):
        st.rerun(scope="app")  # the sidebar's picker is outside this fragment


def show_actions(job: jobs.Job) -> None:
    name = job.name
    if not access.is_lecturer():  # a visitor watches: no Stop, Resume, Cancel or Delete
        show_button(job)
        return
    with st.container(horizontal=True):
        if job.queued:
            st.button(_("Cancel"), key=f"train_cancel_queued_{name}", on_click=press_cancel,
                      args=(name,), icon=":material/cancel:", help=_("Take it out of the queue."))
            return
        if job.active:
            stopping = job.state == "stopping"
            st.button(
                _("Stop now") if stopping else _("Stop"), key=f"train_stop_{name}", on_click=press_stop,
                args=(name,), icon=":material/stop:",
                help=_("Stops at once; the epochs already written stay.") if stopping
                else _("Stops after the epoch it is training is written."),
            )
        elif job.resumable:
            st.button(_("Resume"), key=f"train_resume_{name}", on_click=press_resume, args=(name,),
                      icon=":material/play_arrow:", help=_("Continue from the last complete epoch."))
        if not job.active and st.button(_("Delete"), key=f"train_delete_{name}", icon=":material/delete:"):
            delete_dialog(name)
        show_button(job)


# ---------------------------------------------------------------------------------------------
# One job, the list, the banner


def show_job(job: jobs.Job) -> None:
    with st.container(border=True):
        st.markdown(f"#### {plain(job.name)}\u00a0\u00a0{badge(job.state)}")
        st.caption(plain(describe(job)))
        show_actions(job)
        total = max(job.epochs_total, 1)
        st.progress(min(job.epochs_done / total, 1.0), text=progress_text(job))
        if job.message and (job.state == "failed" or not job.history):
            st.error(plain(job.message), icon=":material/error:")  # one line: the trainer's reason
        elif job.state == "interrupted":
            st.warning(_("The trainer ended without finishing (killed, or the machine restarted). "
                         "Resume continues from the last complete epoch."), icon=":material/warning:")
        if job.history:
            last = job.history[-1]
            st.markdown(_("Epoch {epoch}: **D loss {d_loss}** · **G loss {g_loss}** · {seconds} s of training")
                        .format(epoch=last.epoch, d_loss=f"{last.d_loss:.3f}", g_loss=f"{last.g_loss:.3f}",
                                seconds=f"{last.epoch_seconds:.1f}"))
            plots.show(loss_chart(job), key=f"train_losses_{job.name}")
            # The Loss curves page's words: a warning while it trains, a note once it is done.
            symptom_notes(job.history, training=job.active, run_name=job.name)
        with st.expander(_("Trainer output (last lines)")):
            st.code(readable_log(job.log_tail(30)) or _("(nothing yet)"), language=None)


def what_pages_see(all_jobs: list[jobs.Job]) -> tuple[bool, tuple[str, ...]]:
    """Whether a job runs or waits (the refresh timer) and which job runs the run pickers can list."""
    busy = any(job.active or job.queued for job in all_jobs)
    return busy, tuple(job.name for job in all_jobs if job.run.exists())


SCROLL_TO_TOP = """<script>
for (const scroller of [document.querySelector('[data-testid="stMain"]'),
                        document.querySelector('[data-testid="stAppViewContainer"]'),
                        document.scrollingElement]) { scroller?.scrollTo({top: 0}); }
</script>"""


def dismiss_banner() -> None:
    st.session_state.pop(STARTED_KEY, None)


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
            st.markdown(_("**{name} did not start**").format(name=plain(job.name)) + " " + badge("failed"))
            st.error(plain(job.message) if job.message
                     else _("The trainer ended before its first epoch: see its output below."),
                     icon=":material/error:")
        else:
            plan = quality_plan(job)
            verb = _("**Queued {name}**") if job.queued else _("**Started {name}**")
            st.markdown(f"{verb.format(name=plain(job.name))} {badge(job.state)} · {progress_text(job)}")
            note = _("Every page shows it now; closing this tab does not stop it.")
            if plan.every:
                note += " " + _("{measured}, so its Quality curves grow as it trains.").format(
                    measured=measure_text(plan.every, job.epochs_total, plan.per_digit))
            st.caption(note)
        if not job.active:
            st.button(_("Dismiss"), key="train_banner_dismiss", on_click=dismiss_banner)


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
        st.info(_("No training runs yet: start one above, or run {command} at a terminal.").format(
            command=f"`python -m cgan.train --out {checkpoints_root()}/NAME`"))
    for job in all_jobs:
        show_job(job)
