"""The front: HAProxy between tor and the app nodes, configured from code.

Tor clients are slow and some are hostile. gunicorn's threads would each be held by a client
that sends its request head one line every few seconds, so about as many such clients as
there are threads take the site offline. HAProxy holds every connection on an event loop for
almost nothing, gives a client a bounded time to finish its request head, and hands gunicorn
only complete requests, at most as many at once as a node has threads; the rest wait in a
short queue or get a clear 503 with Retry-After.

It never writes a request body anywhere: HAProxy has no disk buffering at all, and the
configuration does not ask it to wait for whole bodies in memory either (no
``http-buffer-request``), so a plain-form upload (plaintext until the app seals it) streams
through in 16 KiB buffers. It logs nothing (no ``log`` line), adds no header naming the
client, and keeps no statistics socket.

:func:`haproxy_config` writes the configuration for a front listening on the port tor
publishes and for N app nodes; ``dropbox front-config`` prints it for operators, the demo and
the tests run HAProxy with it, and deploy/haproxy.cfg is its output for the one-machine
deployment (a test keeps them equal), deploy/haproxy-nodes.cfg for a front before two app
machines (docs/operations.md, "Many machines").

With several nodes the front checks each one every two seconds and sends nothing to a node
that fails its check; a request whose connection to a node fails is sent to another
(``option redispatch``): the nodes hold no state of their own, so any node serves any
request. The source backend's check asks the tus discovery (``OPTIONS /api/uploads``), which
every node answers with 204 without touching a session or the database; the sync API's check
is a TCP connect, because every one of its requests must be signed.
"""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, NoReturn

from common.cli import describe_os_error
from dropbox.errors import DropboxError

#: Debian's HAProxy binary.
HAPROXY: Final = "/usr/sbin/haproxy"
#: The configuration ``dropbox serve --front haproxy`` writes into the data directory.
CONFIG_FILE: Final = "haproxy.cfg"


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FrontLimits:
    """The bounds the front puts on clients; seconds unless named otherwise."""

    #: Time a client has to send its whole request head. A Tor client sends it in one go
    #: once its circuit is up; one that trickles it is refused with 408.
    head_timeout: int = 10
    #: Time a client may stay silent in the middle of a request (a body that stalls).
    #: Uploads that progress are never cut, however long they take.
    client_idle_timeout: int = 120
    #: Time an idle kept-alive connection is held (Tor circuits are slow to rebuild).
    keepalive_timeout: int = 30
    #: Time a node may stay silent before the front gives up on a request.
    server_idle_timeout: int = 300
    #: Time a complete request may wait for a free app thread before it gets a 503.
    queue_timeout: int = 30
    #: Connections the front holds at once, slow ones included.
    max_connections: int = 4_000
    #: Requests handed to one app node at once: its gunicorn threads.
    per_node_requests: int = 128
    #: What a refused client is told to wait, in seconds.
    retry_after: int = 30


DEFAULT_LIMITS: Final = FrontLimits()


@dataclass(frozen=True)
class Front:
    """One listening address of the front, how many requests it hands one node at once (the
    node's gunicorn threads; None: :attr:`FrontLimits.per_node_requests`), and how it checks
    a node's health."""

    name: str
    listen: Address
    node_requests: int | None = None
    #: With several nodes, check each with :data:`SOURCE_CHECK` (else: a TCP connect).
    http_check: bool = False
    #: Of ``node_requests``, how many may be :data:`STREAMING_REQUESTS` (None: no split).
    #: They go to a backend of their own, so that pages never wait behind uploads.
    upload_requests: int | None = None
    #: Queued requests that only read (:data:`READS`) are handed to a node before the others.
    reads_first: bool = False


#: The source backend's health check with several nodes: the tus discovery (204, stateless).
SOURCE_CHECK: Final = ("OPTIONS", "/api/uploads", 204)
#: The requests that only read, as an HAProxy condition: a source's pages. Over Tor a burst of
#: writes (a thousand tus creations and completions, each a database write) queues at the
#: front; the landing page must not wait behind it (bench/scale.py).
READS: Final = "{ method GET HEAD }"
#: Requests whose bodies stream in for as long as the client takes (method, path prefix): a
#: plain-form upload and a tus ``PATCH``. Over Tor each holds an app thread for minutes or
#: hours; the front hands a node only so many of them at once (:attr:`Front.upload_requests`)
#: and the app admits only so many (dropbox/web/capacity.py).
STREAMING_REQUESTS: Final = (("POST", "/submit"), ("PATCH", "/api/uploads/"))


def haproxy_config(
    fronts: Sequence[Front],
    nodes: Sequence[Sequence[Address | None]],
    limits: FrontLimits = DEFAULT_LIMITS,
) -> str:
    """The HAProxy configuration: one frontend per :class:`Front` in ``fronts``, each passing
    to its backend, made of the node addresses at the same index of every entry of ``nodes``
    (``nodes[i][j]`` is node i's address for front j; None: node i does not serve front j)."""
    if not fronts:
        raise ValueError("a front needs at least one listening address")
    if not nodes or any(len(node) != len(fronts) for node in nodes):
        raise ValueError("every app node needs one address per front")
    for index, front in enumerate(fronts):
        if all(node[index] is None for node in nodes):
            raise ValueError(f"no app node serves the {front.name} front")
    lines = [
        "# Written by dropbox.front.haproxy_config: change the code, not this file.",
        "global",
        f"    maxconn {limits.max_connections}",
        # No log line at all: HAProxy then writes nothing about any connection.
        "",
        "defaults",
        "    mode http",
        f"    maxconn {limits.max_connections}",
        f"    timeout http-request {limits.head_timeout}s",
        f"    timeout http-keep-alive {limits.keepalive_timeout}s",
        f"    timeout client {limits.client_idle_timeout}s",
        f"    timeout server {limits.server_idle_timeout}s",
        f"    timeout queue {limits.queue_timeout}s",
        "    timeout connect 5s",
        # The app answers its own errors; these are the front's own refusals.
        (
            "    http-error status 503 content-type text/plain"
            ' string "The service is busy. Try again in a moment.\\n"'
            f" hdr Retry-After {limits.retry_after}"
        ),
        '    http-error status 408 content-type text/plain string "Request timed out.\\n"',
        "",
    ]
    for index, front in enumerate(fronts):
        name = front.name
        requests = front.node_requests or limits.per_node_requests
        servers = [(number, node[index]) for number, node in enumerate(nodes, start=1)]
        lines += [f"frontend {name}", f"    bind {front.listen}"]
        if front.reads_first:
            # Lower classes leave the queue first: a page waits only for a free thread,
            # never behind a burst of writes (tus creations, completions, logins) queued
            # before it.
            lines.append(f"    http-request set-priority-class int(1) unless {READS}")
        backends = [(f"{name}_nodes", requests)]
        if front.upload_requests is not None:
            if not 0 < front.upload_requests < requests:
                raise ValueError("the uploads' share must leave a node requests for pages")
            backends = [
                (f"{name}_nodes", requests - front.upload_requests),
                (f"{name}_uploads", front.upload_requests),
            ]
            lines += [
                f"    use_backend {name}_uploads if {{ method {method} }} {{ path_beg {prefix} }}"
                for method, prefix in STREAMING_REQUESTS
            ]
        lines += [f"    default_backend {name}_nodes", ""]
        for backend, maxconn in backends:
            lines += _backend(backend, front, servers, maxconn)
    return "\n".join(lines)


def _backend(
    name: str, front: Front, servers: Sequence[tuple[int, Address | None]], maxconn: int
) -> list[str]:
    several = sum(address is not None for _, address in servers) > 1
    lines = [f"backend {name}", "    balance leastconn"]
    if several:
        lines += ["    option redispatch", "    retries 2"]
        if front.http_check:
            method, path, status = SOURCE_CHECK
            lines += [
                "    option httpchk",
                f"    http-check send meth {method} uri {path} hdr Tus-Resumable 1.0.0",
                f"    http-check expect status {status}",
            ]
    for number, address in servers:
        if address is not None:
            lines.append(
                f"    server node{number} {address} maxconn {maxconn}"
                + (" check inter 2s fall 2 rise 2" if several else "")
            )
    lines.append("")
    return lines


def run_haproxy(config: Path, *, haproxy: str = HAPROXY) -> NoReturn:
    """Become HAProxy with ``config``, in the foreground (a child of ``dropbox serve``).

    SIGTERM stops it at once (connections in flight are cut; the apps' own graceful stop
    is for requests already inside them)."""
    os.execv(haproxy, [haproxy, "-db", "-f", str(config)])  # noqa: S606 - fixed binary


def listen_loopback(port: int, what: str) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: a free port) for an app behind the front,
    bound before the app starts so that the front never meets a closed port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise DropboxError(
            f"cannot listen on 127.0.0.1:{port} for the {what}: {describe_os_error(exc)}"
        ) from None
    return sock


def fit_to_file_limit(limits: FrontLimits, hard_limit: int | None = None) -> FrontLimits:
    """``limits`` with at most as many connections as this process's file limit lets HAProxy
    hold (two descriptors each, plus its own): HAProxy started by a user whose hard limit is
    low refuses to start at all rather than hold fewer."""
    if hard_limit is None:
        hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard_limit == resource.RLIM_INFINITY:
        return limits
    most = max(1, (hard_limit - 100) // 2)
    if most >= limits.max_connections:
        return limits
    return replace(limits, max_connections=most)
