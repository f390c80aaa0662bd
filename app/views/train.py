"""Train: start a short run from the browser, watch its epochs arrive, stop, resume or delete it.

Each run trains in a process of its own (cgan.jobs), so closing the tab or restarting the app does
not stop it; this page only starts, lists and signals those processes. Every run in the
checkpoints folder that was trained (here or at a terminal) is listed, from its directory alone.
The form is in train_form.py, the job list and its controls in train_jobs.py.
"""

from __future__ import annotations

import streamlit as st

from app import common
from app.i18n import _, ngettext
from app.views.train_form import start_form
from app.views.train_jobs import DIALOG_DONE_KEY, jobs_list, show_toast, started_banner, what_pages_see
from cgan import jobs

REFRESH_SECONDS = 2.0

st.title(_("Train"))
show_toast()
# A delete dialog's button closes it through a rerun of the dialog alone; a full run of the page
# never shows a dialog nobody opened in it.
st.session_state.pop(DIALOG_DONE_KEY, None)
with common.page_errors():
    jobs.start_queued()  # whoever looks next starts what waits for a free slot
    seen = what_pages_see(jobs.list_jobs())
    running = seen[0]
    st.fragment(run_every=REFRESH_SECONDS if running else None)(started_banner)()
    st.markdown(_("Runs train in the background and show on every page; closing this tab does not stop them."))
    start_form(jobs.available_devices())
    st.subheader(_("Training runs"))
    limit, per_session = jobs.max_jobs(), jobs.max_jobs_per_session()
    at_most = ngettext("At most {n} job at a time", "At most {n} jobs at a time", limit).format(n=limit)
    if per_session:
        st.caption(_("{at_most}; more wait in a queue and start in order as jobs end (`CGAN_MAX_JOBS`; "
                     "{per_session} per session, `CGAN_MAX_JOBS_PER_SESSION`).").format(
                         at_most=at_most, per_session=per_session))
    else:
        st.caption(_("{at_most}; more wait in a queue and start in order as jobs end (`CGAN_MAX_JOBS`, "
                     "`CGAN_MAX_JOBS_PER_SESSION`).").format(at_most=at_most))
    st.fragment(run_every=REFRESH_SECONDS if running else None)(jobs_list)(seen)
