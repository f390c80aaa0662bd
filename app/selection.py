"""Which run the pages show: the sidebar's run picker, the jobs training now, following a run.

Run listings are never cached: a run being written shows its new epochs, and a job started
anywhere shows in the sidebar, as soon as the page reruns.
"""

from __future__ import annotations

import streamlit as st

from app.i18n import N_, _, ngettext
from app.text import plain
from app.loaders import AVERAGED_KEY, epochs, file_key, history, weight_epochs
from cgan import jobs
from cgan.runs import Run, RunError, check_existing_run_name, checkpoints_root, list_runs

PREFERRED_RUN = "cgan-report"
RUN_KEY = "run"  # st.session_state key of the run picked in the sidebar
JOBS_REFRESH_SECONDS = 5.0


def default_run_name(names: list[str], preferred: str = PREFERRED_RUN) -> str | None:
    if preferred in names:
        return preferred
    return names[0] if names else None


def run_model(run: Run) -> str | None:
    """The run's model name, or None when its config cannot be read."""
    try:
        return str(run.config()["model"])
    except RunError:
        return None


def _done(run: Run) -> int | None:
    """Complete epochs, or None when the history is damaged."""
    try:
        return len(history(run))
    except RunError:
        return None


def pending_state(name: str | None) -> str | None:
    """What a chosen run without a configuration yet is doing: "queued" or "starting" (launched,
    its first epoch on the way), "failed" (its trainer ended before writing anything), "empty" (a
    folder and nothing else yet); None when there is no such folder (the run is gone)."""
    if not name:
        return None
    try:
        check_existing_run_name(name)
    except ValueError:
        return None
    if not (checkpoints_root() / name).is_dir():
        return None
    try:
        job = jobs.get_job(name)
    except (ValueError, OSError, jobs.JobError):
        job = None
    if job is None:
        return "empty"
    if job.queued:
        return "queued"
    if job.active:
        return "starting"
    return "failed" if job.state in ("failed", "interrupted", "stopped") else "empty"


PENDING_NOTES = {
    "queued": N_("Queued: it starts when a training slot frees (see the Train page)."),
    "starting": N_("Starting: its first epoch shows here as soon as it is done."),
    "failed": N_("Its trainer ended before the first epoch: the Train page says why."),
    "empty": N_("No epoch yet."),
}


def describe(run: Run) -> str:
    """What the sidebar says under the run picker: model, epochs done, training or not."""
    model = run_model(run)
    name = model.upper() if model else _("Unreadable config")
    done = _done(run)
    if done is None:
        return _("{model}, damaged history").format(model=name)
    if run.state() != "running":
        return ngettext("{model}, {n} epoch", "{model}, {n} epochs", done).format(model=name, n=done)
    total = run.status().get("epochs_total")
    if total:
        return ngettext("{model}, {n} epoch of {total}, training now",
                        "{model}, {n} epochs of {total}, training now", done).format(model=name, n=done, total=total)
    return ngettext("{model}, {n} epoch, training now", "{model}, {n} epochs, training now", done).format(
        model=name, n=done)


def jobs_now() -> list[jobs.Job]:
    """The jobs training, starting or queued now, newest first; a damaged run is left out."""
    try:
        return [job for job in jobs.list_jobs() if job.active or job.queued]
    except (OSError, ValueError, RunError, jobs.JobError):
        return []


def job_line(job: jobs.Job) -> str:
    """'name: epoch k of N, about T left' (or queued / starting) for the sidebar's jobs box."""
    name = f"**{plain(job.name)}**"
    if job.queued:
        if job.place:
            return _("{name}: queued, place {place}").format(name=name, place=job.place)
        return _("{name}: queued").format(name=name)
    if not job.history:
        return _("{name}: starting").format(name=name)
    eta = job.eta_seconds()
    if eta is None:
        return _("{name}: epoch {done} of {total}").format(name=name, done=job.epochs_done, total=job.epochs_total)
    return _("{name}: epoch {done} of {total}, about {time} left").format(
        name=name, done=job.epochs_done, total=job.epochs_total, time=jobs.duration(eta, _))


def _follow(name: str) -> None:
    st.session_state[RUN_KEY] = name
    st.session_state["_follow_clicked"] = True


def sidebar_jobs() -> None:
    """Every job training, starting or queued now, from every page and after the tab is reopened:
    name, epoch k of N, time left, and one click to show it on every page. Refreshed every few
    seconds while there is one; a queued job starts from here when a slot frees, whichever page
    is open."""
    busy = jobs_now()

    @st.fragment(run_every=JOBS_REFRESH_SECONDS if busy else None)
    def box() -> None:
        try:
            started = jobs.start_queued()  # whoever looks next starts what waits for a free slot
        except (OSError, jobs.JobError):
            started = []
        now = jobs_now()
        # What the rest of the page draws from: which jobs, queued or not, listed by the picker or
        # not (running -> stopping is not worth a full rerun: it would close an open dialog).
        changed = [(j.name, j.queued, j.run.exists()) for j in now] != \
                  [(j.name, j.queued, j.run.exists()) for j in busy]
        if st.session_state.pop("_follow_clicked", False) or started or changed:
            st.rerun(scope="app")  # a click, or a job started, queued, listed or ended: redraw all
        if not now:
            return
        with st.container(border=True, key="sidebar_jobs"):
            st.markdown(":material/model_training: **" + _("Training now") + "**")
            for job in now:
                st.markdown(job_line(job))
                if st.session_state.get(RUN_KEY) != job.name:  # (the picker above names the shown one)
                    st.button(_("Show {name}").format(name=plain(job.name)), key=f"follow_{job.name}", on_click=_follow,
                              args=(job.name,), icon=":material/visibility:")

    box()


def _options(chosen: str | None) -> tuple[list[str], dict[str, Run], str | None]:
    """(run names to offer, the runs by name, the chosen run's pending state). A chosen run that
    was launched but has no configuration yet stays on offer, first."""
    all_runs = list_runs()
    by_name = {run.name: run for run in all_runs}
    names = list(by_name)
    pending = pending_state(chosen) if chosen is not None and chosen not in by_name else None
    if pending:
        names = [chosen, *names]
    return names, by_name, pending


def sidebar_run_picker() -> Run | None:
    """The sidebar's run chooser, shared by every page; the choice is kept in session state and in
    the address (?run=NAME), so a reopened tab shows the same run. Its options are run names, never
    labels that change with the run's state: a run going from queued to starting to training to
    finished stays chosen."""
    asked = st.query_params.get(RUN_KEY)
    if RUN_KEY not in st.session_state and asked and (checkpoints_root() / asked).is_dir():
        try:
            st.session_state[RUN_KEY] = check_existing_run_name(asked)  # a reopened tab: its address's run
        except ValueError:
            pass
    chosen = st.session_state.get(RUN_KEY)
    names, by_name, pending = _options(chosen)
    if not names:
        st.session_state.pop(RUN_KEY, None)
        st.sidebar.info(_("No runs yet in {folder}.").format(folder=checkpoints_root()))
        return None
    if chosen not in names:
        if chosen is not None:
            st.sidebar.warning(_("Run {name} is gone.").format(name=plain(chosen)))
        st.session_state[RUN_KEY] = default_run_name(names)
    name = st.sidebar.selectbox(_("Run"), names, key=RUN_KEY)
    if st.query_params.get(RUN_KEY) != name:
        st.query_params[RUN_KEY] = name
    if name not in by_name:
        st.sidebar.caption(_(PENDING_NOTES[pending or "empty"]))
        return Run(checkpoints_root() / name)
    run = by_name[name]
    st.sidebar.caption(describe(run))
    return run


def averaged_choice(run: Run | None) -> None:
    """For a run trained with weight averaging: draw samples from the averaged generator."""
    if run is None:
        return
    try:
        averaging = bool(run.config().get("ema"))
    except RunError:
        averaging = False
    if averaging:
        st.sidebar.toggle(_("Weight-averaged generator"), key=AVERAGED_KEY,
                          help=_("Samples come from the average of the generator's weights over "
                                 "the last ~25 epochs (kept at the saved epochs); the grids on "
                                 "Training evolution and Compare stay the raw generator's."))
    elif AVERAGED_KEY in st.session_state:
        st.session_state[AVERAGED_KEY] = False


def follow_training(run: Run, every_seconds: float = 3.0) -> None:
    """While a trainer writes `run`, rerun the app whenever an epoch finishes."""

    @st.fragment(run_every=every_seconds)
    def watch() -> None:
        # The last epoch's record comes before the trainer's final status: watch both files.
        try:
            seen = (file_key(run.history_path), file_key(run.status_path))
        except RunError:
            seen = None
        previous = st.session_state.get("_followed")
        st.session_state["_followed"] = (str(run.path), seen)
        if previous is not None and previous[0] == str(run.path) and previous[1] != seen:
            st.rerun(scope="app")

    watch()


def current_run() -> Run | None:
    """The run picked in the sidebar, or None after saying why there is none."""
    name = st.session_state.get(RUN_KEY)
    names, by_name, pending = _options(name)
    if pending:
        st.info(_("Run {name}: {note}").format(name=plain(name), note=_(PENDING_NOTES[pending])))
        return None
    if not names:
        st.info(_("No runs yet in {folder}. Train one on the Train page, or with {command}.").format(
            folder=checkpoints_root(), command="`python -m cgan.train --out checkpoints/NAME`"))
        return None
    if name not in by_name:
        name = default_run_name(names)
    return by_name[name]


def require_epochs(run: Run, with_weights: bool = False) -> list[int]:
    """The run's complete epochs (or those with weights); says so on the page if there are none."""
    found = weight_epochs(run) if with_weights else epochs(run)
    if not found:
        if not epochs(run):
            st.info(_("Run {name} has no finished epoch yet. Its first epoch appears here as soon as "
                      "it is done.").format(name=plain(run.name)))
        else:
            st.warning(_("Run {name} has no generator weights on disk, so it cannot draw digits.").format(
                name=plain(run.name)))
    return found


def runs_of_model(model: str) -> list[Run]:
    return [run for run in list_runs() if run_model(run) == model]
