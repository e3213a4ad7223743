"""The transfer loop end to end, through real gunicorn and the real command-line tools.

A source submits through both paths (the plain form, and the script path's protocol: an
envelope sealed on the client, uploaded with tus, completed with POST /api/submissions);
`dropbox-transfer pull` writes an inbound bundle; the station's side verifies it and decrypts
every envelope with the crypto core; a reply goes back in a signed outbound bundle with
`dropbox-transfer push`; the source logs in again and reads it. Pushing the same bundle twice
changes nothing the second time. A second test kills the server in the middle of a pull.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

import crypto
from crypto import (
    Kind,
    dump_private_key,
    dump_public_key,
    seal_bytes,
)
from crypto.bundle import (
    write_outbound_bundle,
)
from tests.support.cli import BIN
from tests.support.server import DropboxServer, init_data_dir, kept_files, running_server
from tests.support.source import Source
from tests.support.team import Team
from tests.support.transfer import (
    partial_bundle_size,
    pull,
    read_bundle,
    run,
    server_public_key,
)


@pytest.fixture
def team() -> Team:
    return Team()


@pytest.fixture
def server(team: Team, tmp_path: Path) -> Iterator[DropboxServer]:
    """`dropbox init` and `dropbox keyring install` (the real commands), then `dropbox serve`."""
    root_pub = tmp_path / "root.pub"
    root_pub.write_bytes(dump_public_key(team.root.public))
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(team.keyring())
    with running_server(init_data_dir(tmp_path / "data", root_pub, keyring), tmp_path) as running:
        yield running


@pytest.fixture
def transfer_key(team: Team, tmp_path: Path) -> Path:
    path = tmp_path / "transfer.key"
    path.write_bytes(dump_private_key(team.transfer, None))
    path.chmod(0o600)
    return path


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_submit_pull_decrypt_reply_push_read(
    server: DropboxServer, team: Team, transfer_key, tmp_path
):
    recipients = [team.journalist.public.key]
    form_source = Source(server)
    form_file = os.urandom(300_000)
    form_source.plain_form("sent without scripts", "ledger.xlsx", form_file)
    script_source = Source(server)
    script_file = os.urandom(150_000)
    script_source.script_path(
        [
            ("message", seal_bytes(b"sealed in the browser", recipients, Kind.MESSAGE)),
            ("file", seal_bytes(script_file, recipients, Kind.FILE, "photo.jpg", "image/jpeg")),
        ]
    )

    bundles = pull(server, transfer_key, tmp_path / "usb")
    assert len(bundles) == 1
    items, envelopes = read_bundle(bundles[0], server_public_key(server))
    assert len(items) == 4
    opened = {}
    for item in items:
        assert hashlib.sha256(envelopes[item.id]).digest() == item.sha256
        metadata, content = crypto.open_bytes(envelopes[item.id], [team.journalist.secret])
        assert metadata.kind.name.lower() == item.kind
        opened[(item.source_id, metadata.filename or metadata.kind.name)] = (item, content)
    contents = sorted(content for _, content in opened.values())
    assert contents == sorted(
        [b"sent without scripts", form_file, b"sealed in the browser", script_file]
    )
    assert len({item.source_id for item in items}) == 2

    form_item = next(item for item, content in opened.values() if content == form_file)
    reply = seal_bytes(
        b"We read it. Thank you.",
        [form_item.reply_public_key, *recipients],
        Kind.REPLY,
    )
    outbound = tmp_path / "usb" / "outbound.bundle"
    with outbound.open("wb") as handle:
        write_outbound_bundle(
            handle,
            signing_key=team.signer,
            made=date(2026, 11, 25),
            replies=[(form_item.source_id, reply)],
            deletions=[],
            acknowledged=[item.id for item in items],
        )
    first = run(BIN / "dropbox-transfer", "push", outbound, "--server", server.api_url,
                "--key", transfer_key)  # fmt: skip
    assert '"applied": true' in first.stdout.replace("'", '"').lower() or "applied" in first.stdout
    blobs_after_first = kept_files(server.data_dir / "blobs")
    second = run(BIN / "dropbox-transfer", "push", outbound, "--server", server.api_url,
                 "--key", transfer_key)  # fmt: skip
    assert "false" in second.stdout.lower() or "already" in second.stdout.lower()
    assert kept_files(server.data_dir / "blobs") == blobs_after_first
    # The acknowledged items were purged: only the reply's blob is left.
    assert len(blobs_after_first) == 1

    assert "We read it. Thank you." in form_source.replies_after_login()
    assert "We read it. Thank you." not in script_source.replies_after_login()
    # Nothing is pending any more.
    assert pull(server, transfer_key, tmp_path / "usb2") == []


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_a_pull_interrupted_by_a_server_crash_resumes(
    server: DropboxServer, team, transfer_key, tmp_path
):
    recipients = [team.journalist.public.key]
    source = Source(server)
    big = os.urandom(24 * 1024 * 1024)
    source.script_path(
        [
            ("file", seal_bytes(big, recipients, Kind.FILE, "video.mp4", "video/mp4")),
            ("message", seal_bytes(b"and a note", recipients, Kind.MESSAGE)),
        ]
    )
    usb = tmp_path / "usb"
    usb.mkdir()
    puller = subprocess.Popen(
        [str(BIN / "dropbox-transfer"), "pull", "--server", server.api_url,
         "--key", str(transfer_key), "--to", str(usb)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    # Kill the server once part of the big envelope has arrived in the partial bundle
    # (transfer/batches.py: USB/.postern-pull-<manifest hash>/bundle.part). Only that file is
    # watched: other files of the pull (manifest.block's temporary file) come and go.
    deadline = time.monotonic() + 60
    arrived = 0
    while time.monotonic() < deadline and puller.poll() is None:
        arrived = partial_bundle_size(usb)
        if arrived > 1024 * 1024:
            break
        time.sleep(0.005)
    server.kill()
    puller.wait(timeout=120)
    assert puller.stdout is not None
    assert puller.stderr is not None
    puller.stdout.close()
    puller.stderr.close()
    if puller.returncode == 0:
        pytest.fail("the pull finished before the server could be killed; make the file larger")
    if arrived <= 1024 * 1024:
        pytest.fail(f"only {arrived} bytes of the partial bundle arrived before the kill")
    assert list(usb.glob("*.bundle")) == []
    kept = partial_bundle_size(usb)
    assert kept >= arrived  # what arrived stays on the medium for the next run

    server.start()
    resumed = run(BIN / "dropbox-transfer", "pull", "--server", server.api_url,
                  "--key", transfer_key, "--to", usb)  # fmt: skip
    assert "finishing 1 interrupted pull(s)" in resumed.stdout + resumed.stderr
    bundles = sorted(usb.glob("*.bundle"))
    assert len(bundles) == 1
    items, envelopes = read_bundle(bundles[0], server_public_key(server))
    assert len(items) == 2
    assert len({item.id for item in items}) == 2
    contents = sorted(
        crypto.open_bytes(envelopes[i.id], [team.journalist.secret])[1] for i in items
    )
    assert contents == sorted([big, b"and a note"])
    assert [p for p in usb.iterdir() if p.name.startswith(".postern-pull")] == []
