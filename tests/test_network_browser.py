"""The lecture hall from another machine's point of view, in a real browser.

The test makes a network namespace (a second machine's network stack) joined to this one by a
veth pair, serves the app with `python -m app --network` and runs Chromium inside the namespace:

- that visitor sees every page and the training job's progress, and is refused Start, Stop and
  Delete (the held-back note is shown; the buttons are absent or disabled);
- a browser on this machine, at 127.0.0.2 (any 127.x is the machine itself), has them;
- the visitor with the link the launcher printed has them too, uses Stop, Delete and Start, and
  the key leaves its address bar. The key appears nowhere in the server's output but that link.

Needs root and iproute2's `ip` (CI runs as root; `.ci/run` installs iproute2). Both ends of the
veth pair and the namespace are removed afterwards, whatever happens.

Run by hand inside a namespace, this file is also the browser's side:
    ip netns exec NS python -m tests.test_network_browser visitor|lecturer URL   (from the repository root)
prints what the browser saw as one line of JSON.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.browser_support import (
    CHROMIUM, CHROMIUM_ARGS, browser_missing, free_port, wait_for_app, wait_for_health,
)

ROOT = Path(__file__).resolve().parent.parent

PAGES = ["Training evolution", "Generate", "Compare epochs", "Loss curves", "Quality",
         "Real vs CGAN vs cDCGAN", "Interpolation", "The discriminator's verdict", "Train"]
HELD_BACK_START = "View only:"
LIVE, DONE, STARTED = "live-run", "done-run", "keyed-run"
EPOCHS = 300  # more than the live run will train: the lecturer stops it


# ---------------------------------------------------------------------------------------------
# The browser's side (run inside the namespace)


def train_page_controls(page) -> dict:
    """What the Train page offers: Start (absent/disabled/enabled), Stop and Delete per run,
    the held-back note, the live run's progress line."""
    main = page.get_by_test_id("stMain")
    start = page.get_by_role("button", name="Start training")
    if start.count() == 0:
        start_state = "absent"
    else:
        start_state = "enabled" if start.first.is_enabled() else "disabled"

    def enabled(name: str) -> int:
        buttons = main.get_by_role("button", name=name, exact=True)
        return sum(buttons.nth(i).is_enabled() for i in range(buttons.count()))

    text = main.inner_text()
    progress = re.search(r"Epoch \d+ of \d+[^\n]*", text)
    return {
        "start": start_state,
        "stop_enabled": enabled("Stop") + enabled("Stop now"),
        "delete_enabled": enabled("Delete"),
        "held_back_note": HELD_BACK_START in text,
        "runs_listed": sorted(set(re.findall(r"\b(?:live|done|keyed)-run\b", text))),
        "progress": progress.group(0) if progress else None,
    }


def open_page(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    wait_for_app(page)
    page.wait_for_timeout(300)  # a page's fragments settle


def browse(role: str, url: str) -> dict:
    """Open `url` in a headless Chromium and report what the browser saw (and, as the lecturer,
    what its presses did)."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"role": role}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=[*CHROMIUM_ARGS, "--no-proxy-server"])
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        page.set_default_timeout(60_000)
        shot = os.environ.get("CGAN_SHOT", f"/tmp/network-{role}.png")
        try:
            page.goto(url)
            wait_for_app(page)
            page.wait_for_timeout(500)
            seen["address_bar"] = page.url
            if role in ("visitor", "machine"):
                seen["pages"] = {}
                for title in PAGES if role == "visitor" else ["Train"]:
                    open_page(page, title)
                    headings = page.get_by_test_id("stMain").locator("h1")
                    seen["pages"][title] = {
                        "heading": headings.first.inner_text() if headings.count() else None,
                        "exceptions": page.get_by_test_id("stException").count(),
                        "errors": [e.inner_text() for e in page.get_by_test_id("stAlertContentError").all()],
                    }
                if role == "visitor":  # progress arrives by itself on the visitor's screen too
                    page.get_by_text(re.compile(rf"Epoch [1-9]\d* of {EPOCHS}")).first.wait_for(timeout=120_000)
                seen["train"] = train_page_controls(page)
                page.screenshot(path=shot)
            else:  # the lecturer's link
                open_page(page, "Train")
                seen["address_bar_on_train"] = page.url
                seen["train"] = train_page_controls(page)
                page.locator(f".st-key-train_stop_{LIVE} button").first.click()
                page.get_by_text(re.compile(rf"{LIVE} stops once|stopping after this epoch|stopped")
                                 ).first.wait_for()
                seen["stopped"] = True
                # Once it has stopped the page redraws whole (the job list changed): let it, so the
                # delete dialog below is not opened into a page about to be redrawn.
                page.locator(f".st-key-train_resume_{LIVE} button").first.wait_for(timeout=120_000)
                page.wait_for_timeout(6000)  # the sidebar's jobs box looks every 5 s
                wait_for_app(page)
                page.locator(f".st-key-train_delete_{DONE} button").first.click()
                page.get_by_role("button", name=f"Yes, delete {DONE}").click()
                page.get_by_text(f"Deleted {DONE}.").first.wait_for()
                seen["deleted"] = True
                wait_for_app(page)
                # Every field, not only those that differ from the form's first values.
                for field, value in [("Epochs", "1"), ("Adam beta1", "0.5"), ("Training images", "100"),
                                     ("Seed", "0"), ("Batch size", "50"), ("G steps per D step", "1")]:
                    page.get_by_role("spinbutton", name=field).fill(value)
                page.get_by_role("textbox", name="Learning rate").fill("0.001")
                page.get_by_role("textbox", name="Run name").fill(STARTED)
                page.get_by_role("button", name="Start training").click()
                page.get_by_text(re.compile(rf"(Started|Queued) {STARTED}")).first.wait_for()
                seen["started"] = True
                page.screenshot(path=shot)
        except Exception:
            page.screenshot(path=shot.replace(".png", "-failed.png"), full_page=True)
            print(page.get_by_test_id("stMain").inner_text()[-3000:], file=sys.stderr)
            raise
        finally:
            browser.close()
    return seen


# ---------------------------------------------------------------------------------------------
# The test (on this machine)

if __name__ != "__main__":
    import pytest

    from cgan import jobs
    from tests.conftest import OUTPUT, make_run

    def cannot_run() -> str | None:
        if os.geteuid() != 0:
            return "needs root to make a network namespace (ip netns add)"
        if shutil.which("ip") is None:
            return "iproute2's `ip` is missing (apt-get install iproute2)"
        return browser_missing()

    pytestmark = pytest.mark.skipif(cannot_run() is not None, reason=cannot_run() or "")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def free_subnet() -> ipaddress.IPv4Network:
    """A /30 in 10.231.0.0/16 that no interface here uses."""
    used = [ipaddress.ip_interface(address).network
            for address in re.findall(r"inet (\S+)", ip("-o", "-4", "addr").stdout)]
    for third in range(7, 256):
        subnet = ipaddress.ip_network(f"10.231.{third}.0/30")
        if not any(subnet.overlaps(network) for network in used):
            return subnet
    raise RuntimeError("no free /30 in 10.231.0.0/16")


@contextlib.contextmanager
def other_machine():
    """A network namespace joined to this machine by a veth pair: (namespace, host's address,
    the namespace's address). Both are removed afterwards, even on failure."""
    tag = f"{os.getpid() % 100000}"
    namespace, host_end, far_end = f"cgan-hall-{tag}", f"cgh{tag}", f"cgn{tag}"
    subnet = free_subnet()
    host_ip, far_ip = (str(a) for a in list(subnet.hosts())[:2])
    try:
        ip("netns", "add", namespace)
        ip("link", "add", host_end, "type", "veth", "peer", "name", far_end)
        ip("link", "set", far_end, "netns", namespace)
        ip("addr", "add", f"{host_ip}/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("netns", "exec", namespace, "ip", "addr", "add", f"{far_ip}/30", "dev", far_end)
        ip("netns", "exec", namespace, "ip", "link", "set", far_end, "up")
        ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        yield namespace, host_ip, far_ip
    finally:
        ip("link", "del", host_end, check=False)  # removes both ends
        ip("netns", "del", namespace, check=False)


@contextlib.contextmanager
def hall_server(checkpoints: Path, log_path: Path):
    """`python -m app --network` (every interface) on a free port: (port, its output so far)."""
    port = free_port()
    environment = {**os.environ, "CGAN_CHECKPOINTS": str(checkpoints), "CGAN_MAX_JOBS": "2"}
    environment.pop("CGAN_LECTURER_KEY", None)
    log = open(log_path, "w")  # noqa: SIM115 (the server writes to it until the end)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--network", "--port", str(port), "--server.headless", "true"],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process, log_path, timeout=120)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def browse_from(namespace: str | None, role: str, url: str, shot: Path) -> dict:
    """Run this file's browser side, inside `namespace` (None: on this machine)."""
    command = [sys.executable, "-m", "tests.test_network_browser", role, url]
    if namespace is not None:
        command = ["ip", "netns", "exec", namespace, *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={**os.environ, "CGAN_SHOT": str(shot)})
    assert result.returncode == 0, f"{role}'s browser failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_hall_watches_and_only_the_lecturer_changes(tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    make_run(root / DONE, epochs=1, limit=200, seed=4)
    OUTPUT.mkdir(exist_ok=True)
    try:
        with other_machine() as (namespace, host_ip, far_ip):
            # The namespace reaches this machine only through the veth pair.
            with hall_server(root, OUTPUT / "network-server.log") as port:
                jobs.start(jobs.JobRequest(name=LIVE, epochs=EPOCHS, limit=1000, batch_size=100), root=root)
                output = (OUTPUT / "network-server.log").read_text()
                links = re.findall(r"http://(\S+):(\d+)/\?key=([A-Za-z0-9_-]+)", output)
                assert len(links) == 1, output
                _, link_port, key = links[0]
                assert int(link_port) == port and len(key) == 43

                visitor = browse_from(namespace, "visitor", f"http://{host_ip}:{port}/",
                                      OUTPUT / "network-visitor.png")
                assert set(visitor["pages"]) == set(PAGES)
                for title, shown in visitor["pages"].items():
                    assert shown["heading"] and not shown["exceptions"], (title, shown)
                train = visitor["train"]
                assert train["runs_listed"] == [DONE, LIVE], train  # the visitor sees every run
                assert re.match(rf"Epoch [1-9]\d* of {EPOCHS}", train["progress"] or ""), train
                assert train["held_back_note"], train
                assert train["start"] in ("absent", "disabled"), train
                assert train["stop_enabled"] == 0 and train["delete_enabled"] == 0, train

                machine = browse_from(None, "machine", f"http://127.0.0.2:{port}/",
                                      OUTPUT / "network-machine.png")
                train = machine["train"]
                assert train["start"] == "enabled" and not train["held_back_note"], train
                assert train["stop_enabled"] == 1 and train["delete_enabled"] == 1, train

                lecturer = browse_from(namespace, "lecturer", f"http://{host_ip}:{port}/?key={key}",
                                       OUTPUT / "network-lecturer.png")
                assert "key=" not in lecturer["address_bar"], lecturer["address_bar"]
                assert "key=" not in lecturer["address_bar_on_train"]
                train = lecturer["train"]
                assert train["start"] == "enabled" and not train["held_back_note"], train
                assert lecturer["stopped"] and lecturer["deleted"] and lecturer["started"], lecturer

                # What the lecturer's presses did, on disk.
                assert not (root / DONE).exists()
                assert jobs.get_job(LIVE, root).state in ("stopping", "stopped")
                assert jobs.get_job(STARTED, root) is not None
            output = (OUTPUT / "network-server.log").read_text()
            assert output.count(key) == 1, "the key was written beyond the printed link"
    finally:
        for job in jobs.list_jobs(root):  # never leave a trainer behind
            if job.is_alive() and job.pid:
                os.kill(job.pid, signal.SIGKILL)


if __name__ == "__main__":
    print(json.dumps(browse(sys.argv[1], sys.argv[2])), flush=True)
