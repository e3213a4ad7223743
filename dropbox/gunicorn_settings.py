"""gunicorn's settings for the source interface and the sync API, and its logger.

How many workers, threads and connections a node runs, and how long it waits, follow from
Tor: clients are slow, so many requests wait on the network at once (see UPLOAD_SLOTS).
:mod:`dropbox.serve` runs gunicorn with these options; deploy/gunicorn.conf.py and
deploy/gunicorn-api.conf.py take them from here for systemd.

No access log is written and the error log never names a request: lines that would carry a
path or an address are rewritten (:class:`PosternGunicornLogger`).

This module adapts gunicorn, which ships no type information (setup.cfg relaxes mypy here).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
from types import FrameType
from typing import Any, Final

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

from dropbox.errors import DropboxError

LOOPBACK: Final = "127.0.0.1"
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
        "post_fork": keep_stop_signals_of_boot,
        "post_worker_init": stop_if_asked_while_booting,
    }


def api_gunicorn_options(
    port: int, *, address: str = LOOPBACK, workers: int | None = None
) -> dict[str, Any]:
    """gunicorn's settings for the sync API: those of the source interface, fewer threads."""
    options = gunicorn_options(port, address=address, workers=workers)
    options.update(threads=API_THREADS, worker_connections=2 * API_THREADS, proc_name=API_PROC_NAME)
    return options


#: The signals with which gunicorn's arbiter stops its workers.
_STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def keep_stop_signals_of_boot(arbiter: Arbiter, worker: Worker) -> None:
    """gunicorn's ``post_fork`` hook, in a new worker before gunicorn installs the worker's
    own signal handlers: a stop signal that arrives now is remembered.

    Without this, a worker told to stop while it boots (``dropbox serve`` stopped right after
    it started, which a loaded machine makes likely) ran the arbiter's handler inherited with
    the fork, which only queues the signal in this process's copy of the arbiter's queue:
    the worker then served on, and the arbiter waited its whole graceful timeout (30 s)
    before it killed it. :func:`stop_if_asked_while_booting` reads both."""
    worker.postern_boot_queue = getattr(arbiter, "SIG_QUEUE", None)
    worker.postern_stop_asked = False

    def remember(_signum: int, _frame: FrameType | None) -> None:
        worker.postern_stop_asked = True

    for signum in _STOP_SIGNALS:
        signal.signal(signum, remember)


def stop_if_asked_while_booting(worker: Worker) -> None:
    """gunicorn's ``post_worker_init`` hook: a worker asked to stop while it booted stops as
    soon as it has started, as it would have if it had been running."""
    asked = bool(getattr(worker, "postern_stop_asked", False))
    inherited = getattr(worker, "postern_boot_queue", None)
    while isinstance(inherited, queue.SimpleQueue) and not inherited.empty():
        asked = inherited.get_nowait() in _STOP_SIGNALS or asked
    if asked:
        worker.alive = False
