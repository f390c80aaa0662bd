"""Which run the pages show: the sidebar's run picker, the jobs training now, following a run.

Run listings are never cached: a run being written shows its new epochs, and a job started
anywhere shows in the sidebar, as soon as the page reruns.
"""

from __future__ import annotations

import streamlit as st

from app.loaders import AVERAGED_KEY, epochs, file_key, history, weight_epochs
from cgan import jobs
from cgan.runs import Run, RunError, check_run_name, checkpoints_root, list_runs

PREFERRED_RUN = "cgan-report"
RUN_KEY = "run"  # st.session_state key of the run picked in the sidebar
JOBS_REFRESH_SECONDS = 5.0


def runs() -> list[Run]:
    """Every run under the checkpoints folder, newest first (read afresh on every rerun)."""
    return list_runs()


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


def training_state(run: Run) -> str:
    """running / finished / stopped / interrupted / failed: the library's one answer."""
    return run.state()


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
        check_run_name(name)
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
    return "failed" if job.state == "failed" else "empty"


PENDING_NOTES = {
    "queued": "Queued: it starts when a training slot frees (see the Train page).",
    "starting": "Starting: its first epoch shows here as soon as it is done.",
    "failed": "Its trainer stopped before the first epoch: the Train page says why.",
    "empty": "No epoch yet.",
}


def describe(run: Run) -> str:
    """What the sidebar says under the run picker: model, epochs done, training or not."""
    model = run_model(run)
    done = _done(run)
    if done is None:
        return f"{model.upper() if model else 'Unreadable config'}, damaged history"
    text = f"{model.upper() if model else 'Unreadable config'}, {done} epoch{'s' * (done != 1)}"
    if training_state(run) == "running":
        total = run.status().get("epochs_total")
        text += f" of {total}, training now" if total else ", training now"
    return text


def eta_seconds(run: Run) -> float | None:
    """Seconds until the running trainer of `run` is done, from its recent epoch times."""
    try:
        records = history(run)
    except RunError:
        return None
    total = run.status().get("epochs_total")
    if not records or not isinstance(total, int):
        return None
    recent = [r.epoch_seconds for r in records[-5:]]
    return max(0.0, (total - records[-1].epoch) * sum(recent) / len(recent))


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def job_line(run: Run) -> str:
    """'name: epoch k of N, about T left' for a run that trains now."""
    done = _done(run) or 0
    total = run.status().get("epochs_total")
    text = f"**{run.name}**: epoch {done} of {total}" if total else f"**{run.name}**: epoch {done}"
    eta = eta_seconds(run)
    if eta is not None and done:
        text += f", about {duration(eta)} left"
    return text


def running_runs() -> list[Run]:
    found = []
    for run in runs():
        try:
            if training_state(run) == "running":
                found.append(run)
        except (RunError, OSError, ValueError):
            continue  # a damaged run never takes the sidebar down
    return found


def _follow(name: str) -> None:
    st.session_state[RUN_KEY] = name
    st.session_state["_follow_clicked"] = True


def sidebar_jobs() -> None:
    """Every job training now, from every page and after the tab is reopened: name, epoch k of
    N, time left, and one click to show it on every page. Refreshed every few seconds."""
    running = running_runs()

    @st.fragment(run_every=JOBS_REFRESH_SECONDS if running else None)
    def jobs() -> None:
        now = running_runs()
        names = [run.name for run in now]
        if st.session_state.pop("_follow_clicked", False) or names != [r.name for r in running]:
            st.rerun(scope="app")  # a click, or a job started or ended: redraw every part
        if not now:
            return
        with st.container(border=True, key="sidebar_jobs"):
            st.markdown(":material/model_training: **Training now**")
            for run in now:
                st.markdown(job_line(run))
                if st.session_state.get(RUN_KEY) != run.name:
                    st.button(f"Show {run.name}", key=f"follow_{run.name}", on_click=_follow,
                              args=(run.name,), icon=":material/visibility:")
                else:
                    st.caption("Shown on every page.")

    jobs()


def _options(chosen: str | None) -> tuple[list[str], dict[str, Run], str | None]:
    """(run names to offer, the runs by name, the chosen run's pending state). A chosen run that
    was launched but has no configuration yet stays on offer, first."""
    all_runs = runs()
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
    chosen = st.session_state.get(RUN_KEY)
    names, by_name, pending = _options(chosen)
    if not names:
        st.session_state.pop(RUN_KEY, None)
        st.sidebar.info(f"No runs yet in {checkpoints_root()}.")
        return None
    if chosen not in names:
        if chosen is not None:
            st.sidebar.warning(f"Run {chosen} is gone.")
        st.session_state[RUN_KEY] = default_run_name(names)
    name = st.sidebar.selectbox("Run", names, key=RUN_KEY, bind="query-params")
    if name not in by_name:
        st.sidebar.caption(PENDING_NOTES[pending or "empty"])
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
        st.sidebar.toggle("Weight-averaged generator", key=AVERAGED_KEY,
                          help="Samples come from the average of the generator's weights over "
                               "the last ~25 epochs (kept at the saved epochs); the grids on "
                               "Training evolution and Compare stay the raw generator's.")
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
        st.info(f"Run {name}: {PENDING_NOTES[pending]}")
        return None
    if not names:
        st.info(
            f"No runs yet in {checkpoints_root()}. Train one on the Train page, or with "
            "`python -m cgan.train --out checkpoints/NAME`."
        )
        return None
    if name not in by_name:
        name = default_run_name(names)
    return by_name[name]


def require_epochs(run: Run, with_weights: bool = False) -> list[int]:
    """The run's complete epochs (or those with weights); says so on the page if there are none."""
    found = weight_epochs(run) if with_weights else epochs(run)
    if not found:
        if not epochs(run):
            st.info(
                f"Run {run.name} has no finished epoch yet. Its first epoch appears here as soon "
                "as it is done."
            )
        else:
            st.warning(
                f"Run {run.name} has no generator weights on disk, so it cannot draw digits."
            )
    return found


def runs_of_model(model: str) -> list[Run]:
    return [run for run in runs() if run_model(run) == model]
