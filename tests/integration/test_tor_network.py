"""The server behind real onion services, on a private Tor network on 127.0.0.1.

tests/integration/tornet.py starts three directory authorities (keys from tor-gencert), four
relays and three client tors (the suite's shared network, the ``tor_network`` fixture):
``service`` (the server's tor, reached by ``dropbox serve --tor-control`` on its loopback
control port), ``transfer`` (the transfer machine's tor, with the API onion's
client-authorization key in its ClientOnionAuthDir) and ``stranger`` (any other Tor user).
Nothing leaves the loopback.

A source submits through the source onion; ``dropbox-transfer pull`` fetches the submission
through the client-authorized API onion over SOCKS and the bundle decrypts; without the key the
API onion cannot be reached; stopping the server removes its onions from tor.
"""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

import crypto
from crypto import dump_private_key
from crypto.bundle import open_bundle_file, read_inbound_bundle
from dropbox.onion import client_auth_private_line, read_key
from tests.integration.tornet import Node, TorNetwork, client
from tests.support.cli import REPO_ROOT
from tests.support.ports import free_port
from tests.support.server import make_data_dir
from tests.support.team import Team
from tests.support.transfer import MemorySink

pytestmark = pytest.mark.tor  # every test here starts a real tor

BIN = REPO_ROOT / ".venv" / "bin"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ONION_LINE = re.compile(r"^(source|API) onion: +http://([a-z2-7]{56})\.onion")
#: Bounds for the steps that cross the private network.
PUBLISH_TIMEOUT = 120
HTTP_TIMEOUT = 120


def proxies(node: Node) -> dict[str, str]:
    proxy = f"socks5h://127.0.0.1:{node.socks_port}"
    return {"http": proxy, "https": proxy}


@dataclass
class Served:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    reader: threading.Thread
    data_dir: Path
    team: Team
    source_id: str
    api_id: str
    output: list[str]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def _read_lines(stream: io.TextIOBase, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


@pytest.fixture(scope="module")
def served(tor_network: TorNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("served")
    team = Team()
    data_dir = make_data_dir(base / "data", team)
    service = client(tor_network, "service")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
    log = (base / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "dropbox"), "serve", "--data-dir", str(data_dir),
         "--port", str(free_port()), "--api-port", str(free_port()),
         "--tor-control", f"127.0.0.1:{service.control_port}",
         "--publish-timeout", str(PUBLISH_TIMEOUT)],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    output: list[str] = []
    found: dict[str, str] = {}
    deadline = time.monotonic() + 2 * PUBLISH_TIMEOUT + 30
    running = Served(process, lines, reader, data_dir, team, "", "", output)
    try:
        while len(found) < 2:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "\n".join(output) + (base / "serve.log").read_text()
                assert time.monotonic() < deadline, "\n".join(output)
                continue
            output.append(line)
            match = _ONION_LINE.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        running.source_id, running.api_id = found["source"], found["API"]
        yield running
    finally:
        running.stop()
        log.close()
        running.reader.join(timeout=30)
        process.stdout.close()


def test_serve_prints_the_onions_and_the_root_fingerprint(served: Served):
    fingerprint = crypto.fingerprint(crypto.Algorithm.ED25519, served.team.root.public.key)
    assert f"team root fingerprint: {fingerprint}" in served.output
    api_line = next(line for line in served.output if line.startswith("API onion:"))
    assert "client authorization: 1 transfer client" in api_line
    # The addresses come from the keys kept in the data directory.
    for name, service_id in (("source", served.source_id), ("api", served.api_id)):
        key = read_key(served.data_dir / "onion" / f"{name}.key")
        assert key is not None
        assert len(service_id) == 56


def test_submission_through_the_source_onion_then_pull_through_the_api_onion(
    served: Served, tor_network: TorNetwork, tmp_path: Path
):
    # A source, through any Tor client.
    browser = requests.Session()
    browser.proxies.update(proxies(client(tor_network, "stranger")))
    browser.trust_env = False
    base = f"http://{served.source_id}.onion"

    def page(path: str, form: dict[str, str] | None = None) -> str:
        if form is None:
            response = browser.get(base + path, timeout=HTTP_TIMEOUT)
        else:
            response = browser.post(base + path, data=form, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text[:300]
        return response.text

    def token(text: str) -> str:
        match = _CSRF.search(text)
        assert match is not None
        return match.group(1)

    generated = page("/generate", {"csrf_token": token(page("/generate"))})
    page("/acknowledge", {"csrf_token": token(generated)})
    secret_file = os.urandom(50_000)
    submitted = browser.post(
        base + "/submit",
        files=[
            ("csrf_token", (None, token(page("/submit")))),
            ("message", (None, "sent through the source onion")),
            ("files", ("minutes.pdf", secret_file, "application/pdf")),
        ],
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    assert submitted.status_code == 303, submitted.text[:300]

    # The transfer machine: its tor holds the API onion's client-authorization key.
    transfer = client(tor_network, "transfer")
    # As docs/operations.md tells the operator: `dropbox onion-auth`, then reload tor.
    onion_key = tmp_path / "onion-auth.key"
    onion_key.write_bytes(dump_private_key(served.team.onion_auth, None))
    onion_key.chmod(0o600)
    auth_dir = tor_network.base / "transfer-auth"
    configured = subprocess.run(
        [str(BIN / "dropbox"), "onion-auth", "--key", str(onion_key),
         "--onion", f"{served.api_id}.onion", "--to", str(auth_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert configured.returncode == 0, configured.stderr
    auth_file = auth_dir / "postern-api.auth_private"
    assert auth_file.read_text() == (
        client_auth_private_line(served.api_id, served.team.onion_auth.secret) + "\n"
    )
    assert transfer.process is not None
    transfer.process.send_signal(signal.SIGHUP)  # tor reads its configuration again
    key = tmp_path / "transfer.key"
    key.write_bytes(dump_private_key(served.team.transfer, None))
    key.chmod(0o600)
    usb = tmp_path / "usb"
    usb.mkdir()
    done = subprocess.run(
        [str(BIN / "dropbox-transfer"), "pull", "--server", f"http://{served.api_id}.onion",
         "--socks", f"127.0.0.1:{transfer.socks_port}", "--key", str(key), "--to", str(usb)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (bundle,) = sorted(usb.glob("*.bundle"))
    server_key = crypto.load_public_key((served.data_dir / "server.pub").read_bytes()).key
    envelopes: dict[str, bytes] = {}
    with open_bundle_file(bundle) as handle:
        manifest = read_inbound_bundle(handle, server_key, lambda item: MemorySink(envelopes, item))
    opened = sorted(
        crypto.open_bytes(envelopes[item.id], [served.team.journalist.secret])[1]
        for item in manifest.items
    )
    assert opened == sorted([b"sent through the source onion", secret_file])


def test_the_api_onion_cannot_be_reached_without_the_client_key(
    served: Served, tor_network: TorNetwork
):
    stranger = client(tor_network, "stranger")
    # The same Tor client reaches the source onion...
    landing = requests.get(
        f"http://{served.source_id}.onion/", proxies=proxies(stranger), timeout=HTTP_TIMEOUT
    )
    assert landing.status_code == 200
    # ...but not the API onion: its descriptor cannot be decrypted without the key.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(
            f"http://{served.api_id}.onion/", proxies=proxies(stranger), timeout=HTTP_TIMEOUT
        )


def test_stopping_the_server_removes_its_onions(served: Served, tor_network: TorNetwork):
    key = read_key(served.data_dir / "onion" / "source.key")
    assert key is not None
    service = client(tor_network, "service")
    # While the server runs, tor refuses a second service with the source onion's key.
    (busy,) = service.control(f"ADD_ONION {key} Port=80,127.0.0.1:9")
    assert busy.startswith("5"), busy
    served.stop()
    assert served.process.returncode == 0
    freed, removed = service.control(
        f"ADD_ONION {key} Flags=DiscardPK Port=80,127.0.0.1:9", f"DEL_ONION {served.source_id}"
    )
    assert freed.startswith(f"250-ServiceID={served.source_id}"), freed
    assert removed == "250 OK"
    served.reader.join(timeout=30)
    rest = []
    while not served.lines.empty():
        rest.append(served.lines.get())
    assert "removing the onion services from tor" in rest


def tor_processes_using(directory: Path) -> list[int]:
    """The pids of tor processes whose command line names ``directory`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"tor") and any(str(directory).encode() in a for a in argv):
            found.append(int(entry.name))
    return found


def test_serve_launches_a_private_tor_that_publishes_and_goes_away(
    tor_network: TorNetwork, tmp_path: Path
):
    """`dropbox serve --tor launch` (the demo's mode), its tor a client of the private network."""
    data_dir = make_data_dir(tmp_path / "data", Team())
    config = [arg for line in tor_network.client_options() for arg in ("--tor-config", line)]
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "dropbox"), "serve", "--data-dir", str(data_dir), "--port",
             str(free_port()), "--api-port", str(free_port()), "--tor", "launch", *config,
             "--publish-timeout", str(PUBLISH_TIMEOUT)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 2 * PUBLISH_TIMEOUT + 30
        while not all(f"\n{name} onion:" in log.read_text() for name in ("source", "API")):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        source_lines = [m for m in map(_ONION_LINE.match, log.read_text().splitlines()) if m]
        source_id = next(m.group(2) for m in source_lines if m.group(1) == "source")
        assert tor_processes_using(data_dir / "tor")
        page = requests.get(
            f"http://{source_id}.onion/",
            proxies=proxies(client(tor_network, "stranger")),
            timeout=HTTP_TIMEOUT,
        )
        assert page.status_code == 200
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        status = process.wait(timeout=90)
    assert status == 0, log.read_text()
    assert "removing the onion services from tor" in log.read_text()
    deadline = time.monotonic() + 30
    while tor_processes_using(data_dir / "tor"):
        assert time.monotonic() < deadline, "the launched tor outlived dropbox serve"
        time.sleep(0.2)
