"""``dropbox serve`` and ``dropbox onions``: run the servers, publish the onion services, and
the ``--tor`` options both take."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from common.cli import EXIT_OK, say
from crypto import Algorithm, fingerprint
from dropbox.cli.options import Commands, add_data_dir, settings_for
from dropbox.errors import DropboxError, UsageError
from dropbox.front import HAPROXY
from dropbox.instance import load_instance

if TYPE_CHECKING:
    from dropbox.onion import TorChoice


def add_commands(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the source interface and the sync API, and publish them as onion services",
        description=(
            "Run the source interface on 127.0.0.1:PORT and the sync API (for the transfer "
            "machine) on 127.0.0.1:API_PORT, each under its own gunicorn, and publish them "
            "through Tor as two onion services: the source onion, and the API onion with "
            "client authorization for the keyring's transfer clients (--tor system or --tor "
            "launch; with --tor none, the default, nothing is published). With the front "
            "(--front), HAProxy listens on PORT and API_PORT and the apps move behind it. "
            "SIGTERM or Ctrl-C stops everything and removes the onion services from tor. Other "
            "POSTERN_* variables adjust limits, throttling and retention."
        ),
    )
    add_data_dir(serve)
    serve.add_argument(
        "--port", type=int, default=8080,
        help="the source interface's TCP port on 127.0.0.1 (default: 8080)",
    )  # fmt: skip
    serve.add_argument(
        "--api-port", type=int, default=8081, metavar="API_PORT",
        help="the sync API's TCP port on 127.0.0.1 (default: 8081)",
    )  # fmt: skip
    serve.add_argument(
        "--bind", default="127.0.0.1", metavar="ADDRESS",
        help="the address to listen on; only 127.0.0.1 is accepted",
    )  # fmt: skip
    serve.add_argument(
        "--front", choices=("auto", "haproxy", "none"), default="auto",
        help="haproxy: run HAProxy on PORT and API_PORT before the apps, bounding slow clients "
        "(its configuration goes to DIR/haproxy.cfg); none: gunicorn listens on PORT and "
        "API_PORT itself; auto (default): haproxy whenever the servers are published through "
        "tor, none with --tor none",
    )  # fmt: skip
    serve.add_argument(
        "--app-port", type=int, default=0, metavar="APP_PORT",
        help="with the front: the source interface's port behind it (default: a free port)",
    )  # fmt: skip
    serve.add_argument(
        "--api-app-port", type=int, default=0, metavar="API_APP_PORT",
        help="with the front: the sync API's port behind it (default: a free port)",
    )  # fmt: skip
    serve.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="worker processes of each of the two apps (default: one per core); they share "
        "sessions, budgets and nonces through the database",
    )  # fmt: skip
    _add_tor_options(serve, default="none")
    serve.set_defaults(handler=_serve)

    onions = commands.add_parser(
        "onions",
        help="publish the onion services for servers run by systemd",
        description=(
            "Publish the source onion (for 127.0.0.1:PORT) and the API onion (for "
            "127.0.0.1:API_PORT, client authorization for the keyring's transfer clients) "
            "through a running tor, keep the API onion in step with the installed keyring, "
            "and remove both from tor on SIGTERM or Ctrl-C (postern-onion.service). The "
            "servers themselves run elsewhere (postern-source.service, postern-api.service)."
        ),
    )
    add_data_dir(onions)
    _add_tor_options(onions, default="system")
    onions.add_argument("--port", type=int, default=8080, help="the source interface's port")
    onions.add_argument(
        "--api-port", type=int, default=8081, metavar="API_PORT", help="the sync API's port"
    )
    onions.set_defaults(handler=_onions)


def _add_tor_options(parser: argparse.ArgumentParser, *, default: str) -> None:
    parser.add_argument(
        "--tor", choices=("none", "system", "launch"), default=None,
        help="none: publish nothing, serve on 127.0.0.1 only; system: publish through a "
        "running tor (--tor-control); launch: start a private tor with its data in DIR/tor "
        f"(default: {default})",
    )  # fmt: skip
    parser.add_argument(
        "--tor-control", metavar="SOCKET_OR_PORT",
        help="the running tor's control socket (default /run/tor/control) or loopback "
        "port (9051, 127.0.0.1:9051), cookie authentication; implies --tor system",
    )  # fmt: skip
    parser.add_argument(
        "--tor-config", action="append", default=[], metavar="LINE",
        help="with --tor launch: one more torrc line for the private tor (repeatable; for "
        "example 'UseBridges 1' and 'Bridge ...' where Tor is blocked)",
    )  # fmt: skip
    parser.add_argument(
        "--publish-timeout", type=float, default=180.0, metavar="SECONDS",
        help="how long to wait for each onion's descriptor to be published (default: 180; "
        "0: do not wait)",
    )  # fmt: skip
    parser.set_defaults(tor_default=default)


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the other commands need neither Flask nor gunicorn.
    from dropbox.gunicorn_settings import check_bind, check_workers
    from dropbox.serve import serve

    address = args.bind
    try:
        check_bind(address)
        if args.workers is not None:
            check_workers(args.workers)
    except DropboxError as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be from 1 to 65535, got {args.port}")
    if not 1 <= args.api_port <= 65535:
        raise UsageError(f"--api-port must be from 1 to 65535, got {args.api_port}")
    if args.port == args.api_port:
        raise UsageError(f"--port and --api-port must differ, both are {args.port}")
    tor = _tor_choice(args)
    front = _front_choice(args, tor)
    settings = settings_for(args.data_dir)
    # A clear error now, rather than a worker that fails.
    instance = load_instance(settings.data_dir)
    say(f"team root fingerprint: {fingerprint(Algorithm.ED25519, instance.pinned_root)}")
    say(f"source interface:      http://{address}:{args.port}")
    say(f"sync API:              port {args.api_port}, on the same address")
    if tor.mode == "none":
        say(
            "Tor: none: nothing is published as an onion service, the servers are reachable "
            "on this machine only (--tor system or --tor launch publishes them)"
        )
    sys.stdout.flush()
    serve(
        settings,
        port=args.port,
        api_port=args.api_port,
        address=address,
        tor=tor,
        front=front,
        app_port=args.app_port,
        api_app_port=args.api_app_port,
        workers=args.workers,
        report=_report,
    )
    return EXIT_OK


def _front_choice(args: argparse.Namespace, tor: TorChoice) -> str:
    """``auto``: the front whenever tor publishes the servers, that is whenever strangers'
    slow clients can reach them; with ``--tor none`` only this machine can."""
    front = str(args.front)
    if front == "auto":
        front = "none" if tor.mode == "none" else "haproxy"
    for option, port in (("--app-port", args.app_port), ("--api-app-port", args.api_app_port)):
        if not 0 <= port <= 65535:
            raise UsageError(f"{option} must be from 0 (a free port) to 65535, got {port}")
        if front == "none" and port:
            raise UsageError(f"{option} goes with the front (--front haproxy) only")
        if port and port in (args.port, args.api_port):
            raise UsageError(f"{option} must differ from --port and --api-port")
    if args.app_port and args.app_port == args.api_app_port:
        raise UsageError(f"--app-port and --api-app-port must differ, both are {args.app_port}")
    if front == "haproxy" and not os.access(HAPROXY, os.X_OK):
        raise UsageError(
            f"the front needs HAProxy ({HAPROXY}): apt install haproxy, or --front none to "
            "let slow clients reach gunicorn directly"
        )
    return front


def _onions(args: argparse.Namespace) -> int:
    from dropbox.publishing import run_onions

    for option, port in (("--port", args.port), ("--api-port", args.api_port)):
        if not 1 <= port <= 65535:
            raise UsageError(f"{option} must be from 1 to 65535, got {port}")
    tor = _tor_choice(args)
    if tor.mode == "none":
        raise UsageError("dropbox onions needs a tor: --tor system or --tor launch")
    settings = settings_for(args.data_dir)
    instance = load_instance(settings.data_dir)
    say(f"team root fingerprint: {fingerprint(Algorithm.ED25519, instance.pinned_root)}")
    run_onions(
        tor, settings.data_dir, source_port=args.port, api_port=args.api_port, report=_report
    )
    return EXIT_OK


def _report(line: str) -> None:
    say(line)


def _tor_choice(args: argparse.Namespace) -> TorChoice:
    mode = args.tor
    if args.tor_control is not None:
        if mode not in (None, "system"):
            raise UsageError("--tor-control goes with --tor system only")
        mode = "system"
    if not 0 <= args.publish_timeout <= 3600:
        raise UsageError(
            f"--publish-timeout must be from 0 to 3600 seconds, not {args.publish_timeout}"
        )
    timeout = args.publish_timeout or None
    if args.tor_config and (mode or args.tor_default) != "launch":
        raise UsageError("--tor-config goes with --tor launch only")
    for line in args.tor_config:
        if not line.strip() or "\n" in line or "\r" in line:
            raise UsageError(f"--tor-config takes one torrc line, not {line!r}")
    # stem loads with the commands that talk to tor, not with every command line.
    from dropbox.onion import ControlAddress, TorChoice

    try:
        control = ControlAddress.parse(args.tor_control) if args.tor_control else None
        return TorChoice(
            mode or args.tor_default,
            control,
            options=tuple(args.tor_config),
            publish_timeout=timeout,
        )
    except DropboxError as exc:
        raise UsageError(str(exc)) from None
