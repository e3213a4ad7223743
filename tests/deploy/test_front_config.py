"""deploy/haproxy.cfg is `dropbox front-config`'s output, HAProxy (Debian 12's 2.6) accepts it,
and its ports agree with the units: the onions' targets are the front, the front's servers are
the gunicorn configs' binds."""

from __future__ import annotations

import os
import re
import resource
import runpy
import subprocess
import tempfile
from pathlib import Path

from dropbox import gunicorn_settings, serve
from dropbox.front import HAPROXY, FrontLimits, fit_to_file_limit
from tests.conftest import require_tool
from tests.support.cli import DROPBOX, REPO_ROOT, assert_one_line_error, run_tool
from tests.support.ports import free_port, wait_for_port

CONFIG = REPO_ROOT / "deploy" / "haproxy.cfg"
UNITS = REPO_ROOT / "deploy" / "systemd"


def test_the_deployed_config_is_the_functions_output():
    assert CONFIG.read_text() == serve.front_config()
    done = run_tool(DROPBOX, "front-config")
    assert done.returncode == 0, done.stderr
    assert done.stdout == CONFIG.read_text()


def test_haproxy_accepts_it():
    require_tool("haproxy")
    done = subprocess.run(
        [HAPROXY, "-c", "-f", str(CONFIG)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Configuration file is valid" in done.stdout
    # The same warning-free check the unit runs before it starts HAProxy.
    quiet = subprocess.run(
        [HAPROXY, "-c", "-q", "-f", str(CONFIG)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_the_ports_agree_with_the_units_and_the_gunicorn_configs():
    text = CONFIG.read_text()
    binds = re.findall(r"^    bind (\S+)$", text, re.MULTILINE)
    servers = re.findall(r"^    server \S+ (\S+) maxconn (\d+)", text, re.MULTILINE)
    assert binds == ["127.0.0.1:8080", "127.0.0.1:8081"]
    source = runpy.run_path(str(REPO_ROOT / "deploy" / "gunicorn.conf.py"))
    api = runpy.run_path(str(REPO_ROOT / "deploy" / "gunicorn-api.conf.py"))
    # The source interface's threads are shared out between pages and uploads, each kind in
    # a backend of its own; the sync API's all go to its one backend.
    assert servers == [
        (source["bind"][0], str(gunicorn_settings.PAGE_THREADS)),
        (source["bind"][0], str(gunicorn_settings.UPLOAD_SLOTS)),
        (api["bind"][0], str(api["threads"])),
    ]
    assert source["threads"] == gunicorn_settings.PAGE_THREADS + gunicorn_settings.UPLOAD_SLOTS
    assert source["worker_connections"] > source["threads"]
    # The onions point at the front, not at gunicorn.
    assert "--port 8080 --api-port 8081" in (UNITS / "postern-onion.service").read_text()
    assert "-f /etc/postern-front/haproxy.cfg" in (UNITS / "postern-front.service").read_text()


def test_it_logs_nothing_buffers_no_body_and_names_no_client():
    words = CONFIG.read_text().split()
    for word in ("log", "stats", "http-buffer-request", "forwardfor", "X-Forwarded-For",
                 "cache", "spoe", "lua-load"):  # fmt: skip
        assert word not in words, word


def test_front_config_takes_other_ports_and_refuses_clashing_ones():
    done = run_tool(DROPBOX, "front-config", "--port", "9080", "--app-port", "9180")
    assert done.returncode == 0, done.stderr
    assert "bind 127.0.0.1:9080" in done.stdout
    assert "server node1 127.0.0.1:9180 maxconn" in done.stdout
    clash = run_tool(DROPBOX, "front-config", "--app-port", "8080")
    assert_one_line_error(clash, 2, "the front needs four different TCP ports")


def test_the_front_holds_no_more_connections_than_the_file_limit_allows():
    limits = FrontLimits()
    assert fit_to_file_limit(limits, 1_048_576) == limits
    assert fit_to_file_limit(limits, resource.RLIM_INFINITY) == limits
    fitted = fit_to_file_limit(limits, 4096)
    assert fitted.max_connections == (4096 - 100) // 2
    assert fitted.head_timeout == limits.head_timeout


def test_haproxy_starts_under_a_low_file_limit_with_the_fitted_config():
    """Unfitted, HAProxy run by a user whose hard file limit is 4096 refuses to start."""
    require_tool("haproxy")
    hard = 4096

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        os.setgid(65534)
        os.setuid(65534)

    def start(directory: Path, limits: FrontLimits) -> tuple[int, subprocess.Popen[str]]:
        port = free_port()
        config = directory / f"{port}.cfg"
        config.write_text(
            serve.front_config(
                port=port,
                api_port=free_port(),
                app_port=free_port(),
                api_app_port=free_port(),
                limits=limits,
            )
        )
        config.chmod(0o644)
        process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, preexec_fn=low_limit,
            # Not the checkout: "nobody" may not enter a clone made under `mktemp -d`.
            cwd=directory,
        )  # fmt: skip
        return port, process

    # pytest's own temporary directories are private to root: this one "nobody" may read.
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        directory.chmod(0o755)
        _port, unfitted = start(directory, FrontLimits())
        out, _ = unfitted.communicate(timeout=60)
        # It refuses to start. HAProxy says why in words that vary with the moment it finds
        # out (at start-up: "Cannot raise FD limit"; while checking the configuration: a
        # fatal configuration error), so only its refusal is the contract.
        assert unfitted.returncode == 1, out
        assert "[ALERT]" in out, out
        port, fitted = start(directory, fit_to_file_limit(FrontLimits(), hard))
        try:
            wait_for_port(port, fitted, what="haproxy")
        finally:
            fitted.terminate()
            fitted.communicate(timeout=60)
