"""deploy/haproxy.cfg is `dropbox front-config`'s output, HAProxy (Debian 12's 2.6) accepts it,
and its ports agree with the units: the onions' targets are the front, the front's servers are
the gunicorn configs' binds."""

from __future__ import annotations

import re
import runpy
import subprocess

from dropbox import serve
from dropbox.front import HAPROXY
from tests.conftest import require_tool
from tests.support.cli import DROPBOX, REPO_ROOT, assert_one_line_error, run_tool

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
    assert servers == [
        (source["bind"][0], str(source["threads"])),
        (api["bind"][0], str(api["threads"])),
    ]
    # The onions point at the front, not at gunicorn.
    assert "--port 8080 --api-port 8081" in (UNITS / "postern-onion.service").read_text()
    assert "-f /etc/postern/haproxy.cfg" in (UNITS / "postern-front.service").read_text()


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
