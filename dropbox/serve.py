"""Running the source interface under gunicorn (``dropbox serve``).

The server listens on 127.0.0.1 only: Tor reaches it there and publishes it as an onion
service. It runs **one** worker process with many threads (gthread): sessions live in that
process's memory and nowhere else (see :mod:`dropbox.web.sessions`), and Tor clients are slow,
so many requests wait on the network at once. Timeouts are generous for the same reason.

No access log is written, gunicorn's own access logging is switched off, and its error log
never names a request: lines that would carry a path or an address are rewritten
(:class:`PosternGunicornLogger`). ``deploy/gunicorn.conf.py`` holds the same settings for
running under systemd.

This module adapts gunicorn, which ships no type information (setup.cfg relaxes mypy here).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from config import ServerSettings, load_server_settings
from dropbox.app import create_app
from dropbox.errors import DropboxError

LOOPBACK: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8080
WORKERS: Final = 1
THREADS: Final = 128
#: Body-streaming requests admitted at once (dropbox/web/capacity.py): the rest of the
#: threads stay free for pages.
UPLOAD_SLOTS: Final = THREADS - 16
#: Seconds a worker may be silent before the arbiter restarts it. gthread workers stay alive
#: while their threads serve long requests, so this does not limit a slow upload.
TIMEOUT: Final = 120
#: Seconds to finish requests in flight after SIGTERM.
GRACEFUL_TIMEOUT: Final = 30
#: Seconds an idle keep-alive connection is held (Tor circuits are slow to rebuild).
KEEPALIVE: Final = 30
PROC_NAME: Final = "postern-dropbox"


class _ScrubRequests(logging.Filter):
    """Rewrites gunicorn error-log records that would name a request or a client address."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Error handling request"):
            kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
            record.msg = "Error handling a request" + (f" ({kind})" if kind else "")
        elif message.startswith("Invalid request from"):
            record.msg = "Invalid request refused"
        else:
            return True
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


def gunicorn_options(port: int, *, address: str = LOOPBACK) -> dict[str, Any]:
    """gunicorn's settings for the source interface (deploy/gunicorn.conf.py mirrors them)."""
    check_bind(address)
    if not 1 <= port <= 65535:
        raise DropboxError(f"port {port} is not a TCP port (1 to 65535)")
    return {
        "bind": [f"{address}:{port}"],
        "workers": WORKERS,
        "worker_class": "gthread",
        "threads": THREADS,
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


class SourceInterfaceServer(BaseApplication):
    """gunicorn, configured in code; the app is made in the worker, where sessions live."""

    def __init__(self, factory: Callable[[], Flask], options: Mapping[str, Any]) -> None:
        self._factory = factory
        self._options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return self._factory()


def serve(settings: ServerSettings, *, port: int = DEFAULT_PORT, address: str = LOOPBACK) -> None:
    """Run the source interface until gunicorn is told to stop (SIGTERM or SIGINT)."""
    options = gunicorn_options(port, address=address)
    SourceInterfaceServer(lambda: create_app(settings, upload_slots=UPLOAD_SLOTS), options).run()


def app_from_environment() -> Flask:
    """The WSGI app for ``gunicorn -c deploy/gunicorn.conf.py`` (settings from POSTERN_*)."""
    return create_app(load_server_settings(os.environ), upload_slots=UPLOAD_SLOTS)
