"""The encrypted store: opening, keys, migrations, unlock."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from crypto import KeyKind, PrivateKey, dump_private_key
from journalist_ui.errors import StationError
from journalist_ui.store import open_store
from journalist_ui.store.designations import base_designation, designation_for
from journalist_ui.store.models import Base, Status
from journalist_ui.unlock import unlock
from tests.journalist_ui.storekit import make_home, open_home
from tests.support.cli import MEMLIMIT, PASSPHRASE


def test_a_new_store_is_encrypted_and_seeded(tmp_path):
    path = tmp_path / "station.db"
    key = os.urandom(32)
    store = open_store(path, key)
    with store.session() as session:
        names = session.scalars(select(Status.name).order_by(Status.position)).all()
        session.execute(
            text("INSERT INTO message_fts (item_id, body) VALUES (1, 'a secret meeting')")
        )
    store.close()
    assert names == ["new", "in review", "verified", "published", "closed"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert b"SQLite format 3" not in raw
    assert b"secret meeting" not in raw
    # Reopening runs the migrations again: nothing changes.
    store = open_store(path, key)
    with store.session() as session:
        hits = session.execute(
            text("SELECT item_id FROM message_fts WHERE message_fts MATCH 'secret'")
        ).all()
    store.close()
    assert [tuple(h) for h in hits] == [(1,)]


def test_a_wrong_key_is_refused(tmp_path):
    path = tmp_path / "station.db"
    open_store(path, os.urandom(32)).close()
    with pytest.raises(StationError, match="wrong key, or the file is damaged"):
        open_store(path, os.urandom(32))
    with pytest.raises(StationError, match="32 bytes"):
        open_store(path, b"short")


FTS_TABLES = ("message_fts", "item_terms", "note_terms")


def test_the_migrations_make_exactly_the_models(tmp_path):
    store = open_store(tmp_path / "station.db", os.urandom(32))
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                # The FTS5 tables and their shadow tables are raw SQL, not models.
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or not str(name).startswith(FTS_TABLES)
                )
            },
        )
        diff = compare_metadata(context, Base.metadata)
    store.close()
    assert diff == []


def test_designations_are_stable_and_unique():
    source_id = "00" * 16
    first = designation_for(source_id, set())
    assert first == base_designation(source_id)
    assert len(first.split()) == 2
    assert designation_for(source_id, {first}) == f"{first} 2"
    assert designation_for(source_id, {first, f"{first} 2"}) == f"{first} 3"


def test_init_makes_the_store_and_unlock_opens_it(tmp_path):
    home = make_home(tmp_path / "home")
    assert (home / "store" / "key.envelope").is_file()
    unlocked = open_home(home)
    try:
        assert unlocked.journalist == "alice"
        assert len(unlocked.encryption_keys) == 1
        assert unlocked.signing_key.kind is KeyKind.SIGNING
        with unlocked.store.session() as session:
            assert session.scalar(select(Status.name).where(Status.position == 1)) == "new"
    finally:
        unlocked.lock()
    assert unlocked.encryption_keys == []
    assert not hasattr(unlocked, "signing_key")
    unlocked.lock()  # a second lock changes nothing


def test_unlock_refuses_a_wrong_passphrase_and_an_unknown_journalist(tmp_path):
    home = make_home(tmp_path / "home")
    with pytest.raises(StationError, match="wrong passphrase for journalist alice"):
        unlock(home, "alice", "not the passphrase at all")
    with pytest.raises(StationError, match="no journalist 'bob'"):
        unlock(home, "bob", PASSPHRASE)


def test_unlock_creates_the_store_of_an_older_home(tmp_path):
    home = make_home(tmp_path / "home")
    shutil.rmtree(home / "store")
    unlocked = open_home(home)
    unlocked.lock()
    assert (home / "store" / "key.envelope").is_file()
    assert stat.S_IMODE((home / "store" / "envelopes").stat().st_mode) == 0o700
    open_home(home).lock()


def test_unlock_refuses_a_database_without_its_key(tmp_path):
    home = make_home(tmp_path / "home")
    (home / "store" / "key.envelope").unlink()
    with pytest.raises(StationError, match=r"key \S+ is missing"):
        open_home(home)


def test_unlock_loads_retired_keys(tmp_path):
    home = make_home(tmp_path / "home")
    retired = home / "keys" / "alice" / "retired"
    retired.mkdir(mode=0o700)
    old = PrivateKey.generate(KeyKind.ENCRYPTION, "old")
    (retired / f"encryption-{old.key_id.hex()}.key").write_bytes(
        dump_private_key(old, PASSPHRASE, opslimit=3, memlimit=MEMLIMIT)
    )
    unlocked = open_home(home)
    try:
        assert [k.key_id for k in unlocked.encryption_keys[1:]] == [old.key_id]
    finally:
        unlocked.lock()


def test_the_tallies_migration_counts_what_an_older_store_holds(tmp_path):
    """Migrations 0004 and 0005 count the incoming items and each journalist's read marks already
    stored (the header's unread count reads them), replies not included, and the sources
    not deleted (the source list's total)."""
    from datetime import date

    from alembic import command
    from sqlalchemy import insert

    from journalist_ui import triage
    from journalist_ui.store import _alembic_config
    from journalist_ui.store.models import Item, Read, Source

    key = os.urandom(32)
    path = tmp_path / "station.db"
    opened = open_store(path, key)
    with opened.engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0003")
    day = date(2026, 11, 20)
    with opened.session() as session:  # what revision 0003 stored
        session.execute(
            insert(Source),
            [{"id": 1, "source_id": "00" * 16, "reply_public_key": bytes(32),
              "designation": "amber otter", "status": "new", "starred": False,
              "assigned_to": None, "first_day": day, "last_day": day, "deleted": False}],
        )  # fmt: skip
        session.execute(
            insert(Item),
            [{"id": n, "source_pk": 1, "server_id": str(n), "direction": direction,
              "kind": "reply" if direction == "out" else "message", "day": day,
              "envelope_name": f"{n:032x}", "envelope_size": 1, "envelope_sha256": "0" * 64,
              "key_ids": "", "decryptable": True}
             for n, direction in enumerate(("in", "in", "in", "out", "in"), start=1)],
        )  # fmt: skip
        session.execute(
            insert(Read),
            [{"journalist": j, "item_id": i} for j, i in (("alice", 1), ("alice", 4), ("bob", 2))],
        )
    opened.close()
    opened = open_store(path, key)  # migrates to the newest revision
    try:
        with opened.session() as session:
            assert triage.journalists_unread(session, "alice") == 3
            assert triage.journalists_unread(session, "bob") == 3
            assert triage.journalists_unread(session, "carol") == 4
            assert triage.list_sources(session, "alice").total == 1
    finally:
        opened.close()
