"""Envelope downloads: a body streamed by urllib3 from the server into the bundle file.

The sync API's envelope endpoint answers ``GET`` with a body of a known length (the signed
manifest says how long each envelope is). The answer comes from a possibly hostile server,
so the parsing of the status line and headers is left to a well-kept client (urllib3, which
``requests`` already brings) and this module adds the rules the envelope endpoint
guarantees: a ``Content-Length`` that is one plain decimal number, no ``Transfer-Encoding``,
no more and no fewer body bytes than announced, and (checked by the caller with
:func:`expect_range`) the exact ``Content-Range`` asked for. The body goes into the file in
pieces as they arrive (what arrived before a break is kept, for the next pull to resume
from). One connection is kept alive between envelopes; through a SOCKS5 proxy (Tor) the
server's name is resolved by the proxy.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.client import RemoteDisconnected
from typing import Any, Final

import urllib3
from urllib3.contrib.socks import SOCKSProxyManager
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.wait import wait_for_read

from transfer.errors import AnswerBroken, Unreachable, WireError
from transfer.network import failure_reason

#: The most bytes taken from the connection at a time (what arrived, up to this).
CHUNK: Final = 1024 * 1024

_LENGTH_RE = re.compile(r"\A[0-9]{1,19}\Z")
_NAME_RE = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: the server's host and port, TLS or not, and an optional SOCKS5
    proxy (host, port) that resolves the server's name itself."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None
    proxy: tuple[str, int] | None = None
    connect_timeout: float = 120.0
    read_timeout: float = 300.0

    def describe(self) -> str:
        where = f"{self.host}:{self.port}"
        if self.proxy is not None:
            where += f" through the SOCKS proxy {self.proxy[0]}:{self.proxy[1]}"
        return where


@dataclass(frozen=True)
class Head:
    """An answer's status and headers (names in lower case; repeats joined by ", ")."""

    status: int
    reason: str
    headers: Mapping[str, str]
    #: The body's length from ``Content-Length``, or None when there is none.
    length: int | None


def expect_range(head: Head, offset: int, size: int) -> None:
    """A partial answer must hold the envelope of ``size`` bytes from ``offset`` to its end."""
    want = f"bytes {offset}-{size - 1}/{size}"
    got = head.headers.get("content-range")
    if got != want:
        shown = "none" if got is None else repr(got[:80])
        raise WireError(f"the server sent the range {shown} where {want} was asked for")


class Connection:
    """``GET`` requests on one kept-alive connection, whose bodies go into files."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        options: dict[str, Any] = {
            "num_pools": 1,
            "maxsize": 1,
            "retries": False,
            "timeout": urllib3.Timeout(
                connect=endpoint.connect_timeout, read=endpoint.read_timeout
            ),
        }
        if endpoint.tls is not None:
            options["ssl_context"] = endpoint.tls
        manager: urllib3.PoolManager
        if endpoint.proxy is None:
            manager = urllib3.PoolManager(**options)
        else:
            host, port = endpoint.proxy
            host = f"[{host}]" if ":" in host else host
            # socks5h: the proxy resolves the name, as Tor must for .onion addresses.
            manager = SOCKSProxyManager(f"socks5h://{host}:{port}", **options)
        self._manager = manager
        self._scheme = "https" if endpoint.tls is not None else "http"
        self._pool = manager.connection_from_host(endpoint.host, endpoint.port, self._scheme)
        self._answer: urllib3.BaseHTTPResponse | None = None
        self._left = 0  # body bytes of the current answer not taken yet (-1: to the close)
        self._idle = False  # a connection is kept from a complete answer

    # -- requests --

    def get(self, target: str, headers: Callable[[], Mapping[str, str]]) -> Head:
        """Send ``GET target`` and read the answer's head; the body is taken next, with
        :meth:`copy_body` or :meth:`read_body`.

        ``headers`` is called for each attempt (a request signature is good once): a kept-alive
        connection the server closed meanwhile is replaced, once, by a new one.
        """
        self.discard()
        for attempt in range(2):
            sent = headers()
            _check_request(target, sent)
            reused, self._idle = self._idle, False
            try:
                answer = self._pool.urlopen(
                    "GET",
                    target,
                    headers=dict(sent),
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    decode_content=False,
                    release_conn=False,
                    enforce_content_length=True,
                )
            except ProtocolError as exc:
                if reused and attempt == 0 and _closed_unanswered(exc):
                    continue
                self.close()
                if _closed_unanswered(exc):
                    raise WireError("the server closed the connection without answering") from None
                raise WireError(f"the server's answer is not HTTP/1.x: {_reason(exc)}") from None
            except (NewConnectionError, ProxyError, SSLError) as exc:
                self.close()
                where = self.endpoint.describe()
                raise Unreachable(
                    f"cannot reach the server {where}: {failure_reason(exc)}"
                ) from None
            except HTTPError as exc:
                self.close()
                raise WireError(f"the request failed: {_reason(exc)}") from None
            self._answer = answer
            try:
                head = _head(answer)
            except WireError:
                self.close()
                raise
            self._left = -1 if head.length is None else head.length
            return head
        raise AssertionError("unreachable")  # pragma: no cover

    def read_body(self, limit: int) -> bytes:
        """The current answer's body, if it has at most ``limit`` bytes (else b"")."""
        answer = self._answer
        if answer is None or self._left > limit:
            self.close()
            return b""
        parts: list[bytes] = []
        size = 0
        try:
            while self._left < 0 or size < self._left:
                data = answer.read1(min(CHUNK, limit + 1 - size))
                if not data:
                    break
                parts.append(data)
                size += len(data)
                if size > limit:
                    self.close()
                    return b""
        except (HTTPError, OSError):
            self.close()
            return b""
        self._finish(keep=self._left >= 0 and size == self._left)
        return b"".join(parts)

    def copy_body(self, fd: int, offset: int, wrote: Callable[[int], None]) -> None:
        """Write the current answer's body into ``fd`` from ``offset`` on.

        ``wrote(n)`` is called after each ``n`` bytes are in the file. Raises
        :class:`AnswerBroken` if the connection breaks first, :class:`WireError` if the
        server sends more than the answer's length, OSError if the file fails.
        """
        answer = self._answer
        if answer is None or self._left < 0:
            raise WireError("there is no answer body with a known length to take")
        # urllib3 lets the connection go once the body is read: look at its socket now.
        sock = getattr(answer.connection, "sock", None)
        try:
            while self._left > 0:
                data = _take(answer, min(self._left, CHUNK))
                pwrite_all(fd, data, offset)
                offset += len(data)
                self._left -= len(data)
                wrote(len(data))
            if isinstance(sock, socket.socket) and _more_waiting(sock):
                raise WireError("the server sent more than the answer's Content-Length")
        except BaseException:
            self.close()
            raise
        self._finish(keep=True)

    def discard(self) -> None:
        """Forget an answer whose body was not taken (closing its connection)."""
        if self._answer is not None:
            self.close()

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        answer, self._answer = self._answer, None
        if answer is not None:
            with contextlib.suppress(Exception):
                answer.close()
        self._manager.clear()  # closes the pool and its connections
        self._pool = self._manager.connection_from_host(
            self.endpoint.host, self.endpoint.port, self._scheme
        )
        self._left, self._idle = 0, False

    # -- inside --

    def _finish(self, *, keep: bool) -> None:
        answer, self._answer = self._answer, None
        self._left = 0
        if answer is None:
            return
        if keep:
            answer.release_conn()  # back into the pool for the next envelope
            self._idle = True
        else:
            self._answer = answer
            self.close()


def _head(answer: urllib3.BaseHTTPResponse) -> Head:
    """The answer's status and headers, held to the envelope endpoint's rules."""
    if answer.headers.get("transfer-encoding") is not None:
        raise WireError("the server sent a body with a Transfer-Encoding instead of a length")
    lengths = answer.headers.getlist("content-length")
    if len(lengths) > 1:
        raise WireError("the server's answer has more than one Content-Length")
    length = None
    if lengths:
        value = lengths[0].strip(" \t")
        if not _LENGTH_RE.match(value):
            raise WireError(f"the server sent an invalid Content-Length: {value[:40]!r}")
        length = int(value)
    headers = {name.lower(): ", ".join(answer.headers.getlist(name)) for name in answer.headers}
    return Head(answer.status, answer.reason or "", headers, length)


def _take(answer: urllib3.BaseHTTPResponse, count: int) -> bytes:
    """Up to ``count`` body bytes, as soon as some arrived; AnswerBroken if none can come."""
    try:
        data = answer.read1(count)
    except ProtocolError as exc:
        if "IncompleteRead" in str(exc):
            raise AnswerBroken("the server closed the connection in the middle of a body") from None
        raise AnswerBroken(f"the connection broke: {_reason(exc)}") from None
    except (Urllib3Timeout, HTTPError, OSError) as exc:
        raise AnswerBroken(f"the connection broke: {_reason(exc)}") from None
    if not data:
        raise AnswerBroken("the server closed the connection in the middle of a body")
    return data


def _more_waiting(sock: socket.socket) -> bool:
    """Whether bytes beyond the announced length are waiting on the connection.

    Bytes that came in the same read as the head are dropped with http.client's buffer, and
    the connection's next answer is read from the socket afresh; later ones are seen here,
    without taking them.
    """
    if sock.fileno() < 0 or not wait_for_read(sock, timeout=0.0):
        return False
    if isinstance(sock, ssl.SSLSocket):
        return sock.pending() > 0
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:
        return False


def _closed_unanswered(exc: ProtocolError) -> bool:
    """The server closed (or reset) the connection before any byte of an answer."""
    causes = [arg for arg in exc.args if isinstance(arg, BaseException)]
    return any(isinstance(c, RemoteDisconnected | ConnectionError) for c in causes)


def _check_request(target: str, headers: Mapping[str, str]) -> None:
    if not target.startswith("/") or any(c in target for c in " \r\n\t"):
        raise ValueError(f"not a request target: {target!r}")
    for name, value in headers.items():
        if not _NAME_RE.match(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"not a header: {name!r}")


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` into ``fd`` at ``offset`` (pwrite may write less at a time)."""
    view = memoryview(data)
    while view:
        count = os.pwrite(fd, view, offset)
        view, offset = view[count:], offset + count


def _reason(exc: BaseException) -> str:
    """Why a request failed, in a few words: urllib3 wraps the socket's error, which says it."""
    todo, seen = [exc], set()
    while todo:
        cause = todo.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        # (urllib3's NewConnectionError is one of its timeouts, whatever the cause.)
        timeout = isinstance(cause, Urllib3Timeout | TimeoutError | socket.timeout)
        if timeout and not isinstance(cause, NewConnectionError):
            return "no answer in time"
        if isinstance(cause, OSError) and isinstance(cause.strerror, str) and cause.strerror:
            return cause.strerror
        todo += [arg for arg in cause.args if isinstance(arg, BaseException)]
        todo += [link for link in (cause.__cause__, cause.__context__) if link is not None]
    return str(exc) or type(exc).__name__
