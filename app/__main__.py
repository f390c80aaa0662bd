"""Start the app with the project's settings, wherever the command is run:

    python -m app                  http://127.0.0.1:8501, this machine only
    python -m app --port 8600      another port
    python -m app --network        the lecture hall's network too (every interface)

Streamlit reads .streamlit/config.toml only from the folder it is started in, so the launcher
starts it from the repository root and also passes the settings that keep the server private as
flags (they win over any other config file). Other arguments go to `streamlit run` unchanged.
Torch and the app's modules are imported before the server listens (app.preload), so the first
page a lecturer opens does not wait for them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.preload import warm_imports, warm_views

ROOT = Path(__file__).resolve().parent.parent


def command(port: int, network: bool, extra: list[str]) -> list[str]:
    """The `streamlit run` command line for these choices."""
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
        "--server.address", "0.0.0.0" if network else "127.0.0.1",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--logger.hideWelcomeMessage", "true",  # also hides Streamlit's "install skills" pop-up
        "--runner.postScriptGC", "false",  # see streamlit_config.toml
        *extra,
    ]


class OneLineParser(argparse.ArgumentParser):
    """Errors in one line on stderr, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


# Flags the launcher sets itself from its own options: given to Streamlit as well, the server
# would listen somewhere other than where the launcher says.
OWN_FLAGS = {"--server.port": "give the port as --port", "--server.address": "use --network to listen "
             "on every interface (the default is this machine only)"}


def port_number(text: str, source: str, parser: argparse.ArgumentParser) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        parser.error(f"{source}: use a port number from 1 to 65535")
    return port


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", help="port to listen on (default $PORT, else 8501)")
    parser.add_argument("--network", action="store_true",
                        help="listen on every interface, not just this machine")
    args, extra = parser.parse_known_args(argv)
    for flag in extra:
        name = flag.split("=", 1)[0]
        if name in OWN_FLAGS:
            parser.error(f"{name}: {OWN_FLAGS[name]}")
    if args.port is not None:
        args.port = port_number(args.port, f"--port {args.port}", parser)
    else:
        text = os.environ.get("PORT", "").strip() or "8501"
        args.port = port_number(text, f"PORT={os.environ.get('PORT', '')}", parser)
    if args.network:
        os.environ["CGAN_ALLOW_NETWORK"] = "1"
    print(f"The app: http://127.0.0.1:{args.port}"
          + ("  (and this machine's addresses on the network)" if args.network else ""), flush=True)
    if args.network:  # the lecturer's controls from any device: a new secret, shown here only
        from app import access

        os.environ[access.KEY_ENV] = key = access.new_key()
        print("The lecturer's link (Start, Stop, Delete from any device; keep it private):",
              access.lecturer_link(args.port, key), flush=True)
    os.chdir(ROOT)  # Streamlit reads .streamlit/config.toml from the folder it starts in
    # Torch and the app's modules load before the server listens, not in the first visitor's page.
    print("Loading torch and the app's modules ...", end=" ", flush=True)
    print(f"{warm_imports():.1f} s", flush=True)
    warm_views()  # D's view across the epochs, judged in the background for the verdict page
    from streamlit.web import cli

    sys.argv = ["streamlit", *command(args.port, args.network, extra)[3:]]
    cli.main(prog_name="streamlit")  # the same command line as `streamlit run`, in this process


if __name__ == "__main__":
    main()
