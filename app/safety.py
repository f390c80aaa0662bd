"""Is this server safe where it was started? Streamlit reads the project's settings only when it
is started from the repository root; started from elsewhere it listens on every interface,
shows tracebacks and collects usage statistics. The launcher (python -m app) passes the
settings wherever it runs; this module checks what the server actually got."""

from __future__ import annotations

import os

from streamlit import config

from app.i18n import _

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ALLOW_NETWORK = "CGAN_ALLOW_NETWORK"  # =1: serving the network is what the user asked for
DEFAULT = "<default>"


def exposure_warnings() -> list[tuple[str, str]]:
    """(level, one-line message) for each unsafe setting of the running server."""
    found = []
    address = config.get_option("server.address") or ""
    asked = (os.environ.get(ALLOW_NETWORK) == "1"
             or config.get_where_defined("server.address") != DEFAULT)
    if address not in LOOPBACK and not asked:
        found.append(("error", _(
            "This app is open to every machine on the network (it was started without the "
            "project's settings). Stop it and start it with `make run` or `python -m app`; to "
            "serve a lecture hall on purpose, use `python -m app --network` or set {variable}=1."
        ).format(variable=ALLOW_NETWORK)))
    if config.get_option("browser.gatherUsageStats") and config.get_where_defined(
            "browser.gatherUsageStats") == DEFAULT:
        found.append(("warning", _(
            "Started without the project's settings: Streamlit sends usage statistics. "
            "Start the app with `make run` or `python -m app` instead."
        )))
    return found


def keep_errors_private() -> None:
    """Tracebacks to the terminal only, even when the project's config file was not read."""
    import streamlit as st

    if config.get_where_defined("client.showErrorDetails") == DEFAULT:
        st.set_option("client.showErrorDetails", "none")
