"""``dropbox front-config``: print the front's HAProxy configuration for operators."""

from __future__ import annotations

import argparse
import sys

from common.cli import EXIT_OK
from dropbox.cli.options import Commands
from dropbox.errors import DropboxError, UsageError


def add_commands(commands: Commands) -> None:
    # Defaults are the deployment's (deploy/haproxy.cfg); the import stays light.
    parser = commands.add_parser(
        "front-config",
        help="print the front's HAProxy configuration",
        description=(
            "Print the HAProxy configuration of the front: HAProxy on 127.0.0.1:PORT (the "
            "source onion's target) and 127.0.0.1:API_PORT (the API onion's) before the source "
            "interface on APP_PORT and the sync API on API_APP_PORT. deploy/haproxy.cfg is its "
            "output with the defaults; `dropbox serve --front haproxy` writes the same "
            "configuration for its own ports to DIR/haproxy.cfg. With --node (once per app "
            "machine), the front passes to several nodes and checks their health "
            "(deploy/haproxy-nodes.cfg, docs/operations.md)."
        ),
    )
    for option, default, what in (
        ("--port", 8080, "the source front's port (the source onion's target)"),
        ("--api-port", 8081, "the API front's port (the API onion's target)"),
        ("--app-port", 8180, "the source interface's gunicorn port"),
        ("--api-app-port", 8181, "the sync API's gunicorn port"),
    ):
        parser.add_argument(option, type=int, default=default, help=f"{what} (default: {default})")
    parser.add_argument(
        "--node", action="append", default=[], metavar="ADDRESS",
        help="an app node's IPv4 address as the front reaches it, its apps on APP_PORT and "
        "API_APP_PORT (repeatable, one per node; default: 127.0.0.1 alone, this machine)",
    )  # fmt: skip
    parser.add_argument(
        "--api-to", choices=("one", "all"), default="one",
        help="the sync API behind the first node alone (default) or behind every node",
    )  # fmt: skip
    parser.set_defaults(handler=_front_config)


def _front_config(args: argparse.Namespace) -> int:
    from dropbox.serve import front_config

    try:
        text = front_config(
            port=args.port, api_port=args.api_port, app_port=args.app_port,
            api_app_port=args.api_app_port, node_hosts=args.node or ["127.0.0.1"],
            api_to=args.api_to,
        )  # fmt: skip
    except DropboxError as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(text)
    return EXIT_OK
