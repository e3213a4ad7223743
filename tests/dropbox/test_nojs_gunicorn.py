"""dropbox.nojs behind a real gunicorn: an oversize upload gets a page, not a reset connection.

The WSGI app below is served by ``gunicorn`` in a subprocess (gthread workers, as deployed)
and configured through environment variables, so this module is both the test and the app.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crypto import KeyKind, PrivateKey, open_envelope
from dropbox.filetimes import DISCARDED_PREFIX
from dropbox.nojs import NoJsError, NoJsLimits, seal_form
from dropbox.storage import LocalBlobStore
from tests.support.ports import free_port, wait_for_port

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = "----PosternGunicornBoundaryQx8Jd0"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
CSRF_VALUE = "gunicorn-test-csrf"
MiB = 1024 * 1024
LIMIT = MiB

StartResponse = Callable[[str, list[tuple[str, str]]], object]


# -- the app gunicorn serves -----------------------------------------------------------------


def make_app() -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app, configured by POSTERN_TEST_* variables (gunicorn's app factory)."""
    store = LocalBlobStore(Path(os.environ["POSTERN_TEST_STORE"]))
    recipients = [bytes.fromhex(os.environ["POSTERN_TEST_RECIPIENT"])]
    limits = NoJsLimits(
        max_request_bytes=int(os.environ["POSTERN_TEST_LIMIT"]),
        max_message_chars=10_000,
        max_files=5,
        max_drain_bytes=64 * MiB,
    )

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":
            return respond(start_response, "200 OK", "ready")
        length_text = environ.get("CONTENT_LENGTH") or ""
        try:
            result = seal_form(
                environ["wsgi.input"],
                environ.get("CONTENT_TYPE", ""),
                int(length_text) if length_text.isdigit() else None,
                check_csrf=lambda value: value == CSRF_VALUE,
                recipients=recipients,
                store=store,
                limits=limits,
                record=lambda result: None,
            )
        except NoJsError as error:
            if error.code == "too_large":
                page = "<!doctype html><title>Too large</title><p>too large</p>"
                return respond(start_response, "413 Content Too Large", page)
            return respond(start_response, "400 Bad Request", error.code)
        return respond(start_response, "200 OK", f"ok {len(result.items)}")

    return app


def respond(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


# -- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    store: LocalBlobStore
    key: PrivateKey

    def post(
        self, body: bytes | Iterator[bytes], *, chunked: bool = False
    ) -> tuple[int, bytes, float]:
        """POST to /submit; return status, body and seconds taken."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.monotonic()
        try:
            headers = {"Content-Type": CONTENT_TYPE}
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
            conn.request("POST", "/submit", body=body, headers=headers, encode_chunked=chunked)
            response = conn.getresponse()
            return response.status, response.read(), time.monotonic() - started
        finally:
            conn.close()


def wait_until_ready(port: int, deadline: float) -> None:
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            if conn.getresponse().read() == b"ready":
                conn.close()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("gunicorn")
    key = PrivateKey.generate(KeyKind.ENCRYPTION, "journalist")
    store = LocalBlobStore(base / "store")
    log = base / "gunicorn.log"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "POSTERN_TEST_STORE": str(store.root),
        "POSTERN_TEST_RECIPIENT": key.public.key.hex(),
        "POSTERN_TEST_LIMIT": str(LIMIT),
    }
    # No --access-logfile: gunicorn writes no access log unless one is named.
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--threads", "4", "--workers", "1",
        "--timeout", "30", "--graceful-timeout", "2",
        "--error-logfile", str(log),
        "--chdir", str(ROOT),
        "tests.dropbox.test_nojs_gunicorn:make_app()",
    ]  # fmt: skip
    log.touch()
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        wait_for_port(port, process, timeout=20, log=log, what="gunicorn")
        wait_until_ready(port, deadline)
        yield Server(port, store, key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- bodies ----------------------------------------------------------------------------------


def multipart(message: str, files: list[tuple[str, bytes]]) -> bytes:
    delimiter = f"--{BOUNDARY}".encode()
    parts = [
        b'Content-Disposition: form-data; name="csrf_token"\r\n\r\n' + CSRF_VALUE.encode(),
        b'Content-Disposition: form-data; name="message"\r\n\r\n' + message.encode(),
    ]
    for name, data in files:
        parts.append(
            f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
        )
    out = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts)
    return out + delimiter + b"--\r\n"


def pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


def store_files(store: LocalBlobStore) -> set[str]:
    """The store's files but the discarded (empty, unlinked at the daily blur)."""
    return {n for n in os.listdir(store.root) if not n.startswith(DISCARDED_PREFIX)}


# -- tests -----------------------------------------------------------------------------------


def test_submission_is_sealed(server):
    before = store_files(server.store)
    data = os.urandom(300_000)
    status, body, _ = server.post(multipart("through gunicorn", [("a.bin", data)]))
    assert (status, body) == (200, b"ok 2")
    new = store_files(server.store) - before
    assert len(new) == 2
    contents = set()
    for blob_id in new:
        with server.store.open(blob_id) as handle:
            contents.add(open_envelope(handle, [server.key.secret]).read_all())
    assert contents == {b"through gunicorn", data}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_upload_gets_the_page(server, chunked):
    """5 MiB against a 1 MiB limit: the 413 page arrives, the connection is not reset."""
    before = store_files(server.store)
    body = multipart("too much", [("small.bin", b"s" * 1000), ("big.bin", os.urandom(5 * MiB))])
    status, page, seconds = server.post(pieces(body) if chunked else body, chunked=chunked)
    assert status == 413
    assert b"too large" in page
    assert store_files(server.store) == before
    assert seconds < 20


def test_normal_submission_after_refusal(server):
    """The worker is still serving after draining a refused upload."""
    status, body, _ = server.post(multipart("still here", []), chunked=True)
    assert (status, body) == (200, b"ok 1")
