"""``journalist server pin``: the server signing key that inbound bundles must be signed with."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import EXIT_OK, say
from journalist_ui import station
from journalist_ui.cli.options import PROG, Commands, add_home, home, warn


def add_commands(commands: Commands) -> None:
    server = commands.add_parser(
        "server", help="the server this station trusts",
        description="Manage the server signing key that inbound bundles must be signed with.",
    )  # fmt: skip
    server_commands = server.add_subparsers(
        dest="server_command", metavar="COMMAND", title="commands", required=True
    )
    pin = server_commands.add_parser(
        "pin",
        help="pin the server signing key (server.pub from `dropbox init`)",
        description=(
            "Pin the server's signing public key: inbound bundles are accepted only when signed "
            "by it. Compare the fingerprint printed here with the one `dropbox init` printed."
        ),
    )
    pin.add_argument("key_file", type=Path, metavar="FILE", help="the server.pub file")
    add_home(pin)
    pin.add_argument(
        "--replace", action="store_true",
        help="replace a different key pinned before (only when the server really changed)",
    )  # fmt: skip
    pin.set_defaults(handler=_pin)


def _pin(args: argparse.Namespace) -> int:
    result = station.pin_server_key(home(args), args.key_file, replace=args.replace)
    if result.unchanged:
        say(f"This server key is already pinned: {result.fingerprint}")
        return EXIT_OK
    if result.replaced is not None:
        warn(
            f"{PROG}: warning: replaced the pinned server key {result.replaced}; "
            "bundles signed by it are refused from now on"
        )
    say("Pinned the server signing key. Its fingerprint:")
    say(f"  {result.fingerprint}")
    say("It must be the fingerprint `dropbox init` printed on the server.")
    return EXIT_OK
