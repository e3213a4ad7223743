"""POSTERN_BLOB_STORE=database end to end: a real `dropbox serve` on PostgreSQL keeps every
envelope in the database (nothing under blobs/), and a pull streams them back whole."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import text

import crypto
from crypto import Kind, dump_private_key, seal_bytes
from dropbox import db
from dropbox.instance import install_keyring, load_instance
from dropbox.instance.create import init_instance
from tests.support.server import running_server
from tests.support.source import Source
from tests.support.team import Team
from tests.support.transfer import pull, read_bundle, server_public_key


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_submissions_live_in_the_database_and_a_pull_streams_them(tmp_path: Path, postgres_url):
    team = Team()
    data_dir = tmp_path / "data"
    init_instance(data_dir, team.root.public.key, database_url=postgres_url)
    install_keyring(data_dir, team.keyring())
    key = tmp_path / "transfer.key"
    key.write_bytes(dump_private_key(team.transfer, None))
    key.chmod(0o600)
    recipients = [team.journalist.public.key]
    # Over a chunk (1 MiB) and not a whole number of them.
    big = os.urandom(2_500_000)
    with running_server(
        data_dir, tmp_path, database_url=postgres_url, blob_store="database"
    ) as server:
        Source(server).plain_form("no scripts", "scan.pdf", os.urandom(200_000))
        Source(server).script_path(
            [("file", seal_bytes(big, recipients, Kind.FILE, "video.mp4", "video/mp4"))]
        )
        assert os.listdir(load_instance(data_dir).blobs_dir) == []
        engine = db.make_engine(postgres_url)
        try:
            with engine.connect() as connection:
                stored = connection.execute(text("SELECT count(*) FROM blobs")).scalar()
                chunks = connection.execute(text("SELECT count(*) FROM blob_chunks")).scalar()
        finally:
            engine.dispose()
        assert stored == 3  # the message and the file of the form, the script path's file
        assert chunks is not None
        assert chunks >= 5
        bundles = pull(server, key, tmp_path / "usb")
    items, envelopes = read_bundle(bundles[0], server_public_key(server))
    assert len(items) == 3
    contents = []
    for item in items:
        assert hashlib.sha256(envelopes[item.id]).digest() == item.sha256
        contents.append(crypto.open_bytes(envelopes[item.id], [team.journalist.secret])[1])
    assert big in contents
    assert b"no scripts" in contents
