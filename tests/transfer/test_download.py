"""Tests for transfer/download.py: envelope bodies streamed by urllib3 into a file.

A scripted server on 127.0.0.1 answers each request with the next answer of its script, so
that every odd thing a hostile server (or what sits between it and the transfer machine) can
do is played exactly: lengths that lie, bodies cut short or too long, stalls, kept-alive
connections closed while idle, heads that break the rules, TLS. Nothing here reaches beyond
loopback.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.transfer.fake_sync import self_signed_certificate
from transfer import download
from transfer.download import Connection, Endpoint, Head, expect_range
from transfer.errors import AnswerBroken, WireError

BODY = os.urandom(3 * 1024 * 1024 + 12345)

#: An answer in a script: bytes to send, then what to do with the connection.
KEEP, CLOSE, STALL = "keep", "close", "stall"


@dataclass
class Scripted:
    """A loopback server: for every request, on whatever connection, the next answer."""

    answers: list[tuple[bytes, str]]
    tls: ssl.SSLContext | None = None
    requests: list[tuple[int, bytes]] = field(default_factory=list)  # (connection, head)
    connections: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while self.answers:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                self.requests.append((number, head))
                answer, then = self.answers.pop(0)
                conn.sendall(answer)
                if then == CLOSE:
                    return
                if then == STALL:
                    self.stop.wait(30)
                    return
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(*answers: tuple[bytes, str], tls: ssl.SSLContext | None = None) -> Scripted:
        server = Scripted(list(answers), tls)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def ok(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def connect(server: Scripted, **options: object) -> Connection:
    return Connection(Endpoint("127.0.0.1", server.port, **options))  # type: ignore[arg-type]


def signer() -> tuple[Callable[[], dict[str, str]], list[int]]:
    """Headers as a request signature would be: new ones for each attempt."""
    calls: list[int] = []

    def headers() -> dict[str, str]:
        calls.append(len(calls))
        return {"X-Attempt": str(len(calls))}

    return headers, calls


class Into:
    """A file to copy into, and what ``wrote`` was told."""

    def __init__(self, path: Path, prefix: bytes = b"") -> None:
        self.path = path
        path.write_bytes(prefix)
        self.fd = os.open(path, os.O_RDWR)
        self.counts: list[int] = []

    def wrote(self, count: int) -> None:
        self.counts.append(count)

    def bytes(self) -> bytes:
        return self.path.read_bytes()

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def into(tmp_path: Path) -> Iterator[Into]:
    target = Into(tmp_path / "bundle.part", b"HEAD")
    yield target
    target.close()


# == bodies =================================================================================


def test_the_body_goes_into_the_file_at_the_offset(scripted, into: Into) -> None:
    server = scripted((ok(BODY, "Content-Range: bytes 0-9/10"), KEEP))
    connection = connect(server)
    headers, _ = signer()
    head = connection.get("/v1/items/7/envelope", headers)
    assert (head.status, head.reason, head.length) == (200, "OK", len(BODY))
    assert head.headers["content-range"] == "bytes 0-9/10"
    connection.copy_body(into.fd, 4, into.wrote)
    connection.close()
    assert into.bytes() == b"HEAD" + BODY
    assert sum(into.counts) == len(BODY)
    assert max(into.counts) <= download.CHUNK
    [(_, request)] = server.requests
    lines = request.decode().split("\r\n")
    assert lines[0] == "GET /v1/items/7/envelope HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "X-Attempt: 1" in lines


def test_a_kept_alive_connection_is_reused_and_replaced_once_closed(scripted, into: Into) -> None:
    # Two answers on the first connection, which the server then closes while idle.
    server = scripted((ok(b"one"), KEEP), (ok(b"two"), CLOSE), (ok(b"three"), KEEP))
    connection = connect(server)
    headers, calls = signer()
    for _ in range(3):
        connection.get("/x", headers)
        connection.copy_body(into.fd, len(into.bytes()), into.wrote)
    connection.close()
    assert into.bytes() == b"HEADonetwothree"
    assert server.connections == 2
    # The third request goes out on a new connection, signed afresh (a signature is good
    # once) if it went out on the closed one first.
    sent = [(number, head.split(b"\r\n")[-1]) for number, head in server.requests]
    assert sent[:2] == [(1, b"X-Attempt: 1"), (1, b"X-Attempt: 2")]
    assert sent[2:] == [(2, f"X-Attempt: {len(calls)}".encode())]
    assert len(calls) in (3, 4)


def test_a_new_connection_closed_unanswered_is_not_tried_again(scripted) -> None:
    server = scripted((b"", CLOSE), (ok(b"never asked for"), KEEP))
    connection = connect(server)
    headers, calls = signer()
    with pytest.raises(WireError, match="closed the connection without answering"):
        connection.get("/x", headers)
    assert len(calls) == 1
    assert server.connections == 1


def test_an_answer_cut_short_raises_and_keeps_what_arrived(scripted, into: Into) -> None:
    part = BODY[:300_000]
    server = scripted((ok(BODY)[: -len(BODY) + len(part)], CLOSE), (ok(b"next"), KEEP))
    connection = connect(server)
    connection.get("/x", signer()[0])
    with pytest.raises(AnswerBroken, match="closed the connection in the middle of a body"):
        connection.copy_body(into.fd, 4, into.wrote)
    assert into.bytes() == b"HEAD" + part
    assert sum(into.counts) == len(part)
    # A broken connection is not reused.
    connection.get("/y", signer()[0])
    connection.copy_body(into.fd, 4 + len(part), into.wrote)
    connection.close()
    assert into.bytes() == b"HEAD" + part + b"next"
    assert server.connections == 2


def test_a_stalled_answer_times_out(scripted, into: Into) -> None:
    server = scripted((ok(BODY)[:5000], STALL))
    connection = connect(server, read_timeout=0.5)
    connection.get("/x", signer()[0])
    with pytest.raises(AnswerBroken, match="no answer in time"):
        connection.copy_body(into.fd, 4, into.wrote)
    assert into.bytes() == b"HEAD" + BODY[: 5000 - len(ok(BODY)) + len(BODY)]


def test_a_server_that_never_answers_times_out(scripted) -> None:
    server = scripted((b"", STALL))
    connection = connect(server, read_timeout=0.5)
    with pytest.raises(WireError, match="no answer in time"):
        connection.get("/x", signer()[0])


# == hostile answers ========================================================================


@pytest.mark.parametrize("value", ["-1", "12a", "", "1 2", "0x10", "+5", "1" * 20])
def test_an_invalid_content_length_is_refused(scripted, value: str) -> None:
    server = scripted((f"HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\nabc".encode(), CLOSE))
    with pytest.raises(WireError, match="invalid Content-Length"):
        connect(server).get("/x", signer()[0])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "more than one"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "Transfer-Enc",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "Transfer-Encoding",
        ),
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 70_000 + b"\r\n\r\n", "not HTTP/1.x"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not HTTP/1.x"),
        (b"HTTP/2 200 OK\r\n\r\n", "not HTTP/1.x"),
    ],
)
def test_bad_answers_are_refused(scripted, answer: bytes, message: str) -> None:
    server = scripted((answer, CLOSE), (ok(b"fine"), KEEP))
    connection = connect(server)
    with pytest.raises(WireError, match=message):
        connection.get("/x", signer()[0])
    # The connection that carried it is not used again.
    connection.get("/y", signer()[0])
    connection.close()
    assert server.connections == 2


def test_a_body_longer_than_its_length_is_refused(scripted, into: Into) -> None:
    server = scripted((ok(BODY) + b"extra", KEEP), (ok(b"next"), KEEP))
    connection = connect(server)
    connection.get("/x", signer()[0])
    with pytest.raises(WireError, match="more than the answer's Content-Length"):
        connection.copy_body(into.fd, 4, into.wrote)
    assert into.bytes() == b"HEAD" + BODY  # not one byte past the length
    connection.get("/y", signer()[0])
    connection.copy_body(into.fd, 4 + len(BODY), into.wrote)
    connection.close()
    assert into.bytes() == b"HEAD" + BODY + b"next"
    assert server.connections == 2


def test_bytes_past_a_short_body_are_never_taken_for_the_next_answer(scripted, into: Into) -> None:
    # A smuggled answer right behind the body, in the same packet as the head.
    smuggled = ok(b"abc") + ok(b"evil")
    server = scripted((smuggled, KEEP), (ok(b"good"), KEEP))
    connection = connect(server)
    connection.get("/x", signer()[0])
    connection.copy_body(into.fd, 4, into.wrote)
    head = connection.get("/y", signer()[0])
    assert head.length == 4
    connection.copy_body(into.fd, 7, into.wrote)
    connection.close()
    assert into.bytes() == b"HEADabcgood"
    assert len(server.requests) == 2


def test_a_head_cut_short_leaves_no_body_to_take(scripted, into: Into) -> None:
    server = scripted((b"HTTP/1.1 200 OK\r\nContent-Len", CLOSE))
    connection = connect(server)
    head = connection.get("/x", signer()[0])
    assert head.length is None
    with pytest.raises(WireError, match="no answer body with a known length"):
        connection.copy_body(into.fd, 4, into.wrote)
    connection.close()
    assert into.bytes() == b"HEAD"


def _head(content_range: str | None) -> Head:
    headers = {} if content_range is None else {"content-range": content_range}
    return Head(206, "Partial Content", headers, 90)


def test_the_content_range_must_be_the_one_asked_for() -> None:
    expect_range(_head("bytes 10-99/100"), 10, 100)
    for wrong in (None, "bytes 0-99/100", "bytes 10-98/100", "bytes 10-99/101", "bytes 10-99/*"):
        with pytest.raises(WireError, match="where bytes 10-99/100 was asked for"):
            expect_range(_head(wrong), 10, 100)


def test_an_error_answer_is_read_for_its_message(scripted, into: Into) -> None:
    error = b'{"error":"unknown_client","message":"who are you"}'
    server = scripted(
        (ok(error, status="401 Unauthorized"), KEEP),
        (b"HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\nto the close", CLOSE),
        (ok(b"x" * 100, status="404 Not Found"), KEEP),
    )
    connection = connect(server)
    head = connection.get("/x", signer()[0])
    assert (head.status, connection.read_body(1000)) == (401, error)
    head = connection.get("/x", signer()[0])
    assert (head.status, head.length, connection.read_body(1000)) == (500, None, b"to the close")
    head = connection.get("/x", signer()[0])
    assert (head.status, connection.read_body(99)) == (404, b"")  # longer than the limit
    connection.close()
    assert server.connections == 2  # the 500 closed the first one


def test_an_unread_body_is_not_mistaken_for_the_next_answer(scripted, into: Into) -> None:
    server = scripted((ok(b"not taken"), KEEP), (ok(b"taken"), KEEP))
    connection = connect(server)
    connection.get("/x", signer()[0])  # its body is never taken
    connection.get("/y", signer()[0])
    connection.copy_body(into.fd, 4, into.wrote)
    connection.close()
    assert into.bytes() == b"HEADtaken"
    assert server.connections == 2


def test_a_server_that_is_not_there() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    connection = Connection(Endpoint("127.0.0.1", port))
    with pytest.raises(
        WireError, match=f"cannot reach the server 127.0.0.1:{port}: connection refused"
    ):
        connection.get("/x", signer()[0])


def test_targets_and_headers_cannot_smuggle_lines(scripted) -> None:
    server = scripted((ok(b""), KEEP))
    connection = connect(server)
    with pytest.raises(ValueError, match="target"):
        connection.get("/x HTTP/1.1\r\nX-Evil: 1", signer()[0])
    with pytest.raises(ValueError, match="header"):
        connection.get("/x", lambda: {"X-A": "1\r\nX-Evil: 1"})
    assert server.requests == []


# == TLS ====================================================================================


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_tls_bodies_are_read_and_written(scripted, into: Into, certificate) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = scripted((ok(BODY), KEEP), (ok(b"tail"), KEEP), tls=server_side)
    connection = connect(server, tls=ssl.create_default_context(cafile=str(cert)))
    connection.get("/x", signer()[0])
    connection.copy_body(into.fd, 4, into.wrote)
    connection.get("/y", signer()[0])
    connection.copy_body(into.fd, 4 + len(BODY), into.wrote)
    connection.close()
    assert into.bytes() == b"HEAD" + BODY + b"tail"
    assert server.connections == 1


def test_tls_with_an_untrusted_certificate_is_refused(scripted, certificate) -> None:
    cert, key = certificate
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    server = scripted((ok(BODY), KEEP), tls=server_side)
    connection = connect(server, tls=ssl.create_default_context())
    with pytest.raises(
        WireError, match=r"cannot reach the server 127\.0\.0\.1.*certificate verify failed"
    ):
        connection.get("/x", signer()[0])
