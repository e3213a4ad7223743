"""dropbox/onion/ against a real tor with ``DisableNetwork 1``: publishing and removing
services, persistent keys and the same address across restarts, client authorization, the
proof-of-work defence, and the errors an operator sees."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path

import pytest

from dropbox import onion
from dropbox.instance import install_keyring
from dropbox.onion import (
    ControlAddress,
    OnionError,
    ServerOnions,
    Tor,
    TorAuthenticationError,
    TorRefused,
    TorUnreachable,
)
from dropbox.publishing import transfer_client_keys
from tests.conftest import require_tool
from tests.onion.oniontools import offline_tor
from tests.support.ports import free_port, wait_for_port
from tests.support.server import make_data_dir
from tests.support.team import Team

pytestmark = pytest.mark.tor  # tor must be installed for every test here; most start one


@pytest.fixture(autouse=True)
def _tor_installed() -> None:
    require_tool("tor")


@pytest.fixture
def tor(tmp_path: Path):
    running = offline_tor(tmp_path / "tor")
    try:
        yield running
    finally:
        running.close()


def test_publish_creates_a_private_key_and_remove_takes_the_service_away(tor, tmp_path):
    key_file = tmp_path / "data" / "onion" / "source.key"
    key_file.parent.parent.mkdir()
    service = tor.publish("source", key_file, 8080, wait=None)
    assert len(service.service_id) == 56
    assert service.address.endswith(".onion")
    assert service.clients == 0
    assert service.service_id in tor.current_onions()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert key_file.read_text().startswith("ED25519-V3:")
    tor.remove(service)
    assert service.service_id not in tor.current_onions()
    assert tor.services == {}


def test_the_same_key_gives_the_same_address_across_restarts(tmp_path):
    key_file = tmp_path / "onion" / "source.key"
    with offline_tor(tmp_path / "tor1") as first:
        address = first.publish("source", key_file, 8080, wait=None).service_id
    stored = key_file.read_bytes()
    with offline_tor(tmp_path / "tor2") as second:
        again = second.publish("source", key_file, 8080, wait=None)
        assert again.service_id == address
    assert key_file.read_bytes() == stored


def test_a_data_directory_too_deep_for_a_socket_gets_a_loopback_control_port(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    with offline_tor(deep / "tor") as tor:
        assert tor.address is not None
        assert tor.address.port is not None
        service = tor.publish("source", deep / "onion" / "source.key", 8080, wait=None)
        assert tor.current_onions() == [service.service_id]


def test_close_removes_what_it_added(tor, tmp_path):
    key_file = tmp_path / "onion" / "source.key"
    assert tor.address is not None
    first = Tor.connect(tor.address)  # a second connection to the same tor
    first.publish("source", key_file, 8080, wait=None)
    # While the first connection's service exists, tor refuses the same key again.
    with pytest.raises(TorRefused, match="refused to publish the source onion"):
        tor.publish("source", key_file, 8080, wait=None)
    first.close()
    service = tor.publish("source", key_file, 8080, wait=None)
    assert service.service_id in tor.current_onions()


def test_client_authorization_is_configured_for_every_client(tor, tmp_path, monkeypatch):
    sent: list[str] = []
    original = tor.controller.msg

    def recording(command: str):
        sent.append(command)
        return original(command)

    monkeypatch.setattr(tor.controller, "msg", recording)
    clients = [os.urandom(32), os.urandom(32)]
    service = tor.publish("API", tmp_path / "onion" / "api.key", 8081, clients=clients, wait=None)
    assert service.clients == 2
    assert service.service_id in tor.current_onions()
    (add,) = [c for c in sent if c.startswith("ADD_ONION")]
    words = add.split()
    assert "Flags=V3Auth,MaxStreamsCloseCircuit" in words
    expected = {base64.b32encode(c).decode().rstrip("=") for c in clients}
    assert {w.removeprefix("ClientAuthV3=") for w in words if w.startswith("ClientAuthV3=")} == (
        expected
    )
    assert "Port=80,127.0.0.1:8081" in words


def test_pow_defence_is_on_where_tor_supports_it(tor, tmp_path, monkeypatch):
    sent: list[str] = []
    original = tor.controller.msg

    def recording(command: str):
        sent.append(command)
        return original(command)

    monkeypatch.setattr(tor.controller, "msg", recording)
    service = tor.publish("source", tmp_path / "onion" / "source.key", 8080, wait=None)
    names = str(tor.controller.get_info("config/names"))
    supported = "HiddenServicePoWDefensesEnabled" in names
    assert service.pow is supported
    assert ("PoWDefensesEnabled=1" in sent[-1].split()) is supported
    # tor 0.4.9 (Debian 12's backports and this test machine) has it.
    assert tor.supports_pow() is supported


def test_every_service_closes_a_circuit_that_opens_too_many_streams(tor, tmp_path, monkeypatch):
    sent: list[str] = []
    original = tor.controller.msg

    def recording(command: str):
        sent.append(command)
        return original(command)

    monkeypatch.setattr(tor.controller, "msg", recording)
    source = tor.publish("source", tmp_path / "onion" / "source.key", 8080, wait=None)
    api = tor.publish("API", tmp_path / "onion" / "api.key", 8081, clients=[os.urandom(32)],
                      wait=None)  # fmt: skip
    assert {source.service_id, api.service_id} == set(tor.current_onions())
    assert source.max_streams == api.max_streams == onion.MAX_STREAMS == 20
    adds = [c.split() for c in sent if c.startswith("ADD_ONION")]
    assert len(adds) == 2
    # Both ADD_ONION commands carry the limit and the flag, and tor answered 250 OK to both.
    for words in adds:
        assert f"MaxStreams={onion.MAX_STREAMS}" in words
        (flags,) = [w for w in words if w.startswith("Flags=")]
        assert "MaxStreamsCloseCircuit" in flags.removeprefix("Flags=").split(",")
    # Tor checks both words (it is not ignoring them): out of range or misspelt, it refuses.
    for bad in ("MaxStreams=65536", "Flags=MaxStreamsCloseCircuits"):
        reply = original(f"ADD_ONION NEW:ED25519-V3 {bad} Port=80,127.0.0.1:9")
        assert not reply.is_ok(), (bad, str(reply))
    # And without a limit, neither word is sent.
    sent.clear()
    unlimited = tor.publish("other", tmp_path / "onion" / "other.key", 9, wait=None,
                            max_streams=0)  # fmt: skip
    assert unlimited.max_streams == 0
    assert not [w for w in sent[-1].split() if "MaxStreams" in w]
    with pytest.raises(OnionError, match="max_streams must be from 0 to 65535"):
        tor.publish("other", tmp_path / "onion" / "other.key", 9, wait=None, max_streams=70000)


def test_publication_timeout_names_the_reason(tor, tmp_path):
    with pytest.raises(onion.PublicationTimeout, match="DisableNetwork"):
        tor.publish("source", tmp_path / "onion" / "source.key", 8080, wait=1)
    # Not left half-published: the same key can be published again at once.
    assert tor.current_onions() == []
    assert tor.services == {}
    again = tor.publish("source", tmp_path / "onion" / "source.key", 8080, wait=None)
    assert tor.current_onions() == [again.service_id]


def test_a_key_file_others_can_read_is_refused(tor, tmp_path):
    key_file = tmp_path / "onion" / "source.key"
    tor.publish("source", key_file, 8080, wait=None)
    tor.close()
    key_file.chmod(0o644)
    with pytest.raises(OnionError, match=r"readable by other users .*chmod 600"):
        onion.read_key(key_file)


def test_a_file_that_is_not_a_key_is_refused_and_kept(tmp_path):
    key_file = tmp_path / "source.key"
    key_file.write_bytes(b"ED25519-V3:not-a-key\n")
    key_file.chmod(0o600)
    with pytest.raises(OnionError, match="is not an onion service key"):
        onion.read_key(key_file)
    assert key_file.read_bytes() == b"ED25519-V3:not-a-key\n"


def test_tor_absent(tmp_path):
    with pytest.raises(TorUnreachable, match=r"tor is not installed .*apt install tor"):
        Tor.launch(tmp_path / "tor", tor_cmd=str(tmp_path / "no-such-tor"))
    with pytest.raises(TorUnreachable, match="cannot reach tor's control socket"):
        Tor.connect(ControlAddress(path=tmp_path / "no-control"))


def test_tor_refusing_authentication(tmp_path):
    """A tor that wants a control password (no cookie): Postern says what to set."""
    tor_path = require_tool("tor")
    hashed = subprocess.run(
        [tor_path, "--quiet", "--hash-password", "not shared"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    data = tmp_path / "tor"
    data.mkdir(mode=0o700)
    port = free_port()
    process = subprocess.Popen(
        [tor_path, "--quiet", "--DataDirectory", str(data), "--DisableNetwork", "1",
         "--SocksPort", "0", "--ControlPort", f"127.0.0.1:{port}",
         "--HashedControlPassword", hashed],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, process, what="tor")
        with pytest.raises(TorAuthenticationError, match=r"asks for a control password.*"
                           r"CookieAuthentication 1"):  # fmt: skip
            Tor.connect(ControlAddress(port=port))
    finally:
        process.kill()
        process.wait(timeout=30)


def test_control_address_parsing():
    assert ControlAddress.parse("/run/tor/control").path == Path("/run/tor/control")
    assert ControlAddress.parse("9051").port == 9051
    assert ControlAddress.parse("127.0.0.1:9051").port == 9051
    with pytest.raises(OnionError, match="must be on the loopback"):
        ControlAddress.parse("192.0.2.1:9051")
    with pytest.raises(OnionError, match="neither a socket path"):
        ControlAddress.parse("tor")


def test_server_onions_follow_the_keyring(tor, tmp_path):
    team = Team()
    data_dir = make_data_dir(tmp_path / "data", team, with_clients=False)
    lines: list[str] = []
    onions = ServerOnions(
        tor, data_dir, 8080, 8081, clients_of=lambda: transfer_client_keys(data_dir),
        report=lines.append, publish_timeout=None,
    )  # fmt: skip
    onions.publish()
    assert onions.source is not None
    assert onions.api is None
    assert any("API onion:     not published" in line for line in lines)
    assert onions.refresh() is False
    install_keyring(data_dir, team.keyring(2))
    assert onions.refresh() is True
    assert onions.api is not None
    assert onions.api.clients == 1
    api_address = onions.api.service_id
    assert set(tor.current_onions()) == {onions.source.service_id, api_address}
    # A second transfer client: the API onion is published again, at the same address.
    other = Team()
    install_keyring(data_dir, team.keyring(3, clients=(team.client(), other.client())))
    assert onions.refresh() is True
    assert onions.api.clients == 2
    assert onions.api.service_id == api_address
    assert set(tor.current_onions()) == {onions.source.service_id, api_address}
    # No transfer client left: the API onion goes away rather than become public.
    install_keyring(data_dir, team.keyring(4, clients=()))
    assert onions.refresh() is True
    assert onions.api is None
    assert tor.current_onions() == [onions.source.service_id]
