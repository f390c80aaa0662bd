"""How many students one app server carries: server CPU per interaction and round trips under load.

    .venv/bin/python -m bench.load_test                      # 1, 10 and 30 sessions (a few minutes)
    .venv/bin/python -m bench.load_test --sessions 1 3 --changes 2

It starts the real server (`streamlit run app/main.py` on a free loopback port, as the browser
tests do), opens every session as its own browser context in ONE headless Chromium, and stops by
itself. Two figures are kept apart:

- server CPU per interaction: user+system CPU time of the server process (all its threads, read
  from /proc/<pid>/stat) before and after a batch of interactions, divided by their number. It does
  not depend on the browsers sharing the machine, so it is the figure that carries to a server.
- round trip: from the click (or key) in the page to the new image loaded on screen, as the page
  sees it. On one small machine this includes the browsers' own work, whose CPU time (Chromium and
  Playwright, every process below this one except the server) is printed beside it.

The serial part measures one interaction at a time from one session. The load part lets N sessions
change a digit or the seed every `--pace` seconds (a class at work), all at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, streamlit_server

ROOT = Path(__file__).resolve().parent.parent

IMAGES = "[data-testid='stImage'] img"
CAPTIONS = "[data-testid='stImageCaption']"
NOT_RUNNING = "[data-testid='stApp'][data-test-script-state='notRunning']"
TICKS = os.sysconf("SC_CLK_TCK")
TIMEOUT_MS = 120_000
POLL_MS = 25  # how often a page checks for the new image (rAF may be throttled with many pages)


# ---------------------------------------------------------------------------------------------
# CPU time from /proc (no psutil)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid`, every thread included (the process's own line
    in /proc sums its threads, also those that have ended)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def descendants(ancestor: int) -> list[int]:
    """Every living process below `ancestor`."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = _parent(int(entry))
            except (OSError, ValueError, IndexError):
                pass  # it ended while we looked
    found, frontier = [], [ancestor]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def server_pid(port: int) -> int:
    """The streamlit process this process started for `port` (browser_support keeps it inside)."""
    wanted = f"--server.port\0{port}\0"
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                if wanted in f.read():
                    return pid
        except OSError:
            pass
    raise RuntimeError(f"no streamlit process for port {port} below this process")


def clients_cpu_seconds(server: int) -> float:
    """CPU seconds of the browsers and Playwright's driver (our living descendants but the server)."""
    total = 0.0
    for pid in descendants(os.getpid()):
        if pid != server:
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
    return total


# ---------------------------------------------------------------------------------------------
# One session: one browser context with one page on the app


@dataclass
class Session:
    url: str
    page: object = None
    digit: int = 7
    seed: int = 42
    round_trips: dict[str, list[float]] = field(default_factory=dict)

    async def settled(self) -> None:
        """The script run is over and every image on the page is loaded and laid out."""
        await self.page.wait_for_selector(NOT_RUNNING, timeout=TIMEOUT_MS)
        await self.page.wait_for_function(
            f"""() => [...document.querySelectorAll("{IMAGES}")]
                     .every(img => img.complete && img.naturalWidth > 0)""",
            timeout=TIMEOUT_MS,
        )

    async def _timed(self, kind: str, action, caption: str) -> float:
        """Seconds from `action` to the first image showing `caption` (loaded); then settle."""
        start = time.perf_counter()
        await action()
        await self.page.wait_for_function(
            f"""(expected) => {{
                const caption = document.querySelector("{CAPTIONS}");
                const img = document.querySelector("{IMAGES}");
                return caption && caption.innerText.trim().startsWith(expected)
                       && img && img.complete && img.naturalWidth > 0;
            }}""",
            arg=caption,
            polling=POLL_MS,
            timeout=TIMEOUT_MS,
        )
        elapsed = time.perf_counter() - start
        await self.settled()
        self.round_trips.setdefault(kind, []).append(elapsed)
        return elapsed

    async def open_generate(self) -> float:
        """A new tab on the Generate page, until its images are on screen."""
        start = time.perf_counter()
        await self.page.goto(self.url + "/generate", timeout=TIMEOUT_MS)
        await self.page.get_by_role("heading", name="Generate digits").wait_for(timeout=TIMEOUT_MS)
        await self.settled()
        elapsed = time.perf_counter() - start
        self.round_trips.setdefault("page open", []).append(elapsed)
        return elapsed

    async def change_digit(self) -> float:
        self.digit = random.choice([d for d in range(10) if d != self.digit])
        digits = self.page.get_by_test_id("stMain").get_by_test_id("stButtonGroup").first  # the sidebar has one too
        radio = digits.get_by_role("radio", name=str(self.digit))
        return await self._timed("digit change", radio.click, f"Digit {self.digit}, seed {self.seed},")

    async def change_seed(self) -> float:
        self.seed += 1
        box = self.page.get_by_test_id("stNumberInputField").first

        async def type_seed():
            await box.fill(str(self.seed))
            await box.press("Enter")

        return await self._timed("seed change", type_seed, f"Digit {self.digit}, seed {self.seed},")

    async def open_evolution(self) -> int:
        """Switch to Training evolution in the sidebar; the epoch shown."""
        await self.page.get_by_test_id("stSidebarNavLink").filter(has_text="Training evolution").click()
        await self.page.get_by_role("heading", name="Training evolution").wait_for(timeout=TIMEOUT_MS)
        await self.settled()
        return int((await self.page.locator(CAPTIONS).first.inner_text()).split()[-1])

    async def epoch_back(self, shown: int) -> float:
        slider = self.page.get_by_test_id("stSlider").get_by_role("slider")
        return await self._timed("epoch slider", lambda: slider.press("ArrowLeft"), f"Epoch {shown - 1}")


async def new_session(browser, url: str) -> Session:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return Session(url=url, page=page)


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Row:
    what: str
    sessions: int
    interactions: int
    server_ms: float  # server CPU per interaction
    clients_ms: float  # browsers' CPU per interaction
    median_s: float | None = None
    p90_s: float | None = None
    max_s: float | None = None
    wall_s: float = 0.0
    net_ms: float = 0.0  # server CPU per interaction less what it burns idle in the same time
    not_rendered: int = 0  # changes whose new image did not appear within TIMEOUT_MS

    def net_of_idle(self, idle_per_s: float) -> Row:
        self.net_ms = self.server_ms - 1000 * idle_per_s * self.wall_s / max(1, self.interactions)
        return self


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Meter:
    """Server and client CPU seconds spent between construction and `row()`."""

    def __init__(self, server: int):
        self.server = server
        self.start = (cpu_seconds(server), clients_cpu_seconds(server), time.perf_counter())

    def row(self, what: str, sessions: int, round_trips: list[float]) -> Row:
        server0, clients0, wall0 = self.start
        n = len(round_trips)
        per = 1000 / max(1, n)
        return Row(
            what, sessions, n,
            server_ms=per * (cpu_seconds(self.server) - server0),
            clients_ms=per * (clients_cpu_seconds(self.server) - clients0),
            median_s=statistics.median(round_trips) if n else float("nan"),
            p90_s=_percentile(round_trips, 0.9) if n else float("nan"),
            max_s=max(round_trips, default=float("nan")),
            wall_s=time.perf_counter() - wall0,
        )


async def serial_costs(browser, url: str, server: int, repeats: int) -> list[Row]:
    """One interaction at a time from one session: what each kind costs the server."""
    rows = []
    meter = Meter(server)
    opened = []
    for _ in range(repeats):  # a new tab each time: a student opening the app
        session = await new_session(browser, url)
        opened.append(await session.open_generate())
        await session.page.context.close()
    rows.append(meter.row("page open (new tab, Generate)", 1, opened))

    session = await new_session(browser, url)
    await session.open_generate()
    await session.change_digit()  # warm-up: the generator of this epoch is loaded and cached
    for kind, change in (("digit change", session.change_digit), ("seed change", session.change_seed)):
        meter = Meter(server)
        times = [await change() for _ in range(repeats)]
        rows.append(meter.row(kind, 1, times))

    shown = await session.open_evolution()
    await session.epoch_back(shown)  # warm-up
    shown -= 1
    meter = Meter(server)
    times = []
    for _ in range(min(repeats, shown - 1)):  # down to epoch 1 at most
        times.append(await session.epoch_back(shown))
        shown -= 1
    rows.append(meter.row("epoch slider (Training evolution)", 1, times))
    await session.page.context.close()
    return rows


async def class_at_work(browser, url: str, server: int, sessions: int, changes: int, pace: float) -> Row:
    """`sessions` students, each changing the digit or the seed every `pace` seconds (random
    phase), `changes` times. Round trips of every change; server CPU per change."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    students = await asyncio.gather(*(new_session(browser, url) for _ in range(sessions)))
    for student in students:  # one after another, as a class comes in (and 30 tabs opening at
        await student.open_generate()  # once on 2 cores can outlast any timeout)
    await asyncio.gather(*(s.change_digit() for s in students))  # warm-up, not counted

    failures = []

    async def work(student: Session) -> list[float]:
        await asyncio.sleep(random.uniform(0, pace))
        times = []
        for i in range(changes):
            began = time.perf_counter()
            try:
                times.append(await (student.change_digit() if i % 2 == 0 else student.change_seed()))
            except PlaywrightTimeout:  # not rendered within TIMEOUT_MS: counted, the session goes on
                failures.append(student)
                return times
            await asyncio.sleep(max(0.0, pace - (time.perf_counter() - began)))
        return times

    meter = Meter(server)
    results = await asyncio.gather(*(work(s) for s in students))
    row = meter.row(f"digit/seed every {pace:g} s", sessions, [t for times in results for t in times])
    row.not_rendered = len(failures)
    await asyncio.gather(*(s.page.context.close() for s in students))
    return row


async def profile_changes(browser, url: str, server: int, changes: int, out: Path) -> None:
    """py-spy samples the server while one session changes digit and seed `changes` times."""
    session = await new_session(browser, url)
    await session.open_generate()
    await session.change_digit()
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server), "--rate", "250",
         "--format", "raw", "--output", str(out), "--nonblocking", "--threads"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1.5)  # py-spy attaches
    for i in range(changes):
        await (session.change_digit() if i % 2 == 0 else session.change_seed())
    spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
    spy.wait(timeout=60)
    await session.page.context.close()


async def measure(
    checkpoints: Path | None, sessions: list[int], changes: int, pace: float, repeats: int,
    profile: Path | None = None, env: dict[str, str] | None = None, verbose: bool = False,
) -> tuple[list[Row], float]:
    """Every row, and the server's idle CPU per second (what it burns with nothing to do)."""
    from playwright.async_api import async_playwright

    with streamlit_server(checkpoints=checkpoints, env=env) as url:
        server = server_pid(int(url.rsplit(":", 1)[1]))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                warm = await new_session(browser, url)  # first script run: imports, MNIST, caches
                await warm.open_generate()
                await warm.page.context.close()
                idle_start = cpu_seconds(server)
                await asyncio.sleep(2)
                idle_per_s = (cpu_seconds(server) - idle_start) / 2
                rows = await serial_costs(browser, url, server, repeats) if repeats else []
                if verbose:
                    print(table([row.net_of_idle(idle_per_s) for row in rows]), flush=True)
                for n in sessions:
                    rows.append(await class_at_work(browser, url, server, n, changes, pace))
                    if verbose:
                        print(table([rows[-1].net_of_idle(idle_per_s)]).splitlines()[-1], flush=True)
                if profile is not None:
                    await profile_changes(browser, url, server, 4 * repeats, profile)
            finally:
                await browser.close()
    return [row.net_of_idle(idle_per_s) for row in rows], idle_per_s


def table(rows: list[Row]) -> str:
    lines = [
        "| interaction | sessions | n | server CPU ms / interaction | of which not idle "
        "| browsers' CPU ms / interaction | round trip median s | p90 s | max s | not rendered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.what} | {r.sessions} | {r.interactions} | {r.server_ms:.0f} | {r.net_ms:.0f} "
            f"| {r.clients_ms:.0f} "
            f"| {r.median_s:.2f} | {r.p90_s:.2f} | {r.max_s:.2f} | {r.not_rendered} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown CPU")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"{os.cpu_count()} cores, {model}; load average {load}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 30],
                        help="session counts for the load part (default 1 10 30)")
    parser.add_argument("--changes", type=int, default=4, help="changes per session (default 4)")
    parser.add_argument("--pace", type=float, default=2.0, help="seconds between a session's changes")
    parser.add_argument("--repeats", type=int, default=8, help="interactions per kind, serial part (0: skip it)")
    parser.add_argument("--checkpoints", type=Path, help="runs to serve (default: the shipped ones)")
    parser.add_argument("--profile", type=Path,
                        help="also sample the server with py-spy during digit/seed changes (raw stacks)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of the server, e.g. STREAMLIT_RUNNER_POST_SCRIPT_GC=false")
    args = parser.parse_args(argv)
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        print(f"error: no Chromium at {CHROMIUM}", file=sys.stderr)
        return 1
    if min(args.sessions) < 1 or args.changes < 1 or args.repeats < 0 or args.pace < 0:
        print("error: sessions and changes must be at least 1, repeats and pace at least 0", file=sys.stderr)
        return 2
    if any("=" not in item for item in args.env):
        print("error: --env takes NAME=VALUE", file=sys.stderr)
        return 2
    env = dict(item.split("=", 1) for item in args.env)
    print(f"machine before: {machine()}", flush=True)
    rows, idle = asyncio.run(
        measure(args.checkpoints, args.sessions, args.changes, args.pace, args.repeats, args.profile, env, verbose=True)
    )
    print(table(rows))
    print(f"server idle: {1000 * idle:.0f} ms CPU per second; machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
