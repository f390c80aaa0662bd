"""The discriminator page's first visit on a fresh server, as a lecturer meets it.

    .venv/bin/python -m bench.discriminator_first_visit                    # cgan-report, 3 tries
    .venv/bin/python -m bench.discriminator_first_visit --run cdcgan-report --tries 5
    .venv/bin/python -m bench.discriminator_first_visit --checkpoints /some/folder

Each try starts the lecturer's server (`python -m app`, which loads torch and the app's modules
before it listens) on a free loopback port, waits until it answers, opens a headless Chromium at
1280x720 and measures the seconds from `page.goto(url + "/discriminator?run=RUN")` to: the first
chart drawn (D's verdict under each label, at the top), the histogram of D's view drawn, the
curve of how often D is right drawn, and the page's script finished. The machine's load average
before each try is printed beside it: on the shared 2-core machine it moves every figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.browser_support import chromium_page, free_port, wait_for_app

ROOT = Path(__file__).resolve().parent.parent


def drawn(page, selector: str) -> None:
    page.locator(f"{selector} .main-svg").first.wait_for(state="visible", timeout=180_000)


def one_visit(run: str, checkpoints: Path | None) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, **({"CGAN_CHECKPOINTS": str(checkpoints)} if checkpoints else {})}
    log_path = ROOT / "test-output" / f"bench-discriminator-{port}.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(port), "--server.headless", "true"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            started = time.perf_counter()
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"the server stopped: see {log_path}")
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as answer:
                        if answer.read().decode().strip() == "ok":
                            break
                except OSError:
                    time.sleep(0.1)
            seconds = {"server up": time.perf_counter() - started}
            with chromium_page(1280, 720, fresh=True) as page:
                time.sleep(1.0)  # a lecturer opens the page a moment after the server answers
                start = time.perf_counter()
                page.goto(f"{url}/discriminator?run={run}")
                drawn(page, "[data-testid='stPlotlyChart']")
                seconds["first chart"] = time.perf_counter() - start
                drawn(page, ".st-key-discriminator_histogram")
                seconds["histogram"] = time.perf_counter() - start
                drawn(page, ".st-key-discriminator_fraction")
                seconds["curve"] = time.perf_counter() - start
                wait_for_app(page)
                seconds["script done"] = time.perf_counter() - start
            return seconds
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="cgan-report", help="the run to open (default cgan-report)")
    parser.add_argument("--tries", type=int, default=3, help="fresh servers, one visit each (default 3)")
    parser.add_argument("--checkpoints", type=Path, help="the runs' folder (default: the app's)")
    args = parser.parse_args()
    for _ in range(max(1, args.tries)):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        seconds = one_visit(args.run, args.checkpoints)
        print(f"{args.run}: " + ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items())
              + f"  (load average before: {load})", flush=True)


if __name__ == "__main__":
    main()
