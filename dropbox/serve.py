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
import logging
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

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
from dropbox.onion import TorChoice
from dropbox.publishing import published_onions
from dropbox.supervisor import run_together
from dropbox.sweep import SWEEP_INTERVAL
from dropbox.sync.app import create_sync_app

LOOPBACK: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
#: The sync API's port (docs/format.md section 9).
DEFAULT_API_PORT: Final = 8081
#: Where the apps listen behind the front in the deployment (deploy/haproxy.cfg).
DEFAULT_APP_PORT: Final = 8180
DEFAULT_API_APP_PORT: Final = 8181
#: ``dropbox serve --front``: ``haproxy`` runs the front as a child, ``none`` does not.
FRONTS: Final = ("haproxy", "none")
#: The most worker processes ``dropbox serve --workers`` accepts.
MAX_WORKERS: Final = 64
#: Body-streaming requests admitted at once (dropbox/web/capacity.py). Over Tor each holds a
#: thread for as long as its body takes (a 256 KiB envelope at 50 KB/s: five seconds; a
#: 1 GiB video: hours), so a node serves as many uploads at once as it has threads for them.
#: A thread blocked in recv() costs little (bench/scale.py: 1,000 uploads at once on two
#: cores); the front queues the uploads beyond these and refuses them after a while.
UPLOAD_SLOTS: Final = 1024
#: Threads left for pages, whatever the uploads do: the front sends a node at most this many
#: other requests at once, in a backend of their own (dropbox/front.py).
PAGE_THREADS: Final = 64
THREADS: Final = UPLOAD_SLOTS + PAGE_THREADS
#: Connections a worker holds at once, idle kept-alive ones included: more than its threads,
#: or gunicorn would stop accepting before its threads are busy.
WORKER_CONNECTIONS: Final = 2 * THREADS
#: Seconds a worker may be silent before the arbiter restarts it. gthread workers stay alive
#: while their threads serve long requests, so this does not limit a slow upload.
TIMEOUT: Final = 120
#: Seconds to finish requests in flight after SIGTERM.
GRACEFUL_TIMEOUT: Final = 30
#: Seconds an idle keep-alive connection is held (Tor circuits are slow to rebuild).
KEEPALIVE: Final = 30
PROC_NAME: Final = "postern-dropbox"
#: ``dropbox front-config --api-to``: the sync API behind the first node alone, or all nodes.
API_TO: Final = ("one", "all")
#: The sync API serves a few transfer machines: fewer threads.
API_THREADS: Final = 16
API_PROC_NAME: Final = "postern-sync"


class _ScrubRequests(logging.Filter):
    """Rewrites gunicorn error-log records that would name a request or a client address, and
    drops the line of a malformed request."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Invalid request from"):
            # A malformed request is refused with a 400 and leaves no line: a line would
            # date a client's request to the second (journald times every line).
            return False
        if not message.startswith("Error handling request"):
            return True
        kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        record.msg = "Error handling a request" + (f" ({kind})" if kind else "")
        record.args = ()
        # A traceback of a request error can quote the request line: keep only its type.
        record.exc_info = None
        record.exc_text = None
        return True


class PosternGunicornLogger(Logger):
    """gunicorn's logger with the access log off and request details kept out of the error log."""

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        self.error_log.addFilter(_ScrubRequests())
        self.access_log.disabled = True

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        return None


def check_bind(address: str) -> str:
    """The only address the source interface listens on is the IPv4 loopback."""
    if address != LOOPBACK:
        raise DropboxError(
            f"refusing to listen on {address!r}: the source interface listens on {LOOPBACK} "
            "only, where Tor reaches it"
        )
    return address


def default_workers() -> int:
    """One worker process per core this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - Linux has sched_getaffinity
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def check_workers(workers: int) -> int:
    if not 1 <= workers <= MAX_WORKERS:
        raise DropboxError(f"the number of workers must be from 1 to {MAX_WORKERS}, not {workers}")
    return workers


def gunicorn_options(
    port: int, *, address: str = LOOPBACK, workers: int | None = None
) -> dict[str, Any]:
    """gunicorn's settings for the source interface (deploy/gunicorn.conf.py mirrors them);
    ``workers`` processes, one per core if None."""
    check_bind(address)
    if not 1 <= port <= 65535:
        raise DropboxError(f"port {port} is not a TCP port (1 to 65535)")
    return {
        "bind": [f"{address}:{port}"],
        "workers": default_workers() if workers is None else check_workers(workers),
        "worker_class": "gthread",
        "threads": THREADS,
        "worker_connections": WORKER_CONNECTIONS,
        "timeout": TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": KEEPALIVE,
        "preload_app": False,
        "accesslog": None,
        "disable_redirect_access_to_syslog": True,
        "errorlog": "-",
        "loglevel": "warning",
        "capture_output": False,
        "logger_class": PosternGunicornLogger,
        "proc_name": PROC_NAME,
        "umask": 0o077,
        # Everything arrives from the local Tor daemon: no forwarding header is trusted.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        # gunicorn's runtime control socket would be one more way into the process.
        "control_socket_disable": True,
    }


def api_gunicorn_options(
    port: int, *, address: str = LOOPBACK, workers: int | None = None
) -> dict[str, Any]:
    """gunicorn's settings for the sync API: those of the source interface, fewer threads."""
    options = gunicorn_options(port, address=address, workers=workers)
    options.update(
        threads=API_THREADS, worker_connections=2 * API_THREADS, proc_name=API_PROC_NAME
    )
    return options


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
    fronts = [
        Front(
            "source",
            Address(LOOPBACK, port),
            THREADS,
            http_check=True,
            upload_requests=UPLOAD_SLOTS,
        ),
        Front("api", Address(LOOPBACK, api_port), API_THREADS),
    ]
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
