"""Envelope downloads on an HTTP/1.1 connection of the transfer client's own.

``requests`` reads a response through a buffer and hands its body over in new ``bytes``
objects, so that each byte of a pull was copied into Python, copied again into the bundle
file and read a third time to be hashed: on a machine with two cores that was the bottleneck
of ``dropbox-transfer pull``. Envelope bodies therefore bypass it. The request goes out on a
socket of this module (straight to the server, through a SOCKS5 proxy such as Tor with the
name resolved by the proxy, or in TLS for an ``https://`` server); the response head is
parsed strictly and within :data:`MAX_HEAD` bytes; the body goes into the bundle file with
``splice(2)`` (socket to pipe to file, never through Python) where the kernel allows it, and
otherwise through one reused buffer and ``pwrite``.

Only what the sync API's envelope endpoint needs is here: ``GET``, a response whose body has
a ``Content-Length`` (no chunked bodies), and keep-alive between requests. The other
requests of the transfer client (small JSON answers, the manifest, uploads) stay with
``requests``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import re
import select
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import socks

from transfer.errors import AnswerBroken, WireError

#: The longest response head accepted (status line and headers).
MAX_HEAD: Final = 16 * 1024
#: Bytes moved per splice(2) or read at a time; also the pipe's size where allowed.
CHUNK: Final = 1024 * 1024

_STATUS_RE = re.compile(rb"\AHTTP/1\.([01]) ([1-9][0-9]{2})(?: ([\t\x20-\x7e\x80-\xff]*))?\Z")
_FIELD_RE = re.compile(
    rb"\A([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*\Z"
)
_LENGTH_RE = re.compile(r"\A[0-9]{1,19}\Z")
#: errno values of splice(2) meaning "not for these two descriptors": use read and write.
_NO_SPLICE: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF})


@dataclass(frozen=True)
class Head:
    """A response's status line and headers (names in lower case; repeats joined by ", ")."""

    status: int
    reason: str
    headers: Mapping[str, str]
    keep_alive: bool

    @property
    def length(self) -> int | None:
        """The body's length from ``Content-Length``, or None when there is none."""
        value = self.headers.get("content-length")
        if value is None:
            return None
        if not _LENGTH_RE.match(value):
            raise WireError(f"the server sent an invalid Content-Length: {value[:40]!r}")
        return int(value)


def parse_head(data: bytes) -> Head:
    """Parse a response head: the bytes before the blank line that ends it."""
    lines = data.split(b"\r\n")
    match = _STATUS_RE.match(lines[0])
    if match is None:
        raise WireError("the server's answer does not start with an HTTP/1.x status line")
    minor, status = match.group(1), int(match.group(2))
    if status < 200:
        raise WireError(f"the server sent an unexpected informational answer ({status})")
    reason = (match.group(3) or b"").decode("latin-1")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        field = _FIELD_RE.match(line)
        if field is None:
            raise WireError("the server's answer has a malformed header line")
        name = field.group(1).decode("ascii").lower()
        value = field.group(2).decode("latin-1")
        if name in headers:
            if name == "content-length":
                raise WireError("the server's answer has more than one Content-Length")
            value = headers[name] + ", " + value
        headers[name] = value
    if "transfer-encoding" in headers:
        raise WireError("the server sent a body with a Transfer-Encoding instead of a length")
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if minor == b"1" else "keep-alive" in tokens
    return Head(status, reason, headers, keep_alive)


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


class Connection:
    """One kept-alive HTTP/1.1 connection for ``GET`` requests whose bodies go into files."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._sock: socket.socket | None = None
        self._pending = b""  # body bytes that arrived together with the head
        self._left = 0  # body bytes of the current answer not taken yet
        self._keep = False
        self._pipe: tuple[int, int] | None = None
        self._splice = hasattr(os, "splice")
        self._buffer: bytearray | None = None  # for reading where splice(2) cannot serve

    # -- requests --

    def get(self, target: str, headers: Callable[[], Mapping[str, str]]) -> Head:
        """Send ``GET target`` and read the answer's head; the body is taken next, with
        :meth:`copy_body` or :meth:`read_body`.

        ``headers`` is called for each attempt (a request signature is good once): a kept-alive
        connection the server closed meanwhile is replaced, once, by a new one.
        """
        self.discard()
        for attempt in range(2):
            request = self._request(target, headers())
            reused = self._sock is not None
            sock = self._sock if self._sock is not None else self._connect()
            try:
                sock.sendall(request)
                head = self._read_head(sock)
                length = head.length
            except (_Closed, ConnectionError) as exc:
                # A kept-alive connection the server closed while idle fails like this.
                self.close()
                if reused and attempt == 0:
                    continue
                if isinstance(exc, _Closed):
                    raise WireError("the server closed the connection without answering") from None
                raise WireError(f"the request failed: {_reason(exc)}") from None
            except OSError as exc:
                self.close()
                raise WireError(f"the request failed: {_reason(exc)}") from None
            except WireError:
                self.close()
                raise
            self._keep = head.keep_alive
            if length is None:
                # Only an error answer may come without a length: its body runs to the close.
                self._keep = False
                self._left = -1
            else:
                self._left = length
                if len(self._pending) > length:
                    self.close()
                    raise WireError("the server sent more than the answer's Content-Length")
            return head
        raise AssertionError("unreachable")  # pragma: no cover

    def read_body(self, limit: int) -> bytes:
        """The current answer's body, if it has at most ``limit`` bytes (else b"")."""
        if self._sock is None:
            return b""
        if self._left > limit:
            self.close()
            return b""
        parts = [self._pending]
        size = len(self._pending)
        self._pending = b""
        try:
            while self._left < 0 or size < self._left:
                data = self._sock.recv(min(CHUNK, limit + 1 - size))
                if not data:
                    break
                parts.append(data)
                size += len(data)
                if size > limit:
                    self.close()
                    return b""
        except OSError:
            self.close()
            return b""
        if self._left < 0 or size < self._left:
            self.close()
        else:
            self._finish()
        return b"".join(parts)

    def copy_body(self, fd: int, offset: int, wrote: Callable[[int], None]) -> None:
        """Write the current answer's body into ``fd`` from ``offset`` on.

        ``wrote(n)`` is called after each ``n`` bytes are in the file. Raises
        :class:`AnswerBroken` if the connection breaks first, OSError if the file fails.
        """
        sock = self._sock
        if sock is None or self._left < 0:
            raise WireError("there is no answer body with a known length to take")
        try:
            if self._pending:
                data, self._pending = self._pending, b""
                pwrite_all(fd, data, offset)
                offset += len(data)
                self._left -= len(data)
                wrote(len(data))
            while self._left > 0:
                count = self._move(sock, fd, offset, min(self._left, CHUNK))
                if count == 0:
                    raise AnswerBroken("the server closed the connection in the middle of a body")
                offset += count
                self._left -= count
                wrote(count)
        except _NetworkError as exc:
            self.close()
            raise AnswerBroken(f"the connection broke: {_reason(exc.cause)}") from None
        except BaseException:
            self.close()
            raise
        self._finish()

    def discard(self) -> None:
        """Forget an answer whose body was not taken (closing the connection if need be)."""
        if self._left != 0 or self._pending:
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if self._pipe is not None:
            for end in self._pipe:
                os.close(end)
            self._pipe = None
        self._pending, self._left, self._keep = b"", 0, False

    # -- inside --

    def _connect(self) -> socket.socket:
        end = self.endpoint
        try:
            if end.proxy is None:
                sock = socket.create_connection((end.host, end.port), end.connect_timeout)
            else:
                sock = socks.create_connection(
                    (end.host, end.port),
                    timeout=math.ceil(end.connect_timeout),  # whole seconds, as typeshed says
                    proxy_type=socks.SOCKS5,
                    proxy_addr=end.proxy[0],
                    proxy_port=end.proxy[1],
                    proxy_rdns=True,
                )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if end.tls is not None:
                sock = end.tls.wrap_socket(sock, server_hostname=end.host)
            sock.settimeout(end.read_timeout)
        except (OSError, socks.ProxyError) as exc:
            where = f"{end.host}:{end.port}"
            if end.proxy is not None:
                where += f" through the SOCKS proxy {end.proxy[0]}:{end.proxy[1]}"
            raise WireError(f"cannot reach {where}: {_reason(exc)}") from None
        self._sock = sock
        return sock

    def _request(self, target: str, headers: Mapping[str, str]) -> bytes:
        if not target.startswith("/") or any(c in target for c in " \r\n\t"):
            raise ValueError(f"not a request target: {target!r}")
        host = self.endpoint.host
        if ":" in host:
            host = f"[{host}]"
        default = 443 if self.endpoint.tls is not None else 80
        if self.endpoint.port != default:
            host += f":{self.endpoint.port}"
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n") or ":" in name:
                raise ValueError(f"not a header: {name!r}")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _read_head(self, sock: socket.socket) -> Head:
        buffer = bytearray()
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) >= MAX_HEAD:
                raise WireError(f"the server's answer head is longer than {MAX_HEAD} bytes")
            data = sock.recv(MAX_HEAD + 4 - len(buffer))
            if not data:
                if buffer:
                    raise WireError("the server closed the connection in the middle of a head")
                raise _Closed
            buffer += data
        self._pending = bytes(buffer[end + 4 :])
        return parse_head(bytes(buffer[:end]))

    def _finish(self) -> None:
        self._pending, self._left = b"", 0
        if not self._keep:
            self.close()

    def _move(self, sock: socket.socket, fd: int, offset: int, count: int) -> int:
        """Up to ``count`` bytes from the socket into the file at ``offset``; 0 at the end."""
        if self._splice and not isinstance(sock, ssl.SSLSocket):
            moved = self._splice_once(sock, fd, offset, count)
            if moved is not None:
                return moved
            self._splice = False
        if self._buffer is None:
            self._buffer = bytearray(CHUNK)
        view = memoryview(self._buffer)[:count]
        try:
            got = sock.recv_into(view)
        except OSError as exc:
            raise _NetworkError(exc) from None
        pwrite_all(fd, view[:got], offset)
        return got

    def _splice_once(self, sock: socket.socket, fd: int, offset: int, count: int) -> int | None:
        """splice(2) from the socket into a pipe and on into the file; None if the kernel
        cannot splice between these two (the caller then reads and writes)."""
        if self._pipe is None:
            self._pipe = os.pipe2(os.O_CLOEXEC)
            with contextlib.suppress(OSError):  # a smaller pipe only means more calls
                fcntl.fcntl(self._pipe[1], fcntl.F_SETPIPE_SZ, CHUNK)
        out, into = self._pipe
        got = -1
        while got < 0:
            try:
                got = os.splice(sock.fileno(), into, count)
            except BlockingIOError:
                _wait_readable(sock, self.endpoint.read_timeout)
            except OSError as exc:
                if exc.errno in _NO_SPLICE:
                    return None
                raise _NetworkError(exc) from None
        done = 0
        while done < got:
            try:
                done += os.splice(out, fd, got - done, offset_dst=offset + done)
            except OSError as exc:
                if exc.errno not in _NO_SPLICE:
                    raise
                # This file system takes no splice: empty the pipe by hand, and read and
                # write from now on.
                rest = got - done
                while rest:
                    data = os.read(out, rest)
                    pwrite_all(fd, data, offset + done)
                    done += len(data)
                    rest -= len(data)
                self._splice = False
        return got


class _Closed(Exception):
    """The server closed a connection before sending any byte of an answer."""


class _NetworkError(Exception):
    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _wait_readable(sock: socket.socket, timeout: float) -> None:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    if not poller.poll(timeout * 1000):
        raise _NetworkError(TimeoutError(errno.ETIMEDOUT, "the server sent nothing in time"))


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` into ``fd`` at ``offset`` (pwrite may write less at a time)."""
    view = memoryview(data)
    while view:
        count = os.pwrite(fd, view, offset)
        view, offset = view[count:], offset + count


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
