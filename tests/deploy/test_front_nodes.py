"""The front before several app nodes: deploy/haproxy-nodes.cfg is `dropbox front-config
--node ...`'s output, HAProxy accepts it, and a real HAProxy before two real nodes checks
their health, serves from the one left when the other dies, and takes it back once it returns."""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dropbox import gunicorn_settings, serve
from dropbox.errors import DropboxError
from dropbox.front import HAPROXY, Address, Front, haproxy_config
from tests.conftest import require_tool
from tests.support.cli import DROPBOX, REPO_ROOT, assert_one_line_error, run_tool
from tests.support.ports import free_port, wait_for_port
from tests.support.server import DropboxServer, make_data_dir
from tests.support.team import Team

TEMPLATE = REPO_ROOT / "deploy" / "haproxy-nodes.cfg"
NODES = ("10.8.0.11", "10.8.0.12")


def test_the_nodes_template_is_the_functions_output_and_haproxy_accepts_it():
    done = run_tool(DROPBOX, "front-config", *(arg for host in NODES for arg in ("--node", host)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == TEMPLATE.read_text()
    assert done.stdout == serve.front_config(node_hosts=NODES)
    require_tool("haproxy")
    check = subprocess.run(
        [HAPROXY, "-c", "-q", "-f", str(TEMPLATE)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")


def test_every_node_serves_the_source_front_and_is_checked():
    text = TEMPLATE.read_text()
    source, api = text.split("\nbackend api_nodes")
    pages, uploads = source.split("\nbackend source_uploads")
    for number, host in enumerate(NODES, start=1):
        server = f"server node{number} {host}:8180 maxconn"
        assert f"{server} {gunicorn_settings.PAGE_THREADS} check inter 2s" in pages
        assert f"{server} {gunicorn_settings.UPLOAD_SLOTS} check inter 2s" in uploads
    assert "use_backend source_uploads if { method PATCH } { path_beg /api/uploads/ }" in pages
    assert "option httpchk" in source
    assert "option redispatch" in source
    assert "http-check send meth OPTIONS uri /api/uploads hdr Tus-Resumable 1.0.0" in source
    # The sync API goes to the first node alone unless asked otherwise.
    assert api.count("    server ") == 1
    assert f"{NODES[0]}:8181" in api
    everywhere = serve.front_config(node_hosts=NODES, api_to="all").split("\nbackend api_nodes")[1]
    assert [f"{host}:8181" in everywhere for host in NODES] == [True, True]
    assert "check inter 2s" in everywhere
    assert "httpchk" not in everywhere


def test_one_node_alone_is_the_one_machine_config():
    assert serve.front_config(node_hosts=["127.0.0.1"]) == serve.front_config()
    assert "check" not in serve.front_config()


@pytest.mark.parametrize(
    ("hosts", "api_to", "message"),
    [
        (["node1.example"], "one", "an app node is named by its IPv4 address"),
        (["10.0.0.1", "10.0.0.1"], "one", "each named once"),
        ([], "one", "one or more app nodes"),
        (["10.0.0.1"], "some", "the sync API goes to one or all"),
    ],
)
def test_bad_node_lists_are_refused(hosts, api_to, message):
    with pytest.raises(DropboxError, match=message):
        serve.front_config(node_hosts=hosts, api_to=api_to)


def test_the_command_refuses_a_node_name_in_one_line():
    done = run_tool(DROPBOX, "front-config", "--node", "node1.example")
    assert_one_line_error(done, 2, "an app node is named by its IPv4 address")


def test_a_front_needs_a_node_for_every_frontend():
    fronts = [Front("source", Address("127.0.0.1", 1)), Front("api", Address("127.0.0.1", 2))]
    with pytest.raises(ValueError, match="no app node serves the api front"):
        haproxy_config(fronts, [[Address("127.0.0.1", 3), None]])


@contextlib.contextmanager
def haproxy(config: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        wait_for_port(port, process, what="haproxy")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def landing_statuses(port: int, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        # A new connection each time: leastconn then spreads them over the nodes.
        statuses.append(requests.get(f"http://127.0.0.1:{port}/", timeout=30).status_code)
    return statuses


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_real_front_before_two_nodes_survives_losing_one(tmp_path):
    require_tool("haproxy")
    data_dir = make_data_dir(tmp_path / "data", Team())
    nodes = []
    for number in (1, 2):
        log_dir = tmp_path / f"node{number}"
        log_dir.mkdir()
        # One after the other: each migrates the shared database before it serves.
        nodes.append(DropboxServer(data_dir, log_dir).start())
    try:
        port = free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            haproxy_config(
                [
                    Front(
                        "source",
                        Address("127.0.0.1", port),
                        gunicorn_settings.THREADS,
                        http_check=True,
                    )
                ],
                [[Address("127.0.0.1", node.port)] for node in nodes],
            )
        )
        assert "check inter 2s" in config.read_text()
        with haproxy(config, port) as front:
            # Both pass their first health checks (else the front would answer 503).
            time.sleep(3)
            assert landing_statuses(port, 10) == [200] * 10
            nodes[0].kill()
            # At once: a connection refused by the dead node is sent to the other one.
            assert landing_statuses(port, 10) == [200] * 10
            # Within two failed checks, the front takes the dead node out of the rotation.
            time.sleep(5)
            assert landing_statuses(port, 10) == [200] * 10
            nodes[0].start()
            time.sleep(5)
            assert landing_statuses(port, 10) == [200] * 10
            nodes[1].kill()
            assert landing_statuses(port, 10) == [200] * 10
            front.terminate()
            out, _ = front.communicate(timeout=30)
        # HAProxy says so on its console (no log is configured): down, then up again.
        assert "source_nodes/node1 is DOWN" in out, out
        assert "source_nodes/node1 is UP" in out, out
        assert "node2 is DOWN" not in out.split("node1 is UP")[0], out
    finally:
        for node in nodes:
            node.stop()


NODE_UNITS = REPO_ROOT / "deploy" / "nodes"


def test_systemd_accepts_the_node_proxy_units(tmp_path):
    """deploy/nodes: the proxy that lets the front reach a node's loopback-only apps."""
    analyze = require_tool("systemd-analyze")
    for name in ("postern-node-proxy@.socket", "postern-node-proxy@.service"):
        (tmp_path / name).write_text((NODE_UNITS / name).read_text())
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "postern-node-proxy@8180.socket"),
         str(tmp_path / "postern-node-proxy@8180.service")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "postern-node-proxy" not in done.stderr, done.stderr
    service = (NODE_UNITS / "postern-node-proxy@.service").read_text()
    # More connections than a node has threads: systemd-socket-proxyd's default is 256.
    connections = int(re.search(r"--connections-max=(\d+)", service).group(1))  # type: ignore[union-attr]
    assert connections > gunicorn_settings.THREADS


def test_the_drop_ins_open_only_the_private_network():
    for unit in ("postern-source", "postern-api", "postern-front"):
        parser = configparser.ConfigParser(strict=True)
        parser.read_string((NODE_UNITS / f"{unit}.service.d" / "nodes.conf").read_text())
        assert parser.sections() == ["Service"]
        assert list(parser["Service"]) == ["ipaddressallow"]
        assert parser["Service"]["IPAddressAllow"].startswith("10.8.0.")
