"""The plain form's plaintext never reaches a disk, under a real ``dropbox serve`` (gunicorn).

A source without scripts sends a multipart form of several MiB with a marker repeated all
through it. Half-way through sending, and again after the answer, every file under the data
directory and under the temporary directories (``tempfile.gettempdir()``, ``/dev/shm``,
``/var/tmp``) that changed since the test began is read (tests/support/disk_scan.py): the
marker is found in none of them. What was stored then opens, with the journalist's key, to
exactly what was sent.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto import open_envelope
from dropbox import db
from dropbox.instance import load_instance
from tests.support.database import server_url
from tests.support.disk_scan import file_holds, files_containing, scan_start
from tests.support.server import DropboxServer, make_data_dir, running_server
from tests.support.team import Team

pytestmark = pytest.mark.timeout(120)

MiB = 1 << 20
BOUNDARY = "----PosternPlaintextBoundary9xQ2"
_TOKEN = re.compile(rb'name="csrf_token" value="([^"]+)"')
#: Where a server could leave a temporary file.
TEMPORARY_DIRS = (Path(tempfile.gettempdir()), Path("/dev/shm"), Path("/var/tmp"))  # noqa: S108


class Browser:
    """A browser without scripts: one session cookie, forms posted by hand."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""

    def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = ""
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Cookie": self.cookie} if self.cookie else {}
            if content_type:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            self._remember(response)
            return response.status, response.read()
        finally:
            conn.close()

    def _remember(self, response: http.client.HTTPResponse) -> None:
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]

    def token(self, page: bytes) -> str:
        match = _TOKEN.search(page)
        assert match is not None, "no CSRF token in the page"
        return match.group(1).decode()

    def post_form(self, path: str, token: str) -> tuple[int, bytes]:
        return self.request(
            "POST", path, f"csrf_token={token}".encode(), "application/x-www-form-urlencoded"
        )

    def become_a_source(self) -> str:
        """Get a codename and acknowledge it; return the submit form's token."""
        _, page = self.request("GET", "/generate")
        status, page = self.post_form("/generate", self.token(page))
        assert status == 200
        status, _ = self.post_form("/acknowledge", self.token(page))
        assert status == 303
        status, page = self.request("GET", "/submit")
        assert status == 200
        return self.token(page)


def multipart(token: str, message: bytes, files: list[tuple[str, bytes]]) -> bytes:
    def part(headers: str, data: bytes) -> bytes:
        return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"

    body = part('Content-Disposition: form-data; name="csrf_token"', token.encode())
    body += part('Content-Disposition: form-data; name="message"', message)
    for name, data in files:
        body += part(
            f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream",
            data,
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


def with_marker(marker: bytes, size: int) -> bytes:
    data = bytearray(os.urandom(size))
    for at in range(0, size - len(marker), 8192):
        data[at : at + len(marker)] = marker
    return bytes(data)


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def server(team: Team) -> Iterator[DropboxServer]:
    """``dropbox serve`` on a fresh data directory under the system's temporary directory."""
    with tempfile.TemporaryDirectory(prefix="postern-plaintext-") as base:
        data_dir = make_data_dir(Path(base) / "data", team)
        with running_server(data_dir, Path(base)) as running:
            yield running


def sealed_bytes_written(blobs_dir: Path) -> int:
    return sum(p.stat().st_size for p in blobs_dir.iterdir() if p.is_file())


@pytest.mark.slow
def test_a_plain_form_upload_leaves_no_plaintext_anywhere(server, team):
    port, data_dir = server.port, server.data_dir
    since = scan_start()
    marker = b"PLAINTEXT-MARKER-" + secrets.token_hex(16).encode()
    message = b"The message names the marker: " + marker
    files = [("first.bin", with_marker(marker, 6 * MiB + 99)), ("second.bin", marker * 1000)]
    browser = Browser(port)
    body = multipart(browser.become_a_source(), message, files)
    roots = [data_dir, *TEMPORARY_DIRS]
    blobs_dir = load_instance(data_dir).blobs_dir

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("POST", "/submit")
        conn.putheader("Cookie", browser.cookie)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        half = len(body) // 2
        for at in range(0, half, 256 * 1024):
            conn.send(body[at : min(at + 256 * 1024, half)])
        # Wait until the server is sealing the first file (its ciphertext is being written),
        # then look everywhere while the rest of the request has not been sent yet.
        deadline = time.monotonic() + 30
        while sealed_bytes_written(blobs_dir) < 2 * MiB:
            assert time.monotonic() < deadline, "the server did not start sealing"
            time.sleep(0.05)
        assert files_containing(roots, marker, since) == []
        conn.send(body[half:])
        response = conn.getresponse()
        page = response.read()
    finally:
        conn.close()
    assert response.status == 303
    assert response.getheader("Location", "").endswith("/submit/done")
    assert page is not None
    assert files_containing(roots, marker, since) == []
    assert marker.decode() not in server.output()

    # The marker was really sent: what was stored opens to it.
    engine = db.make_engine(server_url(data_dir))
    try:
        with db.make_sessionmaker(engine)() as session:
            items = session.query(db.Item).order_by(db.Item.position).all()
            blob_ids = [(item.kind, item.blob_id) for item in items]
    finally:
        engine.dispose()
    opened = []
    for kind, blob_id in blob_ids:
        with (blobs_dir / blob_id).open("rb") as handle:
            envelope = open_envelope(handle, [team.journalist.secret])
            opened.append((kind, envelope.metadata.filename, envelope.read_all()))
    assert opened == [
        ("message", "", message),
        ("file", "first.bin", files[0][1]),
        ("file", "second.bin", files[1][1]),
    ]


def test_the_scan_finds_a_marker_wherever_it_lies(tmp_path):
    """The check above would see plaintext: also across the scan's read boundaries, and in
    a file whose modification time was set back as the server sets its own."""
    since = scan_start()
    marker = b"SCAN-CHECK-" + secrets.token_hex(8).encode()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "f").write_bytes(b"x" * (64 - 5) + marker + b"y" * 100)
    (tmp_path / "clean").write_bytes(b"z" * 1000)
    dated = tmp_path / "dated"
    dated.write_bytes(marker)
    os.utime(dated, (0, 0))
    assert file_holds(tmp_path / "deep" / "er" / "f", marker, block=64)
    assert not file_holds(tmp_path / "clean", marker, block=64)
    assert sorted(files_containing([tmp_path], marker, since)) == [
        tmp_path / "dated",
        tmp_path / "deep" / "er" / "f",
    ]
    # Files unchanged since the scan's start cannot hold a marker made after it: not read.
    assert files_containing([tmp_path], marker, time.time() + 60) == []
