"""The tus endpoint under a real gunicorn, driven by tuspy (a tus client written elsewhere)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest
import requests
from tusclient.client import TusClient

from crypto import KeyKind, Kind, PrivateKey, open_bytes, seal_bytes
from crypto.envelope import header_length
from dropbox.storage import LocalBlobStore
from tests.dropbox.tus_testapp import (
    CSRF_HEADER,
    ENV_DIR,
    SESSION_COOKIE,
    complete_into,
    make_upload_store,
)
from tests.support.ports import free_port, wait_for_port

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
COOKIE, CSRF, OWNER = "interop-cookie", "interop-csrf", "source-interop"
AUTH = {"Cookie": f"{SESSION_COOKIE}={COOKIE}", CSRF_HEADER: CSRF}
STARTUP_SECONDS = 20.0


@dataclass(frozen=True)
class Server:
    base: str
    port: int
    root: Path
    keys: tuple[PrivateKey, ...]

    @property
    def endpoint(self) -> str:
        return f"{self.base}/api/uploads"

    def head_offset(self, url: str) -> int:
        headers = {"Tus-Resumable": "1.0.0", **AUTH}
        with requests.Session() as session, session.head(url, headers=headers, timeout=10) as r:
            assert r.status_code == 200
            assert r.headers["Tus-Resumable"] == "1.0.0"
            return int(r.headers["Upload-Offset"])

    def take(self, url: str) -> bytes:
        """Complete the upload into a blob store, as the submission step would."""
        upload_id = urlsplit(url).path.rsplit("/", 1)[1].split(".")[0]
        store = make_upload_store(self.root)
        upload = store.get(upload_id)
        assert upload is not None
        assert upload.owner == OWNER
        assert upload.complete
        blobs = LocalBlobStore(self.root / "blobs")
        with blobs.open(complete_into(store, upload_id, blobs)) as handle:
            return handle.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tus-gunicorn")
    keys = tuple(PrivateKey.generate(KeyKind.ENCRYPTION, f"j{i}") for i in range(2))
    config = {
        "sessions": {COOKIE: {"csrf": CSRF, "owner": OWNER}},
        "recipients": [key.public.key.hex() for key in keys],
        "max_size": 64 * 1024 * 1024,
    }
    (root / "config.json").write_text(json.dumps(config), "utf-8")
    port = free_port()
    log = root / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "gthread", "--threads", "4", "--workers", "1",
        "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5",
        "--no-control-socket",  # gunicorn's default puts one under $HOME
        "tests.dropbox.tus_testapp:create_app()",
    ]  # fmt: skip
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, ENV_DIR: str(root)},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, timeout=STARTUP_SECONDS, log=log, what="gunicorn")
        yield Server(f"http://127.0.0.1:{port}", port, root, keys)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _sealed(server: Server, size: int) -> tuple[bytes, bytes]:
    content = os.urandom(size)
    recipients = [key.public.key for key in server.keys]
    return content, seal_bytes(content, recipients, Kind.FILE, "bodycam.mp4", "video/mp4")


def _opens(server: Server, blob: bytes, content: bytes) -> None:
    metadata, opened = open_bytes(blob, [server.keys[1].secret])
    assert metadata.filename == "bodycam.mp4"
    assert opened == content


def test_options_under_gunicorn(server: Server) -> None:
    with requests.Session() as session, session.options(server.endpoint, timeout=10) as r:
        assert r.status_code == 204
        assert r.headers["Tus-Resumable"] == "1.0.0"
        assert r.headers["Tus-Version"] == "1.0.0"
        assert r.headers["Tus-Extension"] == "creation,termination,expiration"


def test_tuspy_uploads_a_multi_chunk_envelope(server: Server) -> None:
    content, envelope = _sealed(server, 5 * 1024 * 1024 + 12345)
    client = TusClient(server.endpoint, headers=dict(AUTH))
    uploader = client.uploader(
        file_stream=io.BytesIO(envelope), chunk_size=256 * 1024, metadata={"name": "x"}
    )
    uploader.upload()
    url = str(uploader.url)
    assert url.startswith(f"{server.endpoint}/")
    assert uploader.offset == len(envelope)
    assert server.head_offset(url) == len(envelope)
    blob = server.take(url)
    assert blob == envelope
    _opens(server, blob, content)


def _broken_patch(server: Server, url: str, envelope: bytes, cut: int) -> None:
    """PATCH the whole envelope's length, send ``cut`` bytes of it, hang up."""
    head = (
        f"PATCH {urlsplit(url).path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Tus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        "Upload-Offset: 0\r\n"
        f"Content-Length: {len(envelope)}\r\n"
        f"Cookie: {AUTH['Cookie']}\r\n"
        f"{CSRF_HEADER}: {CSRF}\r\n"
        "\r\n"
    ).encode("ascii")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + envelope[:cut])


def _wait_for_offset(server: Server, url: str, offset: int) -> None:
    deadline = time.monotonic() + 10
    while (seen := server.head_offset(url)) != offset:
        assert seen < offset
        assert time.monotonic() < deadline, f"offset stuck at {seen}, expected {offset}"
        time.sleep(0.05)


@pytest.mark.parametrize("cut", [77, header_length(2) + 1024 * 1024 + 333])
def test_tuspy_resumes_after_an_interrupted_patch(server: Server, cut: int) -> None:
    content, envelope = _sealed(server, 3 * 1024 * 1024)
    client = TusClient(server.endpoint, headers=dict(AUTH))
    stream: IO[bytes] = io.BytesIO(envelope)
    url = client.uploader(file_stream=stream).create_url()
    _broken_patch(server, url, envelope, cut)
    # The server kept what arrived; HEAD says so once it has noticed the hang-up.
    _wait_for_offset(server, url, cut)
    # A new uploader, knowing only the URL, asks HEAD for the offset and continues. Its one
    # retry covers the instant in which the broken request may still hold the upload.
    resumed = client.uploader(
        url=url, file_stream=stream, chunk_size=512 * 1024, retries=1, retry_delay=1
    )
    assert resumed.offset == cut
    resumed.upload()
    assert resumed.offset == len(envelope)
    blob = server.take(url)
    assert blob == envelope
    _opens(server, blob, content)


def test_tuspy_resumes_with_the_url_alone_after_the_session_is_gone(server: Server) -> None:
    # The session created the upload; a client with no cookie and no token (the session has
    # ended, or the server restarted) resumes it: the URL carries the upload's capability.
    content, envelope = _sealed(server, 2 * 1024 * 1024)
    url = (
        TusClient(server.endpoint, headers=dict(AUTH))
        .uploader(file_stream=io.BytesIO(envelope))
        .create_url()
    )
    bare = TusClient(server.endpoint)
    first = bare.uploader(url=url, file_stream=io.BytesIO(envelope), chunk_size=1024 * 1024)
    first.upload_chunk()  # type: ignore[no-untyped-call]
    assert server.head_offset(url) == 1024 * 1024
    resumed = bare.uploader(url=url, file_stream=io.BytesIO(envelope), chunk_size=512 * 1024)
    assert resumed.offset == 1024 * 1024
    resumed.upload()
    blob = server.take(url)
    assert blob == envelope
    _opens(server, blob, content)
    # Without the capability the same upload is not found.
    with requests.head(url.rsplit(".", 1)[0], headers={"Tus-Resumable": "1.0.0"}, timeout=10) as r:
        assert r.status_code == 404
