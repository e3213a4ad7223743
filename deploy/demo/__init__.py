"""The local demo (``make demo``): the whole Postern system on one machine.

Run it from the repository root as ``python -m deploy.demo`` (or ``make demo``), or from any
directory as ``/path/to/postern/.venv/bin/python /path/to/postern/deploy/demo``. Every path
it prints is absolute, so the commands it suggests work when pasted in any directory.

It (re)creates a demo data directory (``demo-data/`` in the repository root unless
``--data-dir`` names another) and, through the real command-line tools:

1. makes a journalist station with ``journalist init`` (journalist ``demo``) and the keys
   of a transfer machine with ``journalist keys add-transfer-client``;
2. makes the server's data directory with ``dropbox init``, installs the station's keyring
   with ``dropbox keyring install`` and pins the server's key on the station with
   ``journalist server pin``;
3. starts the server with ``dropbox serve --front haproxy``: the source interface and the
   sync API under gunicorn on 127.0.0.1, behind the front (HAProxy, which bounds slow
   clients, on the ports given) and, where tor is installed, both published as onion
   services by a private tor process (``--tor launch``; ``--tor none`` serves loopback only);
4. plays one source: a codename, then a message and a file sent through the plain form
   (the server seals them as they stream in);
5. plays the transfer machine (``dropbox-transfer pull`` onto a "USB stick" directory) and
   the station (``journalist import``);
6. starts the station's web interface with ``journalist ui`` on 127.0.0.1;
7. prints every address, the demo passphrase, the demo source's codename and what to try
   next, and keeps everything running until Ctrl-C (``--serve-seconds N`` stops after N
   seconds, for tests), then stops it all cleanly.

The demo keys are protected by a passphrase printed for everyone to see: they are for the
demo only. The demo exits with status 1 if any step fails.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from deploy.demo.layout import DEFAULT_DATA_DIR, DemoLayout, fresh_data_dir
from deploy.demo.steps import Demo
from deploy.demo.summary import print_summary
from deploy.demo.tools import DemoError, Tools, show


def serve_until_stopped(demo: Demo, seconds: float | None) -> None:
    """Keep everything running until Ctrl-C (or ``seconds``, or one of them stops)."""
    print("Stop everything with Ctrl-C.", flush=True)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            for background in (demo.server, demo.ui):
                if background is not None and not background.running():
                    raise DemoError(f"{background.name} stopped unexpectedly")
            time.sleep(0.2)
    except KeyboardInterrupt:
        print()


@contextlib.contextmanager
def stopped_at_exit(demo: Demo) -> Iterator[None]:
    try:
        yield
    finally:
        demo.stop()
        if demo.server is not None or demo.ui is not None:
            print("Everything has stopped (the onion services were removed from tor).")


def choose_tor(requested: str) -> str:
    """``auto``: a private tor where tor is installed, else loopback only (said plainly)."""
    if requested != "auto":
        return requested
    if shutil.which("tor") is None and not Path("/usr/sbin/tor").exists():
        print("tor is not installed: the demo serves on 127.0.0.1 only (apt install tor).")
        return "none"
    return "launch"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the whole Postern system locally.")
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
        help=f"where to put the demo data (default: {show(DEFAULT_DATA_DIR)}); "
        "deleted and made again on every run",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=8080, help="source interface (default 8080)")
    parser.add_argument("--api-port", type=int, default=8081, help="sync API (default 8081)")
    parser.add_argument("--ui-port", type=int, default=8090, help="station UI (default 8090)")
    parser.add_argument(
        "--tor", choices=("auto", "launch", "none"), default="auto",
        help="launch: publish both onions through a private tor process (it connects to the "
        "Tor network); none: loopback only; auto (default): launch where tor is installed",
    )  # fmt: skip
    parser.add_argument(
        "--serve-seconds", type=float, default=None, metavar="N",
        help="stop everything after N seconds (default: run until Ctrl-C)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    layout = DemoLayout(args.data_dir.absolute())
    tools = Tools.beside(Path(sys.executable).absolute())
    demo = Demo(
        layout, tools, args.port, args.api_port, args.ui_port, choose_tor(args.tor),
    )  # fmt: skip
    try:
        fresh_data_dir(layout.data_dir)
        with stopped_at_exit(demo):
            fingerprint = demo.set_up()
            demo.start_server()
            codename = demo.loop()
            demo.start_ui()
            print_summary(demo, fingerprint, codename)
            serve_until_stopped(demo, args.serve_seconds)
    except (DemoError, OSError, requests.RequestException) as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0
