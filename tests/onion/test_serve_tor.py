"""`dropbox serve` and `dropbox onions` with tor, through the real command line: the onion
addresses and the team root fingerprint are printed, a clean stop removes the services from
tor, and tor's failures come out as one clear line with the servers stopped.

The tor here has DisableNetwork set, so nothing is published beyond it: --publish-timeout 0
(do not wait for the descriptor) where the test needs the server to keep running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from crypto import Algorithm, fingerprint
from dropbox.instance import install_keyring
from dropbox.onion import Tor
from tests.conftest import require_tool
from tests.onion.oniontools import offline_tor
from tests.support.cli import DROPBOX
from tests.support.ports import free_port, wait_for_port
from tests.support.server import make_data_dir
from tests.support.team import Team

_SOURCE = re.compile(r"^source onion: +http://([a-z2-7]{56})\.onion$", re.MULTILINE)
_API = re.compile(r"^API onion: +http://([a-z2-7]{56})\.onion \(client authorization: 1 ", re.M)


@pytest.fixture
def tor(tmp_path: Path):
    require_tool("tor")
    running = offline_tor(tmp_path / "tor")
    try:
        yield running
    finally:
        running.close()


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(DROPBOX), *args], stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip


def wait_for(log: Path, pattern: re.Pattern[str], process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while True:
        text = log.read_text()
        match = pattern.search(text)
        if match:
            return match.group(1)
        assert process.poll() is None, text
        assert time.monotonic() < deadline, text
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> int:
    os.killpg(process.pid, signal.SIGTERM)
    return process.wait(timeout=60)


@pytest.mark.tor
def test_serve_publishes_both_onions_and_removes_them_on_stop(tor: Tor, tmp_path: Path):
    team = Team()
    data_dir = make_data_dir(tmp_path / "data", team)
    assert tor.address is not None
    log = tmp_path / "serve.log"
    port, api_port = free_port(), free_port()
    process = start(
        ["serve", "--data-dir", str(data_dir), "--port", str(port),
         "--api-port", str(api_port), "--tor-control", str(tor.address),
         "--publish-timeout", "0"],
        log,
    )  # fmt: skip
    try:
        source = wait_for(log, _SOURCE, process)
        api = wait_for(log, _API, process)
        wait_for_port(port, process)
        wait_for_port(api_port, process)
        # onions/current lists only this connection's services: dropbox serve's are not here.
        assert tor.current_onions() == []
        text = log.read_text()
        assert f"team root fingerprint: {fingerprint(Algorithm.ED25519, team.root.public.key)}" in (
            text
        )
        # Published through tor, the server runs its front (--front auto): the onions' target
        # ports are HAProxy's.
        assert f"front:         HAProxy on 127.0.0.1:{port} and :{api_port} before" in text
        # The services exist in tor: the same keys are refused by a second connection.
        with pytest.raises(Exception, match="refused to publish"):
            tor.publish("source", data_dir / "onion" / "source.key", 9, wait=None)
    finally:
        status = stop(process)
    assert status == 0, log.read_text()
    assert "removing the onion services from tor" in log.read_text()
    again = tor.publish("source", data_dir / "onion" / "source.key", 9, wait=None)
    assert again.service_id == source
    api_again = tor.publish(
        "API", data_dir / "onion" / "api.key", 9, clients=[b"k" * 32], wait=None
    )
    assert api_again.service_id == api


@pytest.mark.tor
def test_serve_reports_a_publication_timeout_and_stops(tor: Tor, tmp_path: Path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    assert tor.address is not None
    done = subprocess.run(
        [str(DROPBOX), "serve", "--data-dir", str(data_dir), "--port", str(free_port()),
         "--api-port", str(free_port()), "--tor-control", str(tor.address),
         "--publish-timeout", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert re.search(
        r"^dropbox: error: the source onion [a-z2-7]{56}\.onion was not published within 2 s "
        r"\(tor has DisableNetwork set\)",
        done.stderr,
        re.MULTILINE,
    ), done.stderr
    assert "Traceback" not in done.stderr


def test_serve_without_tor_says_so(tmp_path: Path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    log = tmp_path / "serve.log"
    port, api_port = free_port(), free_port()
    process = start(
        ["serve", "--data-dir", str(data_dir), "--port", str(port),
         "--api-port", str(api_port)],
        log,
    )  # fmt: skip
    try:
        wait_for(log, re.compile(r"^(Tor: none): nothing is published", re.M), process)
        wait_for_port(port, process)
        wait_for_port(api_port, process)
    finally:
        assert stop(process) == 0
    assert not (data_dir / "onion").exists()


def test_serve_with_an_absent_tor_fails_clearly(tmp_path: Path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    done = subprocess.run(
        [str(DROPBOX), "serve", "--data-dir", str(data_dir), "--port", str(free_port()),
         "--api-port", str(free_port()), "--tor-control", str(tmp_path / "no-tor-here")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "dropbox: error: cannot reach tor's control socket" in done.stderr
    assert "is tor running" in done.stderr


@pytest.mark.tor
def test_onions_command_publishes_until_stopped(tor: Tor, tmp_path: Path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    assert tor.address is not None
    log = tmp_path / "onions.log"
    process = start(
        ["onions", "--data-dir", str(data_dir), "--tor-control", str(tor.address),
         "--publish-timeout", "0"],
        log,
    )  # fmt: skip
    try:
        source = wait_for(log, _SOURCE, process)
        wait_for(log, _API, process)
    finally:
        assert stop(process) == 0, log.read_text()
    assert tor.publish("source", data_dir / "onion" / "source.key", 9, wait=None).service_id == (
        source
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tor", "launch", "--tor-control", "/run/tor/control"], "goes with --tor system"),
        (["--tor-control", "192.0.2.1:9051"], "must be on the loopback"),
        (["--publish-timeout", "-1"], "--publish-timeout must be from 0 to 3600"),
    ],
)
def test_bad_tor_options_are_usage_errors(tmp_path: Path, args: list[str], message: str):
    data_dir = make_data_dir(tmp_path / "data", Team())
    done = subprocess.run(
        [str(DROPBOX), "serve", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.tor
def test_onions_command_ends_with_an_error_when_tor_goes_away(tor: Tor, tmp_path: Path):
    """So that systemd (Restart=on-failure) publishes again once tor is back."""
    data_dir = make_data_dir(tmp_path / "data", Team())
    assert tor.address is not None
    assert tor.process is not None
    log = tmp_path / "onions.log"
    process = start(
        ["onions", "--data-dir", str(data_dir), "--tor-control", str(tor.address),
         "--publish-timeout", "0"],
        log,
    )  # fmt: skip
    try:
        wait_for(log, _API, process)
        tor.process.kill()
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            stop(process)
    assert status == 1
    assert "dropbox: error: lost the connection to tor at" in log.read_text()


@pytest.mark.tor
def test_a_new_keyring_re_publishes_the_api_onion_while_serving(tor: Tor, tmp_path: Path):
    team = Team()
    data_dir = make_data_dir(tmp_path / "data", team, with_clients=False)
    assert tor.address is not None
    log = tmp_path / "onions.log"
    process = start(
        ["onions", "--data-dir", str(data_dir), "--tor-control", str(tor.address),
         "--publish-timeout", "0"],
        log,
    )  # fmt: skip
    try:
        wait_for(log, re.compile(r"^(API onion: +not published)", re.M), process)
        assert not (data_dir / "onion" / "api.key").exists()
        install_keyring(data_dir, team.keyring(2))
        api = wait_for(log, _API, process)  # within the watcher's 5-second period
        assert "API onion updated" in log.read_text()
    finally:
        assert stop(process) == 0, log.read_text()
    key = data_dir / "onion" / "api.key"
    assert tor.publish("API", key, 9, clients=[b"k" * 32], wait=None).service_id == api
