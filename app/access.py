"""Who may change things: the lecturer changes, the lecture hall watches.

Served to a hall's network (`python -m app --network`), every page is open to every browser,
but what changes files or starts processes (Start, Stop, Resume, Cancel, Delete, measuring a
run's quality) is the lecturer's:

- a browser on the app's own machine: its connection comes from a loopback address (any
  127.x.x.x, or ::1);
- a browser that opened the lecturer's link, ``http://HOST:PORT/?key=SECRET``. The launcher makes
  a new secret at each start, prints the link once on its terminal and hands the secret to the
  server in $CGAN_LECTURER_KEY; nothing else writes it anywhere. The key is compared in constant
  time; once it matched, that browser session stays the lecturer's and the key leaves the address
  bar (reloading the page needs the link again).

Where the server cannot tell a browser's address (no connection, as in a headless test), the
browser counts as on the machine when the server listens only on a loopback address (the
launcher without --network: nobody else can connect) and as a visitor otherwise.

The address is the connection's own (Uvicorn takes a proxy's X-Forwarded-For only from a proxy on
this machine), not Streamlit's ``st.context.ip_address``: that gives None for 127.0.0.1 and ::1,
the same as for an unknown address, and passes 127.0.0.2 through as if it came from elsewhere.

A visitor's generation requests are bounded per browser session by a token bucket: a burst of
GENERATION_BURST, then GENERATION_RATE a second; beyond that the page says so in one line.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass

import streamlit as st

from app.i18n import N_, _

KEY_ENV = "CGAN_LECTURER_KEY"  # the lecturer's secret, set by the launcher (python -m app --network)
KEY_PARAM = "key"  # http://HOST:PORT/?key=SECRET
LECTURER_KEY = "access_lecturer"  # session state: this session presented the key
BUCKET_KEY = "access_generation_bucket"  # session state: the visitor's TokenBucket
GENERATION_RATE = 2.0  # generation requests a second, sustained, for one visitor's session
GENERATION_BURST = 8.0  # ... after a burst of this many

HELD_BACK_TEXT = N_(":material/visibility: View only: {what} is up to the lecturer.")
HELD_BACK_WHAT = N_("starting, stopping and deleting runs")  # the Train page's
HELD_BACK = HELD_BACK_TEXT.format(what=HELD_BACK_WHAT)  # in English
SLOWED_TEXT = N_(":material/hourglass_top: Held back: at most {rate} new pictures a "
                 "second for each visitor. Change a setting again in a moment.")
SLOWED = SLOWED_TEXT.format(rate=f"{GENERATION_RATE:g}")  # in English
WRONG_KEY = N_("This lecturer's link is not this server's: the app prints a new one each time it "
               "starts.")


# ---------------------------------------------------------------------------------------------
# The launcher's side


def new_key() -> str:
    """A fresh secret: 32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def network_host() -> str:
    """This machine's address on its network, for a link another device can open: the source
    address of the default route (no packet is sent), or the host name."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if address and not ipaddress.ip_address(address).is_loopback and address != "0.0.0.0":
        return address
    return socket.gethostname() or "127.0.0.1"


def lecturer_link(port: int, key: str, host: str | None = None) -> str:
    return f"http://{host or network_host()}:{port}/?{KEY_PARAM}={key}"


# ---------------------------------------------------------------------------------------------
# The policy, as plain functions


def key_matches(given: object, secret: str) -> bool:
    """Whether `given` is the lecturer's key, in constant time. No key set: nothing matches."""
    if not secret or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               secret.encode("utf-8", "surrogatepass"))


def loopback(address: str | None) -> bool | None:
    """True for a loopback address (127.0.0.0/8, ::1, either mapped into IPv6), False for any
    other address, None when `address` is not an address at all (unknown)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def listens_privately(server_address: str | None) -> bool:
    """Whether a server bound to `server_address` can be reached from this machine only.
    Empty means every interface (Streamlit's default)."""
    if not server_address:
        return False
    return server_address.strip().lower() == "localhost" or bool(loopback(server_address))


def on_this_machine(peer: str | None, server_address: str | None) -> bool:
    """A browser connected from `peer` to a server bound to `server_address` is on the app's own
    machine: the peer is a loopback address, or unknown while the server listens privately."""
    known = loopback(peer)
    if known is not None:
        return known
    return listens_privately(server_address)


@dataclass
class TokenBucket:
    """`burst` requests at once, then `rate` a second."""

    rate: float = GENERATION_RATE
    burst: float = GENERATION_BURST
    tokens: float = GENERATION_BURST
    stamp: float | None = None

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


# ---------------------------------------------------------------------------------------------
# In the app


def lecturer_key() -> str:
    import os

    return os.environ.get(KEY_ENV, "")


def peer_address() -> str | None:
    """The browser's address as the server's connection sees it; None when unknown."""
    try:
        from streamlit.runtime.context import _get_client_context

        client = _get_client_context()
        return client.remote_ip if client is not None else None
    except Exception:  # noqa: BLE001  (a Streamlit without it: unknown, never a crash)
        return None


def server_address() -> str:
    from streamlit import config

    return config.get_option("server.address") or ""


def claim_key() -> None:
    """Take the lecturer's key from the address bar: a matching key makes this session the
    lecturer's; any key leaves the address bar. Run it early on every page."""
    if KEY_PARAM not in st.query_params:
        return
    given = st.query_params.get(KEY_PARAM)
    del st.query_params[KEY_PARAM]
    if key_matches(given, lecturer_key()):
        st.session_state[LECTURER_KEY] = True
    else:
        st.toast(_(WRONG_KEY), icon=":material/key_off:")


def is_lecturer() -> bool:
    """Whether this browser session may change files or start processes."""
    claim_key()
    if st.session_state.get(LECTURER_KEY):
        return True
    return on_this_machine(peer_address(), server_address())


def held_back(what: str | None = None) -> None:
    """The one-line note shown where a control is held back from a visitor; `what` names the
    held-back action (``_("measuring a run")``, in the session's language), the default is the
    Train page's."""
    st.caption(_(HELD_BACK_TEXT).format(what=what or _(HELD_BACK_WHAT)))


def allow_generation(cost: float = 1.0, note: bool = True) -> bool:
    """Whether this session may generate now: always for the lecturer; for a visitor, within the
    session's token bucket. When it may not, the page says so in one line (unless note=False)."""
    if is_lecturer():
        return True
    bucket = st.session_state.get(BUCKET_KEY)
    if not isinstance(bucket, TokenBucket):
        bucket = st.session_state[BUCKET_KEY] = TokenBucket()
    if bucket.take(time.monotonic(), cost):
        return True
    if note:
        st.caption(_(SLOWED_TEXT).format(rate=f"{GENERATION_RATE:g}"))
    return False
