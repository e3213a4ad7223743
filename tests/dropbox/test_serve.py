"""`dropbox serve`: the source interface under a real gunicorn, in a subprocess."""

from __future__ import annotations

import http.client
import logging
import os
import queue
import runpy
import signal
import socket
import sys

import pytest
from alembic import command

from crypto import Algorithm, fingerprint
from dropbox import db, gunicorn_settings, serve
from dropbox.app import create_app
from dropbox.errors import DropboxError
from dropbox.web.security import SECURITY_HEADERS
from tests.support.cli import DROPBOX, REPO_ROOT, assert_one_line_error, run_tool
from tests.support.database import server_url, settings_for
from tests.support.ports import is_listening
from tests.support.server import DropboxServer, make_data_dir
from tests.support.team import Team

SECRET_PATHS = ("/a-path-that-must-not-be-logged", "/leaky-invalid-request-path")


def get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def team():
    return Team()


@pytest.mark.timeout(120)
def test_serve_answers_over_http_and_stops_cleanly_on_sigterm(team, tmp_path):
    data_dir = make_data_dir(tmp_path / "data", team)
    server = DropboxServer(data_dir, tmp_path)
    port = server.port
    try:
        server.start()
        assert server.process is not None
        status, headers, body = get(port, "/")
        assert status == 200
        assert fingerprint(Algorithm.ED25519, team.root.public.key) in body
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name) == value, name
        status, _, body = get(port, SECRET_PATHS[0])
        assert status == 404
        assert "Traceback" not in body
        # A request gunicorn itself refuses is reported without its request line.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(
                f"GET {SECRET_PATHS[1]} HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n".encode()
            )
            assert raw.recv(1024).startswith(b"HTTP/1.1 400")
        # Only 127.0.0.1 listens.
        assert not is_listening(port, "::1")

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
    finally:
        server.kill()
    output = server.output()
    for path in SECRET_PATHS:
        assert path not in output
    assert "GET /" not in output
    # gunicorn's warning is dropped: a line would date the request (tests/seizure).
    assert "Invalid request" not in output
    assert "127.0.0.1" not in output.replace(f"127.0.0.1:{port}", "")
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0", "::", "192.168.1.10", "localhost", "[::1]"],  # noqa: S104 - refused
)
def test_serve_refuses_any_address_but_the_loopback(team, tmp_path, address):
    data_dir = make_data_dir(tmp_path / "data", team, keyring_serial=None)
    done = run_tool(DROPBOX, "serve", "--data-dir", data_dir, "--bind", address)
    assert_one_line_error(done, 2, "127.0.0.1 only")


def test_serve_refuses_a_wrong_number_of_workers(team, tmp_path):
    data_dir = make_data_dir(tmp_path / "data", team, keyring_serial=None)
    done = run_tool(DROPBOX, "serve", "--data-dir", data_dir, "--workers", "0")
    assert_one_line_error(done, 2, "workers must be from 1 to")


def test_a_worker_refuses_an_old_schema_until_dropbox_migrate_runs(team, tmp_path):
    data_dir = make_data_dir(tmp_path / "data", team, keyring_serial=None)
    engine = db.make_engine(server_url(data_dir))
    try:
        with engine.begin() as connection:
            command.downgrade(db.alembic_config(connection), "0004")
        # A worker does not migrate: it refuses to start on an old schema, and says why.
        with pytest.raises(DropboxError, match="dropbox migrate"):
            create_app(settings_for(data_dir))
        done = run_tool(DROPBOX, "migrate", "--data-dir", data_dir)
        assert done.returncode == 0, done.stderr
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()
    create_app(settings_for(data_dir))


def test_serve_needs_an_initialized_data_directory(tmp_path):
    done = run_tool(DROPBOX, "serve", "--data-dir", tmp_path / "nothing", "--port", "1")
    assert_one_line_error(done, 1, "dropbox init")


def test_the_gunicorn_options_are_what_the_design_asks():
    options = gunicorn_settings.gunicorn_options(8123)
    assert options["bind"] == ["127.0.0.1:8123"]
    # One worker process per core: they share their state through the database.
    assert options["workers"] == len(os.sched_getaffinity(0))
    assert gunicorn_settings.gunicorn_options(8123, workers=4)["workers"] == 4
    assert gunicorn_settings.api_gunicorn_options(8124, workers=3)["workers"] == 3
    for wrong in (0, -1, gunicorn_settings.MAX_WORKERS + 1):
        with pytest.raises(DropboxError, match="workers"):
            gunicorn_settings.gunicorn_options(8123, workers=wrong)
    assert options["worker_class"] == "gthread"
    assert options["threads"] >= 16
    assert options["timeout"] >= 60
    assert options["accesslog"] is None
    assert options["control_socket_disable"] is True
    assert options["forwarded_allow_ips"] == ""


def test_the_systemd_config_file_has_the_same_settings():
    config = runpy.run_path(str(REPO_ROOT / "deploy" / "gunicorn.conf.py"))
    # Behind the front (deploy/haproxy.cfg): the app port, not the public one.
    options = gunicorn_settings.gunicorn_options(serve.DEFAULT_APP_PORT)
    for name, value in options.items():
        assert config[name] == value, name
    assert config["wsgi_app"] == "dropbox.serve:app_from_environment()"


def test_the_error_log_never_names_a_request():
    scrub = gunicorn_settings._ScrubRequests()
    try:
        raise ValueError("GET /secret HTTP/1.1")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "gunicorn.error", logging.ERROR, __file__, 1, "Error handling request %s %s",
        ("GET", "/secret"), exc_info,
    )  # fmt: skip
    assert scrub.filter(record)
    assert record.getMessage() == "Error handling a request (ValueError)"
    assert record.exc_info is None
    record = logging.LogRecord(
        "gunicorn.error", logging.WARNING, __file__, 1, "Invalid request from ip=10.0.0.1: /x",
        (), None,
    )  # fmt: skip
    assert not scrub.filter(record)
    other = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting", (), None)
    assert scrub.filter(other)
    assert other.getMessage() == "Booting"


class _Booting:
    """What the boot hooks see of a gunicorn worker and its arbiter."""

    def __init__(self) -> None:
        self.alive = True
        self.SIG_QUEUE: queue.SimpleQueue[int] = queue.SimpleQueue()


@pytest.mark.parametrize("when", ["before the hook", "after the hook", "never"])
def test_a_worker_told_to_stop_while_booting_stops_once_booted(when):
    """A stop signal between a worker's fork and gunicorn's own handlers used to be queued in
    the worker's copy of the arbiter's queue and lost: the worker served on for the 30 s
    graceful timeout (dropbox serve stopped right after starting, on a loaded machine)."""
    options = gunicorn_settings.gunicorn_options(8123)
    fork_hook, init_hook = options["post_fork"], options["post_worker_init"]
    arbiter, worker = _Booting(), _Booting()
    if when == "before the hook":
        arbiter.SIG_QUEUE.put_nowait(signal.SIGTERM)  # what the inherited handler did
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)}
    try:
        fork_hook(arbiter, worker)
        if when == "after the hook":
            os.kill(os.getpid(), signal.SIGTERM)
        init_hook(worker)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert worker.alive is (when == "never")
