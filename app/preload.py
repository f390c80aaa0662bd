"""Load what the first page needs before it is asked for, so a lecturer's first click is not the
one that waits.

Two costs dominate the first visit to a fresh server (2-core Xeon, measured in Chromium): the
server's first script run imports torch and the app (about 1.1-1.5 s), and the browser fetches,
compiles and runs Plotly's 4.7 MB of JavaScript only once a chart arrives (about 1 s more).

* ``warm_imports()``: the launcher (`python -m app`, `make run`) imports the app's modules before
  the server listens, so even the first visit finds them loaded.
* ``chart_code_html()``: the first thing every page sends tells the browser to load the chart
  code at once, while the server is still importing; when the first chart arrives, Plotly is ready.
* ``warm_views()``: judges the discriminator page's view across the epochs (D's verdict on real
  and generated digits at every epoch with discriminator weights, cgan.verdict.remembered_view)
  in a background thread, for the launcher to start as the server starts, so the page's first
  visit finds it ready (both shipped runs: 1.9 s of one core, measured at load average 5.5).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from pathlib import Path

import streamlit

# What the pages import that is slow to load (torch, Plotly) and the app's own modules on top.
MODULES = (
    "app.common",
    "app.plots",
    "app.numbers",
    "cgan.quality",
    "cgan.metrics",
    "cgan.neighbours",
    "cgan.interpolate",
    "cgan.verdict",
    "cgan.presets",
    "app.views.train_form",
    "app.views.train_jobs",
    "app.safety",
    "app.access",
    "plotly.subplots",
    "pandas",  # plotly imports it lazily: two threads importing it at once break one of them
)

# Streamlit's web client loads Plotly as one chunk, named after its content hash.
CLIENT_JS = Path(streamlit.__file__).parent / "static" / "static" / "js"


def warm_imports() -> float:
    """Import MODULES; return the seconds it took."""
    # Before the server runs, each st.cache_data decorator checks its settings against a stand-in
    # cache store and logs "No runtime found"; the caches themselves are made on first use, in
    # the server's store, so the message is noise here.
    cache_log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = cache_log.level
    cache_log.setLevel(logging.ERROR)
    try:
        started = time.perf_counter()
        for name in MODULES:
            importlib.import_module(name)
        return time.perf_counter() - started
    finally:
        cache_log.setLevel(level)


def chart_code_html(client_js: Path = CLIENT_JS) -> str:
    """A script that starts loading Streamlit's Plotly chunk now, or "" when this Streamlit
    version names it differently (the charts then load it themselves, as usual)."""
    chunks = sorted(client_js.glob("PlotlyChart.*.js"))
    if len(chunks) != 1:
        return ""
    # Resolved against the client's own entry script, as the client resolves it: the browser
    # then holds one module, whatever the server's base URL.
    return f"""<script>
(() => {{
  const entry = document.querySelector('script[type="module"][src*="static/js/index."]');
  if (!entry || window.cganChartCode) return;
  window.cganChartCode = import(new URL("{chunks[0].name}", entry.src).href).catch(() => null);
}})();
</script>"""


def warm_views(root: Path | None = None, first: str = "cgan-report") -> threading.Thread:
    """Start judging D's view of every epoch of every run under `root` (default: the checkpoints
    folder) that kept discriminator weights, run `first` and each run's newest epoch first (what
    the page opens on); return the thread. One torch thread; anything unreadable is skipped
    quietly (the page judges on demand anyway, and says what is wrong)."""
    thread = threading.Thread(target=_judge_every_view, args=(root, first), name="warm-views", daemon=True)
    thread.start()
    return thread


def _judge_every_view(root: Path | None, first: str) -> None:
    # Not at a lower CPU priority: a thread that holds Python's lock while the scheduler starves
    # it would stall the server's own threads.
    from cgan import verdict
    from cgan.runs import list_runs

    runs = sorted(list_runs(root), key=lambda run: run.name != first)  # stable: newest next
    for run in runs:
        try:
            for epoch in reversed(verdict.view_epochs(run)):
                verdict.remembered_view(run, epoch)
        except Exception:  # noqa: BLE001 (a damaged or half-written run, MNIST missing: the page says why)
            continue
