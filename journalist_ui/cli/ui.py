"""``journalist ui``: the station's web interface, served to this machine only."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.cli import EXIT_OK, say
from journalist_ui import station
from journalist_ui.cli.options import Commands, add_home, home


def add_commands(commands: Commands) -> None:
    ui = commands.add_parser(
        "ui",
        help="run the station's web interface on 127.0.0.1",
        description=(
            "Serve the station's web interface to the browser on this machine only "
            "(127.0.0.1). Unlock it with a journalist's passphrase; it locks itself when idle "
            "and when stopped (Ctrl+C)."
        ),
    )
    add_home(ui)
    ui.add_argument(
        "--host", default="127.0.0.1", metavar="ADDRESS",
        help="must be 127.0.0.1 (any other address is refused)",
    )  # fmt: skip
    ui.add_argument("--port", type=_port, default=8090, metavar="PORT", help="default 8090")
    ui.add_argument(
        "--idle-minutes", type=_minutes, default=10, metavar="N",
        help="lock a session after N minutes without a request (default 10)",
    )  # fmt: skip
    ui.set_defaults(handler=_ui)


def _ui(args: argparse.Namespace) -> int:
    # Imported here so that the other commands do not load Flask.
    from journalist_ui.web.app import UISettings
    from journalist_ui.web.serve import check_host, serve

    check_host(args.host)
    where: Path = home(args)
    station.load_station(where)  # a clear error now rather than on the unlock page
    settings = UISettings(
        home=where, port=args.port, idle_timeout=timedelta(minutes=args.idle_minutes)
    )

    def ready(url: str) -> None:
        say(f"The station UI is at {url} (only this machine can reach it).")
        say("Stop it with Ctrl+C; stopping locks every session.")

    serve(settings, lambda: datetime.now(UTC), host=args.host, ready=ready)
    return EXIT_OK


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number from 1 to 65535: {text!r}")
    return int(text)


def _minutes(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 24 * 60:
        raise argparse.ArgumentTypeError(f"not a number of minutes from 1 to 1440: {text!r}")
    return int(text)
