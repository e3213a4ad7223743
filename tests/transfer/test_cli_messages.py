"""What ``dropbox-transfer`` says: one line per failure that says what to do, and a push's
result in words (``--json`` for scripts).

The network failures are real: a closed port, a SOCKS proxy that is not there or cannot reach
the server, a server that accepts and never answers. The push runs twice against the real
server under gunicorn (tests/support/server.py).
"""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from crypto import dump_private_key, dump_public_key
from crypto.bundle import write_outbound_bundle
from tests.support.cli import BIN, assert_one_line_error, run_tool
from tests.support.server import DropboxServer, init_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team
from tests.support.transfer import pull, read_bundle, server_public_key
from tests.transfer.fake_sync import Socks5Proxy
from transfer.cli import main
from transfer.client import SyncClient
from transfer.network import RETRY_HINT, cannot_reach

TRANSFER = BIN / "dropbox-transfer"
LIBRARY_WORDS = ("HTTPConnectionPool", "Max retries", "NewConnectionError", "urllib3", "object at")


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def key_file(team: Team, tmp_path: Path) -> Path:
    path = tmp_path / "transfer.key"
    path.write_bytes(dump_private_key(team.transfer, None))
    path.chmod(0o600)
    return path


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def assert_network_line(err: str, *words: str) -> None:
    assert err.startswith("dropbox-transfer: error: cannot reach the server "), err
    assert err.rstrip("\n").endswith(RETRY_HINT), err
    for word in words:
        assert word in err, (word, err)
    for word in LIBRARY_WORDS:
        assert word not in err, (word, err)


# == network failures =======================================================================


def test_a_pull_against_a_closed_port_says_refused_and_what_to_do(
    key_file: Path, tmp_path: Path
) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    done = run_tool(TRANSFER, "pull", "--to", tmp_path, "--server", server, "--key", key_file)
    assert_one_line_error(done, 1, server, "connection refused")
    assert_network_line(done.stderr)
    print(done.stderr, end="")


def test_a_push_against_a_closed_port_says_the_same(key_file: Path, tmp_path: Path) -> None:
    outbound = _outbound(tmp_path, Team(), acknowledged=["1"])
    server = f"http://127.0.0.1:{closed_port()}"
    done = run_tool(TRANSFER, "push", outbound, "--server", server, "--key", key_file)
    assert_one_line_error(done, 1, server, "connection refused")
    assert_network_line(done.stderr)


def test_a_socks_proxy_that_is_not_there(key_file: Path, tmp_path: Path) -> None:
    proxy = f"127.0.0.1:{closed_port()}"
    server = "http://sync.postern.invalid"
    done = run_tool(TRANSFER, "pull", "--to", tmp_path, "--server", server, "--key", key_file,
                    "--socks", proxy)  # fmt: skip
    assert_one_line_error(done, 1, server, f"through the SOCKS proxy {proxy}")
    assert_network_line(done.stderr, "the SOCKS proxy does not answer (is tor running")


def test_a_server_the_socks_proxy_cannot_reach(key_file: Path, tmp_path: Path) -> None:
    proxy = Socks5Proxy({})  # knows no name: answers "host unreachable", as tor does
    try:
        server = "http://nowhere.postern.invalid"
        done = run_tool(TRANSFER, "pull", "--to", tmp_path, "--server", server, "--key",
                        key_file, "--socks", f"127.0.0.1:{proxy.port}")  # fmt: skip
    finally:
        proxy.close()
    assert_one_line_error(done, 1, server)
    assert_network_line(done.stderr, "the server is unreachable through the SOCKS proxy")


def test_a_name_that_does_not_resolve(key_file: Path, tmp_path: Path) -> None:
    server = "http://sync.postern.invalid"
    done = run_tool(TRANSFER, "pull", "--to", tmp_path, "--server", server, "--key", key_file)
    assert_one_line_error(done, 1, server)
    assert_network_line(done.stderr, "the host name does not resolve")


def test_a_server_that_never_answers_timed_out(team: Team) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        server = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = SyncClient(server, team.transfer, timeout=(2.0, 0.5))
        try:
            with pytest.raises(requests.RequestException) as failure:
                client.status()
        finally:
            client.close()
    line = cannot_reach(server, None, failure.value)
    assert line == f"cannot reach the server {server}: timed out; {RETRY_HINT}"


# == push, twice, against the real server ===================================================


def _outbound(
    tmp_path: Path, team: Team, *, acknowledged: list[str], name: str = "outbound.bundle"
) -> Path:
    path = tmp_path / name
    with path.open("wb") as handle:
        write_outbound_bundle(
            handle,
            signing_key=team.signer,
            made=date(2026, 11, 25),
            replies=[],
            deletions=[],
            acknowledged=acknowledged,
        )
    return path


@pytest.fixture
def server(team: Team, tmp_path: Path) -> Iterator[DropboxServer]:
    root_pub = tmp_path / "root.pub"
    root_pub.write_bytes(dump_public_key(team.root.public))
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(team.keyring())
    with running_server(init_data_dir(tmp_path / "data", root_pub, keyring), tmp_path) as running:
        yield running


@pytest.mark.timeout(240)
def test_a_push_says_what_it_applied_and_a_second_push_that_nothing_changed(
    server: DropboxServer, team: Team, key_file: Path, tmp_path: Path
) -> None:
    Source(server).plain_form("two things", "notes.txt", b"evidence")
    [bundle] = pull(server, key_file, tmp_path / "usb")
    items, _ = read_bundle(bundle, server_public_key(server))
    assert len(items) == 2
    outbound = _outbound(tmp_path, Team(), acknowledged=[])  # a stranger's bundle: refused
    done = run_tool(TRANSFER, "push", outbound, "--server", server.api_url, "--key", key_file)
    assert_one_line_error(done, 1, "the server refused the bundle")

    outbound = _outbound(tmp_path, team, acknowledged=[i.id for i in items])
    args = ("push", outbound, "--server", server.api_url, "--key", key_file)
    first = run_tool(TRANSFER, *args)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == (
        f"{outbound}: applied: 0 replies delivered, 0 deletions, 2 acknowledgements, "
        "2 items purged.\n"
    )
    second = run_tool(TRANSFER, *args)
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout == (
        f"{outbound}: this bundle was already applied (the server keeps no date of it); "
        "nothing changed.\n"
    )
    scripted = run_tool(TRANSFER, *args, "--json")
    assert (scripted.returncode, scripted.stderr) == (0, "")
    assert json.loads(scripted.stdout) == {
        "applied": False,
        "replies": 0,
        "deletions": 0,
        "acknowledged": 2,
        "purged": 0,
    }
    print(first.stdout + second.stdout + scripted.stdout, end="")


# == files ==================================================================================


@pytest.mark.parametrize(
    ("error", "todo"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/media/usb/bundle.part"),
         "free some space there (or choose another place) and run the same command again"),
        (OSError(errno.EIO, "Input/output error", "/media/usb/bundle.part"),
         "fix that and run the same command again"),
    ],
)  # fmt: skip
def test_a_file_failure_says_which_file_and_what_to_do(
    error: OSError,
    todo: str,
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail(_self: object) -> None:
        raise error

    monkeypatch.setattr("transfer.cli.Puller.run", fail)
    status = main(["pull", "--to", str(tmp_path), "--server", "http://127.0.0.1:9",
                   "--key", str(key_file)])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert err == f"dropbox-transfer: error: {error.strerror}: {error.filename}; {todo}\n"
