"""Who may change things when the app serves a lecture hall (app/access.py): the address rules,
the lecturer's key, the visitor's generation budget, the launcher's link, and the Train page's
controls as a visitor and as the lecturer sees them (headless, AppTest)."""

from __future__ import annotations

import hmac
import io
import os
import re
import signal
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from app import access

ROOT = Path(__file__).resolve().parent.parent
TRAIN_PAGE = ROOT / "app" / "views" / "train.py"
SECRET = "s3cret-" + "x" * 36

# ---------------------------------------------------------------------------------------------
# Addresses

LOOPBACK = ["127.0.0.1", "127.0.0.2", "127.1.2.3", "127.255.255.254", "127.0.0.0", "::1",
            "::ffff:127.0.0.1", "::ffff:127.9.9.9", "0:0:0:0:0:0:0:1", "[::1]"]
ELSEWHERE = ["10.231.7.2", "192.168.1.20", "172.16.0.5", "8.8.8.8", "128.0.0.1", "126.255.255.255",
             "0.0.0.0", "::", "fe80::1", "fe80::1%eth0", "::ffff:10.0.0.1", "2001:db8::1", "::2"]
UNKNOWN = [None, "", "localhost", "example.org", "127.0.0.256", "127.1", "not an address", "1::2::3"]


@pytest.mark.parametrize("address", LOOPBACK)
def test_every_loopback_address_is_the_machine_itself(address):
    assert access.loopback(address) is True
    assert access.on_this_machine(address, "0.0.0.0")


@pytest.mark.parametrize("address", ELSEWHERE)
def test_every_other_address_is_a_visitor_even_on_a_private_server(address):
    assert access.loopback(address) is False
    # A proxy on the machine may forward a visitor to a server that listens on 127.0.0.1 only.
    assert not access.on_this_machine(address, "127.0.0.1")


@pytest.mark.parametrize("address", UNKNOWN)
def test_an_unknown_address_counts_by_where_the_server_listens(address):
    assert access.loopback(address) is None
    for private in ["127.0.0.1", "127.0.0.5", "localhost", "LOCALHOST", "::1"]:
        assert access.on_this_machine(address, private), private
    for public in ["0.0.0.0", "", None, "::", "10.231.7.1", "192.168.1.20", "myhost.example"]:
        assert not access.on_this_machine(address, public), public


# ---------------------------------------------------------------------------------------------
# The key


def test_the_key_matches_only_itself_compared_in_constant_time(monkeypatch):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    assert access.key_matches(SECRET, SECRET)
    assert compared == [(SECRET.encode(), SECRET.encode())]
    wrong = [SECRET[:-1], SECRET + "x", SECRET.upper(), " " + SECRET, "", None, 42, [SECRET],
             SECRET[:-1] + "é", "\udcff" * 3]
    for given in wrong:
        assert not access.key_matches(given, SECRET), given
    # No key set (the app without --network): nothing matches, not even an empty key.
    for given in [SECRET, "", None]:
        assert not access.key_matches(given, "")


def test_a_new_key_is_long_random_and_fits_a_link():
    keys = {access.new_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert len(key) == 43 and re.fullmatch(r"[A-Za-z0-9_-]+", key)


def test_the_lecturers_link():
    assert access.lecturer_link(8600, "abc", host="10.0.0.5") == "http://10.0.0.5:8600/?key=abc"
    host = access.network_host()
    assert host and not host.startswith("127.")
    assert access.lecturer_link(8600, "abc").startswith(f"http://{host}:8600/?key=abc")


# ---------------------------------------------------------------------------------------------
# The visitor's budget


def test_the_token_bucket_allows_a_burst_then_its_rate():
    bucket = access.TokenBucket(rate=2.0, burst=8.0, tokens=8.0)
    assert [bucket.take(0.0) for _ in range(10)] == [True] * 8 + [False] * 2
    assert not bucket.take(0.4)  # 0.8 of a token back
    assert bucket.take(0.5)  # one token after half a second
    assert not bucket.take(0.5)
    # 100 requests a second for 10 s: the burst's 8 plus 2 a second.
    bucket = access.TokenBucket(rate=2.0, burst=8.0, tokens=8.0)
    allowed = sum(bucket.take(i / 100) for i in range(1000))
    assert allowed == 8 + 20 - 1  # the last refill lands at 10.0 s, after the 999th request
    # An idle visitor gets the burst back, never more.
    assert sum(bucket.take(1000.0) for _ in range(20)) == 8
    # A clock that steps back never adds tokens.
    assert not bucket.take(5.0)


# ---------------------------------------------------------------------------------------------
# In a running app (AppTest): the session, the address bar, the notes


@pytest.fixture
def server_address():
    """Set where the server listens for one test (the AppTest has no connection: the peer is
    unknown, so this decides)."""
    before = config.get_option("server.address")

    def set_address(value: str) -> None:
        config.set_option("server.address", value)

    yield set_address
    config.set_option("server.address", before)


@pytest.fixture
def lecturer_key(monkeypatch):
    monkeypatch.setenv(access.KEY_ENV, SECRET)
    return SECRET


def who_script():
    import streamlit as st

    from app import access

    access.claim_key()
    st.markdown("lecturer" if access.is_lecturer() else "visitor")
    if not access.is_lecturer():
        access.held_back()
    st.button("again", key="again")


def budget_script():
    import streamlit as st

    from app import access

    asked = int(st.query_params.get("asks", "1"))
    allowed = sum(access.allow_generation(note=i == asked - 1) for i in range(asked))
    st.markdown(f"allowed {allowed}")


def who(app: AppTest) -> str:
    return app.markdown[0].value


def test_only_this_machine_is_the_lecturer_without_a_key(server_address, lecturer_key):
    server_address("127.0.0.1")  # the launcher without --network
    app = AppTest.from_function(who_script).run()
    assert not app.exception and who(app) == "lecturer" and not app.caption
    server_address("0.0.0.0")  # --network: a connection the server cannot place is a visitor
    app = AppTest.from_function(who_script).run()
    assert who(app) == "visitor"
    assert [c.value for c in app.caption] == [access.HELD_BACK]


def test_the_key_makes_the_session_the_lecturers_and_leaves_the_address_bar(server_address,
                                                                           lecturer_key):
    server_address("0.0.0.0")
    app = AppTest.from_function(who_script)
    app.query_params.update({"key": SECRET, "present": "1"})
    app.run()
    assert not app.exception and who(app) == "lecturer"
    assert app.query_params == {"present": "1"}  # the key is gone, the rest stays
    app.button(key="again").click().run()  # the same session, the key no longer in the address
    assert who(app) == "lecturer" and app.session_state[access.LECTURER_KEY] is True
    # Another browser session without it is a visitor.
    assert who(AppTest.from_function(who_script).run()) == "visitor"


@pytest.mark.parametrize("given", ["", "wrong", SECRET[:-1], SECRET + "0", SECRET.upper()])
def test_a_wrong_key_is_refused_and_removed(server_address, lecturer_key, given):
    server_address("0.0.0.0")
    app = AppTest.from_function(who_script)
    app.query_params["key"] = given
    app.run()
    assert not app.exception and who(app) == "visitor"
    assert "key" not in app.query_params
    assert [t.value for t in app.toast] == [access.WRONG_KEY]


def test_no_key_is_accepted_when_the_launcher_set_none(server_address, monkeypatch):
    monkeypatch.delenv(access.KEY_ENV, raising=False)
    server_address("0.0.0.0")
    for given in ["", "anything", SECRET]:
        app = AppTest.from_function(who_script)
        app.query_params["key"] = given
        app.run()
        assert who(app) == "visitor", given


def test_the_connections_address_decides_when_streamlit_knows_it(server_address, lecturer_key,
                                                                  monkeypatch):
    server_address("0.0.0.0")
    for peer, expected in [("127.0.0.2", "lecturer"), ("::1", "lecturer"),
                           ("10.231.7.2", "visitor"), ("192.168.1.20", "visitor")]:
        monkeypatch.setattr(access, "peer_address", lambda peer=peer: peer)
        assert who(AppTest.from_function(who_script).run()) == expected, peer
    server_address("127.0.0.1")  # forwarded by a proxy on this machine: still a visitor
    monkeypatch.setattr(access, "peer_address", lambda: "10.231.7.2")
    assert who(AppTest.from_function(who_script).run()) == "visitor"


def test_peer_address_reads_the_connection_not_st_context():
    # The private accessor app/access.py relies on, so a Streamlit upgrade that moves it fails here.
    from streamlit.runtime.context import _get_client_context

    assert _get_client_context() is None  # no session here: the address is unknown
    assert access.peer_address() is None


def test_a_visitors_generation_requests_are_bounded_per_session(server_address, lecturer_key,
                                                               monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])
    server_address("0.0.0.0")
    app = AppTest.from_function(budget_script)
    app.query_params["asks"] = "20"
    app.run()
    assert not app.exception
    assert app.markdown[0].value == f"allowed {int(access.GENERATION_BURST)}"
    assert [c.value for c in app.caption] == [access.SLOWED]
    clock[0] += 1.0  # one second later: GENERATION_RATE more
    app.query_params["asks"] = "1"
    for _ in range(int(access.GENERATION_RATE)):
        app.run()
        assert app.markdown[0].value == "allowed 1" and not app.caption
    app.run()
    assert app.markdown[0].value == "allowed 0" and [c.value for c in app.caption] == [access.SLOWED]
    # A new session has its own budget.
    other = AppTest.from_function(budget_script)
    other.query_params["asks"] = "1"
    assert other.run().markdown[0].value == "allowed 1"
    # The lecturer is never held back.
    server_address("127.0.0.1")
    app = AppTest.from_function(budget_script)
    app.query_params["asks"] = "200"
    app.run()
    assert app.markdown[0].value == "allowed 200" and not app.caption


# ---------------------------------------------------------------------------------------------
# The launcher


def launch(monkeypatch, argv: list[str]) -> tuple[str, list[str]]:
    """Run `python -m app ARGV` up to the server's start; (what it printed, the server's argv)."""
    import streamlit.web.cli

    import app.__main__ as launcher

    started = []
    monkeypatch.setattr(launcher, "warm_imports", lambda: 0.0)
    monkeypatch.setattr(streamlit.web.cli, "main", lambda **_: started.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.chdir(os.getcwd())  # the launcher moves to the repository root
    printed = io.StringIO()
    with redirect_stdout(printed):
        launcher.main(argv)
    assert len(started) == 1
    return printed.getvalue(), started[0]


def test_the_launcher_prints_the_lecturers_link_once_in_network_mode(monkeypatch):
    monkeypatch.delenv(access.KEY_ENV, raising=False)
    printed, server = launch(monkeypatch, ["--network", "--port", "8711"])
    key = os.environ[access.KEY_ENV]
    monkeypatch.delenv(access.KEY_ENV)
    assert len(key) == 43
    links = re.findall(r"http://\S+/\?key=(\S+)", printed)
    assert links == [key], printed
    assert printed.count(key) == 1
    assert f":8711/?key={key}" in printed
    assert key not in " ".join(server)  # not on the server's command line (ps shows it)
    # A second start makes another key.
    printed_again, _ = launch(monkeypatch, ["--network", "--port", "8711"])
    assert os.environ[access.KEY_ENV] != key and key not in printed_again


def test_the_launcher_makes_no_key_for_this_machine_only(monkeypatch):
    monkeypatch.delenv(access.KEY_ENV, raising=False)
    printed, server = launch(monkeypatch, ["--port", "8712"])
    assert access.KEY_ENV not in os.environ
    assert "key=" not in printed
    assert server[server.index("--server.address") + 1] == "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# The Train page: a visitor watches, the lecturer controls


@pytest.fixture
def train_root(tmp_path_factory, monkeypatch):
    """Checkpoints holding one finished run (Delete is offered for it)."""
    from tests.conftest import make_run

    from cgan import jobs

    root = tmp_path_factory.mktemp("access-checkpoints")
    make_run(root / "done-run", epochs=1, limit=200, seed=4)
    monkeypatch.setenv("CGAN_CHECKPOINTS", str(root))
    yield root
    for job in jobs.list_jobs(root):  # a Start that got through: never leave its trainer behind
        if job.is_alive() and job.pid:
            os.kill(job.pid, signal.SIGKILL)


def train_page(key: str | None = None) -> AppTest:
    app = AppTest.from_file(str(TRAIN_PAGE), default_timeout=60)
    if key is not None:
        app.query_params["key"] = key
    app.run()
    assert not app.exception, app.exception
    return app


def start_button(app: AppTest):
    found = [b for b in app.button if b.key == "train_start"]
    return found[0] if found else None


def delete_buttons(app: AppTest) -> list:
    return [b for b in app.button if (b.key or "").startswith("train_delete_") and not b.disabled]


def test_a_visitor_sees_the_train_page_without_its_controls(server_address, lecturer_key, train_root):
    server_address("0.0.0.0")
    app = train_page()
    assert any(m.value.startswith("#### done-run") for m in app.markdown)  # the run and its state
    start = start_button(app)
    assert start is None or start.disabled, "a visitor can press Start"
    assert not delete_buttons(app), "a visitor can delete a run"
    assert access.HELD_BACK in [c.value for c in app.caption]
    # The buttons' own checks hold too: a press sent to the server by hand (a crafted websocket
    # message; a browser cannot press a disabled button) starts nothing.
    if start is not None:
        start.proto.disabled = False
        start.click().run()
        assert not app.exception
        assert sorted(p.name for p in train_root.iterdir()) == ["done-run"]


def test_the_lecturer_on_this_machine_or_with_the_key_has_the_controls(server_address, lecturer_key,
                                                                       train_root):
    for address, key in [("127.0.0.1", None), ("0.0.0.0", SECRET)]:
        server_address(address)
        app = train_page(key)
        start = start_button(app)
        assert start is not None and not start.disabled, address
        assert [b.key for b in delete_buttons(app)] == ["train_delete_done-run"], address
        assert access.HELD_BACK not in [c.value for c in app.caption], address
