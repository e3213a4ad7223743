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
deployment (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: Debian's HAProxy binary.
HAPROXY: Final = "/usr/sbin/haproxy"


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


def haproxy_config(
    fronts: Sequence[tuple[str, Address]],
    nodes: Sequence[Sequence[Address]],
    limits: FrontLimits = FrontLimits(),
) -> str:
    """The HAProxy configuration: one frontend per ``(name, listen address)`` in ``fronts``,
    each passing to its backend, made of the node addresses at the same index of every
    entry of ``nodes`` (``nodes[i][j]`` is node i's port for front j)."""
    if not fronts:
        raise ValueError("a front needs at least one listening address")
    if not nodes or any(len(node) != len(fronts) for node in nodes):
        raise ValueError("every app node needs one address per front")
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
    for index, (name, listen) in enumerate(fronts):
        lines += [
            f"frontend {name}",
            f"    bind {listen}",
            f"    default_backend {name}_nodes",
            "",
            f"backend {name}_nodes",
            "    balance leastconn",
        ]
        for number, node in enumerate(nodes, start=1):
            lines.append(
                f"    server node{number} {node[index]} maxconn {limits.per_node_requests}"
                + (" check inter 2s" if len(nodes) > 1 else "")
            )
        lines.append("")
    return "\n".join(lines)
