"""The front hands a node the pages waiting in its queue before the writes queued earlier
(``Front.reads_first``): a burst of tus creations and completions never holds the landing
page (bench/scale.py). Real HAProxy before a one-thread backend that records what reaches it."""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dropbox.front import HAPROXY, Address, Front, haproxy_config
from dropbox.serve import source_front
from tests.conftest import require_tool
from tests.support.ports import free_port, wait_for_port


class Backend(ThreadingHTTPServer):
    """Records each request's method as it arrives; holds the first until ``release``."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Backend

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append(self.command)
        if len(self.server.seen) == 1:
            self.server.release.wait(30)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer  # noqa: N815 - the names http.server calls

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def request(port: int, method: str, results: list[int]) -> threading.Thread:
    def run() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(method, "/api/submissions" if method == "POST" else "/", body=b"")
            results.append(connection.getresponse().status)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.parametrize("reads_first", [True, False])
def test_a_page_queued_after_writes_reaches_the_node_first(backend, tmp_path: Path, reads_first):
    require_tool("haproxy")
    port = free_port()
    front = Front("source", Address("127.0.0.1", port), 1, reads_first=reads_first)
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config([front], [[Address("127.0.0.1", backend.server_port)]]))
    process = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, what="haproxy")
        results: list[int] = []
        threads = [request(port, "POST", results)]
        wait_until(lambda: backend.seen == ["POST"], "the first write did not reach the node")
        threads += [request(port, "POST", results) for _ in range(4)]
        time.sleep(0.5)  # the writes wait in the front's queue (one request at a time)
        threads.append(request(port, "GET", results))
        time.sleep(0.5)
        backend.release.set()
        for thread in threads:
            thread.join(30)
        assert results == [200] * 6
        expected = ["POST", "GET"] + ["POST"] * 4 if reads_first else ["POST"] * 5 + ["GET"]
        assert backend.seen == expected
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_source_front_serves_reads_first():
    assert source_front(8080).reads_first
