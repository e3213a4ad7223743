"""Hostile bodies on ``POST /submit`` against the real server (``dropbox serve``, gunicorn).

Raw sockets, because no HTTP client sends a broken chunked encoding on purpose. Every such
request gets the 400 page with ``Connection: close`` (never a 500), leaves nothing in the
store, and the server goes on serving. Refusals that do not read the body close too.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dropbox.filetimes import DISCARDED_PREFIX
from dropbox.instance import load_instance
from tests.support.server import DropboxServer, make_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team

pytestmark = pytest.mark.timeout(180)

BOUNDARY = "----PosternHostileBoundary5Qm2"


@dataclass
class Site:
    server: DropboxServer
    blobs: Path
    cookie: str
    token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("hostile")
    data_dir = make_data_dir(root / "data", Team())
    with running_server(data_dir, root) as server:
        source = Source(server)
        token = Source.token(source.get("/submit"))
        cookie = "; ".join(f"{c.name}={c.value}" for c in source.http.cookies)
        yield Site(server, load_instance(data_dir).blobs_dir, cookie, token)


#: How long after a whole answer the server has to close the connection (seconds).
CLOSE_WAIT = 2


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool


def exchange(site: Site, head: bytes, body: bytes = b"", *, half_close: bool = False) -> Answer:
    """Send a raw request; read the answer, and whether the server then closed."""
    with socket.create_connection(("127.0.0.1", site.server.port), timeout=30) as conn:
        conn.sendall(head + body)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        data = b""
        closed = False
        while True:
            piece = conn.recv(65536)
            if not piece:
                closed = True
                break
            data += piece
            top, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                lines = top.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])
                }
                length = int(headers.get("content-length", "-1"))
                if 0 <= length <= len(rest):
                    # A refusal's connection is closed as soon as its answer is written; a
                    # kept-alive one would make every exchange wait out the whole timeout.
                    conn.settimeout(CLOSE_WAIT)
                    try:
                        closed = conn.recv(1) == b""
                    except TimeoutError:
                        closed = False
                    break
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, rest, closed)


def request_head(site: Site, extra: str, *, logged_in: bool = True) -> bytes:
    cookie = f"Cookie: {site.cookie}\r\n" if logged_in else ""
    return (
        "POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{cookie}{extra}\r\n"
    ).encode()


def form_start(site: Site) -> bytes:
    """A valid start of the form: the CSRF part, then a file part whose data follows."""
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{site.token}\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="files"; filename="evidence.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode() + os.urandom(200_000)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def store_files(site: Site) -> list[str]:
    """The store's files but the discarded (empty, unlinked at the daily blur)."""
    return sorted(n for n in os.listdir(site.blobs) if not n.startswith(DISCARDED_PREFIX))


CHUNKED = "Transfer-Encoding: chunked\r\n"
BROKEN_CHUNKED = {
    # InvalidChunkSize: the size line is not hexadecimal.
    "invalid chunk size": b"zz\r\nabc\r\n",
    # ChunkMissingTerminator: chunk data not followed by CRLF.
    "missing chunk terminator": b"5\r\nhelloXX0\r\n\r\n",
    # LimitRequestHeaders: a trailer section larger than gunicorn's limit.
    "oversized trailers": b"0\r\n" + b"X-Pad: " + b"a" * 300_000 + b"\r\n\r\n",
    # LimitRequestHeaders: more trailer fields than allowed.
    "too many trailers": b"0\r\n" + b"".join(b"X-T%d: v\r\n" % i for i in range(200)) + b"\r\n",
    # InvalidHeader: a trailer line ending in a bare LF.
    "bare LF trailer": b"0\r\nX-Bad: v\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BROKEN_CHUNKED))
def test_a_broken_chunked_body_is_a_400_page_and_closes(site, name):
    before = store_files(site)
    body = chunk(form_start(site)) + BROKEN_CHUNKED[name]
    answer = exchange(site, request_head(site, CHUNKED), body)
    assert answer.status == 400, answer.body[:300]
    assert b"The form could not be read. Nothing was stored." in answer.body
    assert answer.headers.get("connection") == "close"
    assert answer.closed
    assert store_files(site) == before


def test_a_chunked_body_cut_short_is_a_400_page(site):
    """NoMoreData: the client stops sending (half-close) in the middle of a chunk."""
    before = store_files(site)
    body = chunk(form_start(site)) + b"10000\r\n" + b"x" * 1000
    answer = exchange(site, request_head(site, CHUNKED), body, half_close=True)
    assert answer.status == 400
    assert answer.headers.get("connection") == "close"
    assert store_files(site) == before


def test_a_body_shorter_than_its_content_length_is_a_400_page(site):
    before = store_files(site)
    body = form_start(site)
    head = request_head(site, f"Content-Length: {len(body) + 100_000}\r\n")
    answer = exchange(site, head, body, half_close=True)
    assert answer.status == 400
    assert answer.headers.get("connection") == "close"
    assert store_files(site) == before


def test_oversized_request_headers_are_refused_not_a_500(site):
    """gunicorn refuses these itself, before the app: 431, and the connection closes."""
    head = request_head(site, "X-Pad: " + "a" * 20_000 + "\r\n")
    answer = exchange(site, head)
    assert answer.status == 431
    assert answer.headers.get("connection") == "close"
    assert answer.closed


def test_early_refusals_close_the_connection(site):
    """Not logged in: refused before the body is read, so the connection is not kept."""
    answer = exchange(site, request_head(site, "Content-Length: 5000000\r\n", logged_in=False))
    assert answer.status == 403
    assert answer.headers.get("connection") == "close"
    assert answer.closed


def test_the_server_serves_on_and_a_good_form_still_works(site):
    page = exchange(site, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert page.status == 200
    assert page.headers.get("connection") != "close"
    body = (
        form_start(site)
        + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'
        f"hello\r\n--{BOUNDARY}--\r\n".encode()
    )
    answer = exchange(site, request_head(site, CHUNKED), chunk(body) + b"0\r\n\r\n")
    assert answer.status == 303, answer.body[:300]
    assert len([f for f in store_files(site) if not f.startswith(".")]) == 2
    assert [f for f in store_files(site) if f.startswith(".")] == []
    assert "Traceback" not in site.server.output()
