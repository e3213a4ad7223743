"""The whole loop end to end, with real gunicorn for the server and the real station.

A source submits through both paths (the no-script form, and the script path: envelopes
sealed on the client, uploaded with tus, completed with POST /api/submissions);
`dropbox-transfer pull` writes an inbound bundle; `journalist import` verifies it against the
pinned server key and imports it into the encrypted store; a journalist replies (the use case
the web interface calls); `journalist export-outbound` writes the signed outbound bundle;
`dropbox-transfer push` applies it; the source logs in again and reads the reply, and the
acknowledged items are gone from the server. The station side is the `journalist` command and
its use cases; only the team's transfer client is added to the keyring by hand (the station
does not manage transfer clients yet).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from crypto import Kind, dump_private_key, load_private_key, load_public_key, seal_bytes
from journalist_ui.content import open_file, read_message
from journalist_ui.outbound import queue_reply
from journalist_ui.store.models import Item, Source
from journalist_ui.unlock import unlock
from tests.support.cli import BIN, JOURNALIST, PASSPHRASE, run_tool
from tests.support.homes import initialized_home
from tests.support.server import DropboxServer, init_data_dir, kept_files, running_server
from tests.support.source import Source as Browser
from tests.support.team import Team
from tests.support.transfer import pull, run


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return initialized_home(tmp_path / "station")


@pytest.fixture
def team(home: Path) -> Team:
    """The station's root and alice's keys (from the home), and a new transfer machine."""
    keys = home / "keys"
    return Team(
        root=load_private_key((keys / "root.key").read_bytes(), PASSPHRASE),
        journalist=load_private_key((keys / "alice/encryption.key").read_bytes(), PASSPHRASE),
        signer=load_private_key((keys / "alice/signing.key").read_bytes(), PASSPHRASE),
    )


@pytest.fixture
def server(home: Path, team: Team, tmp_path: Path) -> Iterator[DropboxServer]:
    """A server set up with the station's root key and a keyring naming the transfer laptop."""
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(team.keyring(2))
    data_dir = init_data_dir(tmp_path / "data", home / "outbox" / "root.pub", keyring)
    with running_server(data_dir, tmp_path) as running:
        yield running


@pytest.fixture
def transfer_key(team: Team, tmp_path: Path) -> Path:
    path = tmp_path / "transfer.key"
    path.write_bytes(dump_private_key(team.transfer, None))
    path.chmod(0o600)
    return path


def journalist(*args: str | Path) -> str:
    done = run_tool(JOURNALIST, *args, passphrase=PASSPHRASE)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_submit_pull_import_reply_export_push_read(home, server, transfer_key, tmp_path):
    # The station pins the server's key; the fingerprints match.
    pinned = run_tool(JOURNALIST, "server", "pin", server.data_dir / "server.pub", "--home", home)
    assert pinned.returncode == 0, pinned.stderr
    server_pub = load_public_key((server.data_dir / "server.pub").read_bytes())
    assert server_pub.fingerprint in pinned.stdout

    recipients = [
        load_private_key((home / "keys/alice/encryption.key").read_bytes(), PASSPHRASE).public.key
    ]
    form_source = Browser(server)
    form_file = os.urandom(300_000)
    form_source.plain_form("sent without scripts", "ledger.xlsx", form_file)
    script_source = Browser(server)
    script_file = os.urandom(150_000)
    script_source.script_path(
        [
            ("message", seal_bytes(b"sealed in the browser", recipients, Kind.MESSAGE)),
            ("file", seal_bytes(script_file, recipients, Kind.FILE, "photo.jpg", "image/jpeg")),
        ]
    )

    (bundle,) = pull(server, transfer_key, tmp_path / "usb")
    out = journalist("import", bundle, "--home", home)
    assert "new items:        4" in out
    assert "new sources:      2" in out
    assert "already present:  0" in out
    assert "already present:  4" in journalist("import", bundle, "--home", home)

    unlocked = unlock(home, "alice", PASSPHRASE)
    try:
        with unlocked.store.session() as session:
            items = session.scalars(select(Item)).all()
            sources = session.scalars(select(Source)).all()
        assert len(sources) == 2
        texts, files = {}, {}
        for item in items:
            assert item.decryptable
            if item.kind == "message":
                texts[read_message(unlocked, item.id)] = item.source_pk
            else:
                plain = open_file(unlocked, item.id)
                content = b"".join(plain.chunks())
                assert hashlib.sha256(content).hexdigest() == item.plaintext_sha256
                files[plain.filename] = (content, plain.media_type)
        assert set(texts) == {"sent without scripts", "sealed in the browser"}
        assert files["photo.jpg"] == (script_file, "image/jpeg")
        assert files["ledger.xlsx"][0] == form_file
        form_pk = texts["sent without scripts"]
        queue_reply(unlocked, form_pk, "We read it. Thank you.", today=date.today())
    finally:
        unlocked.lock()

    out = journalist("export-outbound", "--to", tmp_path / "usb", "--home", home)
    assert "replies:          1" in out
    assert "acknowledged:     4" in out
    (outbound,) = (tmp_path / "usb").glob("outbound-*.bundle")
    pushed = run(BIN / "dropbox-transfer", "push", outbound, "--server", server.api_url,
                 "--key", transfer_key)  # fmt: skip
    assert "applied" in pushed.stdout.lower()
    # The acknowledged items were purged: only the reply's blob is left.
    assert len(kept_files(server.data_dir / "blobs")) == 1

    assert "We read it. Thank you." in form_source.replies_after_login()
    assert "We read it. Thank you." not in script_source.replies_after_login()
    assert pull(server, transfer_key, tmp_path / "usb2") == []
    verified = journalist("ledger", "verify", "--home", home)
    assert "hash chain intact" in verified
