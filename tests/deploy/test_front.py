"""The front (HAProxy from Debian) before real gunicorn: slow clients, no disk, no logs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from bench.front import Tricklers
from crypto import dump_public_key
from dropbox.front import HAPROXY, Address, Front, FrontLimits, haproxy_config
from tests.conftest import require_tool
from tests.support.ports import free_port
from tests.support.server import DropboxServer, init_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team

pytestmark = pytest.mark.slow

#: Trickling clients held open at once (the issue's target: 1,000).
TRICKLERS = 1000
#: Seconds between two header lines of a trickling client.
TRICKLE_EVERY = 2.0


@contextlib.contextmanager
def front(
    server: DropboxServer, tmp_path: Path, limits: FrontLimits, *, trace: Path | None = None
) -> Iterator[int]:
    """HAProxy on a free port before ``server``'s source interface; yields the port."""
    require_tool("haproxy")
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        haproxy_config(
            [Front("source", Address("127.0.0.1", port))],
            [[Address("127.0.0.1", server.port)]],
            limits,
        )
    )
    argv = [HAPROXY, "-db", "-f", str(config)]
    if trace is not None:
        argv = [require_tool("strace"), "-f", "-qq", "-e", "trace=%file,%desc", "-o", str(trace)]
        argv += [HAPROXY, "-db", "-f", str(config)]
    log = tmp_path / "haproxy.out"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.05)
        yield port
    finally:
        # Under strace, stop haproxy itself: strace then ends with it.
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        pids = children.read_text().split() if trace is not None and children.exists() else []
        for pid in pids or [str(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
        process.wait(timeout=20)
    # Nothing about any connection is written: no log line at all.
    assert log.read_text().strip() == "", log.read_text()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DropboxServer]:
    team = Team()
    root_pub = tmp_path / "root.pub"
    root_pub.write_bytes(dump_public_key(team.root.public))
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(team.keyring())
    with running_server(init_data_dir(tmp_path / "data", root_pub, keyring), tmp_path) as running:
        yield running


def landing_times(port: int, count: int) -> list[float]:
    times = []
    with requests.Session() as http:
        for _ in range(count):
            started = time.monotonic()
            response = http.get(f"http://127.0.0.1:{port}/", timeout=30)
            times.append(time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(0.1)
    return times


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


def test_a_thousand_trickling_clients_leave_the_landing_page_fast(server, tmp_path):
    limits = FrontLimits(head_timeout=10)
    with front(server, tmp_path, limits) as port, Tricklers(port, TRICKLERS, TRICKLE_EVERY) as t:
        time.sleep(2)  # every trickler connected and holding its connection
        times = landing_times(port, 60)
        figure = p99(times)
        print(f"{TRICKLERS} trickling clients: landing page p99 {figure * 1000:.0f} ms")
        assert figure < 1.0, times
        # The head timeout ends them: each gets 408 and its connection is closed.
        deadline = time.monotonic() + limits.head_timeout + 10
        while t.closed_by_server < TRICKLERS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert t.closed_by_server == TRICKLERS
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in t.answers), t.answers[:3]


_WRITE_OPEN = re.compile(r"\bopen(?:at)?\(.*\"([^\"]+)\".*O_(?:WRONLY|RDWR|CREAT)")


def test_no_request_body_byte_reaches_the_fronts_disk(server, tmp_path):
    trace = tmp_path / "haproxy.trace"
    marker = b"PLAINTEXT-MARKER-" + b"q" * 200
    with front(server, tmp_path, FrontLimits(), trace=trace) as port:
        source = Source(SimpleNamespace(url=f"http://127.0.0.1:{port}"))  # type: ignore[arg-type]
        # About 1 MiB of plaintext through the front, read whole and sealed by the app.
        source.plain_form("a message " + marker.decode(), "evidence.txt", marker * 5000)
    text = trace.read_text()
    assert str(tmp_path / "haproxy.cfg") in text  # the trace saw haproxy read its configuration
    written = [m.group(1) for m in _WRITE_OPEN.finditer(text) if not m.group(1).startswith("/dev/")]
    assert written == [], written
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != trace:
            assert marker not in path.read_bytes(), path
