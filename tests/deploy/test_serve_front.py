"""`dropbox serve --front haproxy`: HAProxy runs as a supervised child before the apps, on the
public ports, with its configuration in the data directory, and stops with the rest; a front
that dies takes everything down with one line; and the options' mistakes are usage errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from dropbox.front import CONFIG_FILE
from tests.conftest import require_tool
from tests.support.cli import DROPBOX, assert_one_line_error, run_tool
from tests.support.ports import free_port, is_listening
from tests.support.server import DropboxServer, make_data_dir
from tests.support.team import Team

pytestmark = pytest.mark.slow

_SERVERS = re.compile(r"^    server node1 127\.0\.0\.1:(\d+) maxconn (\d+)$", re.MULTILINE)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def command_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def front_server(tmp_path: Path, *args: str) -> DropboxServer:
    require_tool("haproxy")
    data_dir = make_data_dir(tmp_path / "data", Team())
    return DropboxServer(data_dir, tmp_path, args=("--front", "haproxy", *args))


def test_the_front_runs_before_the_apps_and_stops_with_them(tmp_path: Path):
    server = front_server(tmp_path).start()
    try:
        assert server.process is not None
        config = (server.data_dir / CONFIG_FILE).read_text()
        assert f"bind 127.0.0.1:{server.port}" in config
        assert f"bind 127.0.0.1:{server.api_port}" in config
        # The source interface's pages and uploads each have a backend (and a share of its
        # threads) of their own, on the same port.
        (app_port, pages), (upload_port, uploads), (api_app_port, api_threads) = _SERVERS.findall(
            config
        )
        assert upload_port == app_port
        assert (pages, uploads, api_threads) == ("64", "1024", "16")
        assert {int(app_port), int(api_app_port)}.isdisjoint({server.port, server.api_port})
        assert f"before the apps on :{app_port} and :{api_app_port}" in server.output()
        kids = children(server.process.pid)
        assert len(kids) == 3
        assert sum("haproxy -db -f" in command_of(pid) for pid in kids) == 1
        # Through the front and straight to the app: the same page.
        through = requests.get(server.url + "/", timeout=30)
        assert through.status_code == 200
        assert "X-Forwarded-For" not in through.text
        assert requests.get(f"http://127.0.0.1:{app_port}/", timeout=30).status_code == 200
        assert requests.get(server.api_url + "/", timeout=30).status_code == 401
        # A client that trickles its request head gets 408 from the front, not a thread.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as trickler:
            trickler.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            answer = trickler.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 5 < time.monotonic() - started < 20
    finally:
        status = server.stop()
    assert status == 0, server.output()
    assert "stopped with status" not in server.output()
    for port in (server.port, server.api_port, int(app_port), int(api_app_port)):
        assert not is_listening(port), port
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)


def test_a_front_that_dies_stops_everything_with_one_line(tmp_path: Path):
    server = front_server(tmp_path).start()
    try:
        assert server.process is not None
        (front,) = [p for p in children(server.process.pid) if "haproxy -db" in command_of(p)]
        os.kill(front, signal.SIGKILL)
        status = server.process.wait(timeout=60)
    finally:
        server.stop()
    assert status == 1
    assert "dropbox: error: the front stopped with status -9: everything was stopped" in (
        server.output()
    )
    assert "Traceback" not in server.output()


def test_a_taken_public_port_fails_clearly(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = front_server(tmp_path)
        server.port = taken.getsockname()[1]
        server.start(wait=False)
        assert server.process is not None
        status = server.process.wait(timeout=60)
    assert status == 1
    assert "the front stopped with status 1" in server.output()


def test_a_taken_app_port_fails_clearly(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = front_server(tmp_path, "--app-port", str(port))
        server.start(wait=False)
        assert server.process is not None
        status = server.process.wait(timeout=60)
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port} for the source interface" in server.output()


def test_without_tor_there_is_no_front_unless_asked(tmp_path: Path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    server = DropboxServer(data_dir, tmp_path).start()
    try:
        assert server.process is not None
        assert not any("haproxy -db" in command_of(p) for p in children(server.process.pid))
    finally:
        server.stop()
    assert not (data_dir / CONFIG_FILE).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--front", "none", "--app-port", "9"], "--app-port goes with the front"),
        (["--front", "haproxy", "--app-port", "70000"], "--app-port must be from 0"),
        (["--front", "haproxy", "--api-app-port", "PORT"], "--api-app-port must differ"),
        (["--front", "haproxy", "--app-port", "9", "--api-app-port", "9"], "must differ"),
    ],
)
def test_front_options_are_checked(tmp_path: Path, args: list[str], message: str):
    data_dir = make_data_dir(tmp_path / "data", Team())
    port = str(free_port())
    args = [port if a == "PORT" else a for a in args]
    done = run_tool(DROPBOX, "serve", "--data-dir", str(data_dir), "--port", port,
                    "--api-port", str(free_port()), *args)  # fmt: skip
    assert_one_line_error(done, 2, message)
