"""`dropbox serve` runs the sync API beside the source interface, under real gunicorn.

The transfer side is played with ``requests`` and request signatures made here from
docs/format.md section 9.1 (and once with the transfer client's own signer).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

from crypto.bundle import parse_signed_inbound_manifest
from dropbox.instance import load_instance
from tests.dropbox.sync.synctools import (
    make_sync_site,
    signature_headers,
    snapshot,
)
from tests.support.cli import DROPBOX
from tests.support.ports import free_port, is_listening
from tests.support.server import DropboxServer, make_data_dir
from tests.support.team import Team


class Transfer:
    """A minimal transfer client: signed requests over HTTP."""

    def __init__(self, port: int, team: Team) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.team = team
        self.session = requests.Session()
        self.session.trust_env = False

    def send(self, method: str, target: str, body: bytes = b"", **headers: str):
        signed = signature_headers(
            self.team.transfer, method, target, body, timestamp=int(time.time())
        )
        return self.session.request(
            method, self.base + target, data=body, headers={**signed, **headers}, timeout=30
        )


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_both_apps_serve_and_stop_together(tmp_path):
    team = Team()
    data_dir = make_data_dir(tmp_path / "data", team)
    # Content, made through the use cases before the server starts.
    site = make_sync_site(data_dir, team)
    alice = site.add_source()
    item_ids = site.add_submission(alice, [b"a message", b"a file" * 30_000])
    reply, _ = site.bundle(
        replies=[(alice.source_id, site.reply_envelope(alice, "thank you"))],
        acknowledged=[str(item_ids[0])],
    )
    site.services.engine.dispose()
    server_key = load_instance(data_dir).server_key.public.key

    server = DropboxServer(data_dir, tmp_path)
    port, api_port = server.port, server.api_port
    try:
        server.start()
        assert server.process is not None
        transfer = Transfer(api_port, team)

        # The source interface answers on its port, the sync API on its own.
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
        unsigned = requests.get(f"http://127.0.0.1:{api_port}/v1/status", timeout=30)
        assert unsigned.status_code == 401
        assert unsigned.json()["error"] == "bad_signature_headers"
        assert unsigned.headers["Cache-Control"] == "no-store"

        status = transfer.send("GET", "/v1/status").json()
        assert status["server_key"] == base64.b64encode(server_key).decode()
        assert status["pending_items"] == 2

        # Paginate, following the opaque cursor as sent.
        listed, target = [], "/v1/items?limit=1"
        while True:
            page = transfer.send("GET", target).json()
            listed += page["items"]
            if page["next"] is None:
                break
            target = f"/v1/items?after={page['next']}&limit=1"
        assert [item["id"] for item in listed] == [str(i) for i in item_ids]

        # The transfer client's own signer is understood too.
        from crypto.request_signing import sign_request

        target = "/v1/items?limit=2"
        headers = sign_request(team.transfer, "GET", target, b"", int(time.time()), os.urandom(16))
        response = requests.get(transfer.base + target, headers=headers, timeout=30)
        assert response.status_code == 200, response.text

        body = ('{"items": [' + ", ".join(f'"{i}"' for i in item_ids) + "]}").encode()
        block = transfer.send(
            "POST", "/v1/manifests", body, **{"Content-Type": "application/json"}
        ).content
        manifest = parse_signed_inbound_manifest(block, server_key)
        assert [item.id for item in manifest.items] == [str(i) for i in item_ids]

        big = manifest.items[1]
        whole = transfer.send("GET", f"/v1/items/{big.id}/envelope")
        assert whole.status_code == 200
        assert len(whole.content) == big.size
        rest = transfer.send("GET", f"/v1/items/{big.id}/envelope", Range="bytes=70000-")
        assert rest.status_code == 206
        assert rest.content == whole.content[70000:]

        # A push streamed from a file: applied once, then not again.
        path = tmp_path / "outbound.bundle"
        path.write_bytes(reply)
        pushed = transfer.send("POST", "/v1/outbound", path.read_bytes())
        assert pushed.json() == {
            "applied": True,
            "replies": 1,
            "deletions": 0,
            "acknowledged": 1,
            "purged": 1,
        }
        before = snapshot(data_dir)
        with path.open("rb") as stream:
            signed = signature_headers(
                team.transfer, "POST", "/v1/outbound", reply, timestamp=int(time.time())
            )
            again = transfer.session.post(
                transfer.base + "/v1/outbound", data=stream, headers=signed, timeout=30
            )
        assert again.json()["applied"] is False
        assert snapshot(data_dir) == before
        assert transfer.send("GET", "/v1/status").json()["pending_items"] == 1

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
        assert not is_listening(port)
        assert not is_listening(api_port)
    finally:
        server.kill()
    output = server.output()
    assert "/v1/" not in output
    assert "Traceback" not in output
    assert "127.0.0.1" not in output.replace(f"127.0.0.1:{port}", "").replace(
        f"127.0.0.1:{api_port}", ""
    )


@pytest.mark.timeout(120)
def test_ctrl_c_stops_both(tmp_path):
    team = Team()
    data_dir = make_data_dir(tmp_path / "data", team)
    server = DropboxServer(data_dir, tmp_path)
    port, api_port = server.port, server.api_port
    try:
        server.start()
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        assert server.process.wait(timeout=60) == 0
        assert not is_listening(port)
        assert not is_listening(api_port)
    finally:
        server.kill()
    assert "Traceback" not in server.output()


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_a_busy_api_port_stops_everything_with_a_clear_error(tmp_path):
    team = Team()
    data_dir = make_data_dir(tmp_path / "data", team)
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        api_port = busy.getsockname()[1]
        server = DropboxServer(data_dir, tmp_path, port=port, api_port=api_port)
        try:
            server.start(wait=False)
            assert server.process is not None
            assert server.process.wait(timeout=90) == 1
        finally:
            server.kill()
    assert not is_listening(port)
    last = server.err_path.read_text("utf-8").strip().splitlines()[-1]
    assert last.startswith("dropbox: error: the sync API stopped with status")
    assert "Traceback" not in server.output()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-port", "0"], "--api-port must be from 1 to 65535"),
        (["--api-port", "70000"], "--api-port must be from 1 to 65535"),
        (["--port", "9000", "--api-port", "9000"], "must differ"),
    ],
)
def test_bad_api_ports_are_usage_errors(tmp_path, args, message):
    team = Team()
    data_dir = make_data_dir(tmp_path / "data", team)
    done = subprocess.run(
        [str(DROPBOX), "serve", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count("\n") == 1
