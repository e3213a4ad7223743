"""Running the source interface and the sync API under gunicorn (``dropbox serve``).

Both listen on 127.0.0.1 only, each on its own port: Tor reaches them there and publishes each
as its own onion service (the sync API's with client authorization). Each runs under its own
gunicorn arbiter, in its own process (:func:`serve` starts both and stops both), with one
worker process per core by default and many threads per worker (gthread), because Tor clients
are slow, so many requests wait on the network at once. Timeouts are generous for the same
reason. The workers keep no state of their own: sessions, budgets and the sync API's nonces
are in the database (:mod:`dropbox.web.sessions`, :mod:`dropbox.web.throttle`,
:mod:`dropbox.sync.auth`), so any worker serves any request and a restart loses nothing. The
database is migrated once, by ``dropbox migrate``, before the apps start; ``dropbox serve``
and the workers only check its schema and refuse an old one.

No access log is written, gunicorn's own access logging is switched off, and its error log
never names a request: lines that would carry a path or an address are rewritten
(:class:`PosternGunicornLogger`). ``deploy/gunicorn.conf.py`` holds the same settings for
running under systemd.

With ``front="haproxy"`` (:mod:`dropbox.front`), HAProxy listens on the public ports (those
tor publishes) and the apps move to app ports behind it. This process binds the app ports
itself before any child starts and hands each gunicorn its listening socket (``fd://``), so
HAProxy never meets a closed port while gunicorn starts (connections wait in the backlog).

This module adapts gunicorn, which ships no type information (setup.cfg relaxes mypy here).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from flask import Flask
from gunicorn.app.base import BaseApplication

from common.files import write_atomic
from config import ServerSettings, load_server_settings
from dropbox import db
from dropbox.app import create_app
from dropbox.errors import DropboxError
from dropbox.front import (
    CONFIG_FILE,
    DEFAULT_LIMITS,
    Address,
    Front,
    FrontLimits,
    fit_to_file_limit,
    haproxy_config,
    listen_loopback,
    run_haproxy,
)
from dropbox.gunicorn_settings import (
    API_THREADS,
    LOOPBACK,
    THREADS,
    UPLOAD_SLOTS,
    api_gunicorn_options,
    default_workers,
    gunicorn_options,
)
from dropbox.onion import TorChoice
from dropbox.publishing import published_onions
from dropbox.supervisor import run_together
from dropbox.sweep import SWEEP_INTERVAL
from dropbox.sync.app import create_sync_app

DEFAULT_PORT: Final = 8080
#: The sync API's port (docs/format.md section 9).
DEFAULT_API_PORT: Final = 8081
#: Where the apps listen behind the front in the deployment (deploy/haproxy.cfg).
DEFAULT_APP_PORT: Final = 8180
DEFAULT_API_APP_PORT: Final = 8181
#: ``dropbox serve --front``: ``haproxy`` runs the front as a child, ``none`` does not.
FRONTS: Final = ("haproxy", "none")
#: ``dropbox front-config --api-to``: the sync API behind the first node alone, or all nodes.
API_TO: Final = ("one", "all")


class SourceInterfaceServer(BaseApplication):
    """gunicorn, configured in code; the app is made in each worker (never in the arbiter:
    a forked copy of its database connections would be shared by the workers).

    Serves the sync API too, with another factory and other options.
    """

    def __init__(self, factory: Callable[[], Flask], options: Mapping[str, Any]) -> None:
        self._factory = factory
        self._options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return self._factory()


def source_front(port: int) -> Front:
    """The source interface's front on ``port``: uploads in a backend of their own, pages
    handed to a node before the other requests waiting (dropbox/front.py)."""
    return Front(
        "source",
        Address(LOOPBACK, port),
        THREADS,
        http_check=True,
        upload_requests=UPLOAD_SLOTS,
        reads_first=True,
    )


def front_config(
    *,
    port: int = DEFAULT_PORT,
    api_port: int = DEFAULT_API_PORT,
    app_port: int = DEFAULT_APP_PORT,
    api_app_port: int = DEFAULT_API_APP_PORT,
    limits: FrontLimits = DEFAULT_LIMITS,
    node_hosts: Sequence[str] = (LOOPBACK,),
    api_to: str = "one",
) -> str:
    """HAProxy's configuration: the source front on ``port`` before the source interface on
    ``app_port``, the API front on ``api_port`` before the sync API on ``api_app_port``, each
    handing its app at most as many requests as it has threads.

    The apps run on every host of ``node_hosts`` (default: this machine alone), the same
    ports on each. The sync API goes to the first node alone (``api_to="one"``) or to all."""
    ports = {port, api_port, app_port, api_app_port}
    if len(ports) != 4 or not all(1 <= p <= 65535 for p in ports):
        raise DropboxError(
            f"the front needs four different TCP ports, not {port}, {api_port}, {app_port} "
            f"and {api_app_port}"
        )
    if api_to not in API_TO:
        raise DropboxError(f"the sync API goes to {' or '.join(API_TO)} node(s), not {api_to!r}")
    hosts = [check_node_host(host) for host in node_hosts]
    if not hosts or len(set(hosts)) != len(hosts):
        raise DropboxError("the front needs one or more app nodes, each named once")
    fronts = [source_front(port), Front("api", Address(LOOPBACK, api_port), API_THREADS)]
    nodes: list[list[Address | None]] = [
        [
            Address(host, app_port),
            Address(host, api_app_port) if api_to == "all" or number == 0 else None,
        ]
        for number, host in enumerate(hosts)
    ]
    return haproxy_config(fronts, nodes, limits)


def check_node_host(host: str) -> str:
    """An app node's address as the front reaches it: an IPv4 address (this machine's
    loopback, or a node's address on the private network between the machines)."""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise DropboxError(f"an app node is named by its IPv4 address, not {host!r}") from None
    return host


def serve(
    settings: ServerSettings,
    *,
    port: int = DEFAULT_PORT,
    api_port: int = DEFAULT_API_PORT,
    address: str = LOOPBACK,
    tor: TorChoice | None = None,
    front: str = "none",
    app_port: int = 0,
    api_app_port: int = 0,
    limits: FrontLimits = DEFAULT_LIMITS,
    workers: int | None = None,
    report: Callable[[str], None] = print,
) -> None:
    """Run the source interface and the sync API until SIGTERM or SIGINT stops both, each
    with ``workers`` worker processes (one per core if None).

    Each runs under its own gunicorn arbiter in a child process. If one of them stops on its
    own (it could not listen on its port, say), the other is stopped too and
    :class:`DropboxError` says which one failed.

    With ``front="haproxy"``, HAProxy is a third child on ``port`` and ``api_port`` (its
    configuration in ``DATA/haproxy.cfg``), the apps behind it on ``app_port`` and
    ``api_app_port`` (0: free ports).

    With ``tor`` (other than ``none``), once both are started, the source onion and the API
    onion are published (:class:`dropbox.onion.ServerOnions`), their addresses go to
    ``report``, the API onion follows the installed keyring's transfer clients, and both are
    removed from tor when the servers stop. If tor fails, the servers are stopped and the
    :class:`dropbox.onion.OnionError` says why.
    """
    if port == api_port:
        raise DropboxError(f"the source interface and the sync API need two ports, not {port}")
    if front not in FRONTS:
        raise DropboxError(f"the front must be one of {', '.join(FRONTS)}, not {front!r}")
    source_options = gunicorn_options(port, address=address, workers=workers)
    api_options = api_gunicorn_options(api_port, address=address, workers=workers)
    # Before the apps start, so that an old schema is one line here rather than two workers
    # failing to boot: `dropbox migrate` brings it up to date, the apps never do.
    engine = db.make_engine(db.database_url(settings), connections=1)
    try:
        db.require_current(engine)
    finally:
        engine.dispose()
    sockets: list[socket.socket] = []
    try:
        if front == "haproxy":
            sockets = [
                listen_loopback(app_port, "source interface"),
                listen_loopback(api_app_port, "sync API"),
            ]
            source_options["bind"] = [f"fd://{sockets[0].fileno()}"]
            api_options["bind"] = [f"fd://{sockets[1].fileno()}"]
            app_port, api_app_port = (sock.getsockname()[1] for sock in sockets)
            config = settings.data_dir / CONFIG_FILE
            fitted = fit_to_file_limit(limits)
            if fitted != limits:
                report(f"front:         at most {fitted.max_connections} connections (ulimit -Hn)")
                limits = fitted
            text = front_config(
                port=port, api_port=api_port, app_port=app_port, api_app_port=api_app_port,
                limits=limits,
            )  # fmt: skip
            write_atomic(config, text.encode("ascii"), mode=0o644)
            report(
                f"front:         HAProxy on {address}:{port} and :{api_port} before the apps on "
                f":{app_port} and :{api_app_port} ({config})"
            )
        source = SourceInterfaceServer(
            lambda: create_app(
                settings,
                upload_slots=UPLOAD_SLOTS,
                sweep_interval=SWEEP_INTERVAL,
                processes=source_options["workers"],
            ),
            source_options,
        )
        api = SourceInterfaceServer(lambda: create_sync_app(settings), api_options)
        runners: dict[str, Callable[[], object]] = {
            "source interface": source.run,
            "sync API": api.run,
        }
        if front == "haproxy":
            runners["front"] = lambda: run_haproxy(config)
        failed = run_together(
            runners, alongside=lambda: _after_start(sockets, tor, settings, port, api_port, report)
        )
    finally:
        for sock in sockets:
            sock.close()
    if failed:
        raise DropboxError(
            "; ".join(f"the {name} stopped with status {code}" for name, code in failed)
            + ": everything was stopped"
        )


@contextlib.contextmanager
def _after_start(
    sockets: list[socket.socket],
    tor: TorChoice | None,
    settings: ServerSettings,
    port: int,
    api_port: int,
    report: Callable[[str], None],
) -> Iterator[None]:
    """Once every child is started: the app sockets are theirs alone (a gunicorn that stops
    takes its port with it), and the onions go up."""
    for sock in sockets:
        sock.close()
    choice = tor or TorChoice()
    if choice.mode == "none":
        yield
        return
    with published_onions(
        choice, settings.data_dir, source_port=port, api_port=api_port, report=report
    ):
        yield


def app_from_environment() -> Flask:
    """The WSGI app for ``gunicorn -c deploy/gunicorn.conf.py`` (settings from POSTERN_*),
    which runs :func:`default_workers` workers."""
    return create_app(
        load_server_settings(os.environ),
        upload_slots=UPLOAD_SLOTS,
        sweep_interval=SWEEP_INTERVAL,
        processes=default_workers(),
    )


def sync_app_from_environment() -> Flask:
    """The sync API's WSGI app, for a gunicorn of its own (settings from POSTERN_*)."""
    return create_sync_app(load_server_settings(os.environ))
