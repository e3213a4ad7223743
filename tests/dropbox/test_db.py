"""The database: migrations make the schema; the source and submission use cases."""

from __future__ import annotations

import os
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from crypto import Kind, SourceSecrets, seal_bytes
from crypto.keys import x25519_public

# The blob store's tables (migration 0007) and the part store's (0008) live beside the stores:
# importing them puts them in db.Base.metadata, which the schema is compared with.
from dropbox import (
    database_blobs,  # noqa: F401
    db,
)
from dropbox.db import Item, ItemKind, Reply, Source, Submission
from dropbox.sources import (
    MAX_REPLY_ENVELOPE,
    SourceError,
    create_source,
    delete_reply,
    find_source,
    list_replies,
    open_replies,
    store_reply,
)
from dropbox.storage import LocalBlobStore
from dropbox.submissions import SubmissionError, add_submission
from dropbox.uploads import database_parts  # noqa: F401

TODAY = date(2026, 11, 24)
TEAM_KEY = x25519_public(os.urandom(32))


@pytest.fixture
def engine(database_url):
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with db.make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def store(tmp_path):
    return LocalBlobStore(tmp_path / "blobs")


def fake_secrets() -> SourceSecrets:
    """Secrets as derive_source_secrets makes them, without the Argon2id cost."""
    return SourceSecrets(
        lookup_id=os.urandom(32), reply_private=os.urandom(32), source_id=os.urandom(16)
    )


def blob_id() -> str:
    return os.urandom(32).hex()


# -- schema ------------------------------------------------------------------------------------


def test_migrations_create_the_schema_of_the_models(engine):
    assert db.current_revision(engine) == db.head_revision() == "0008"
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.Base.metadata) == []


def test_upgrading_again_changes_nothing(engine):
    db.upgrade(engine)
    assert db.current_revision(engine) == "0008"


def test_the_tables_hold_the_least_metadata(engine):
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == {
        "alembic_version", "sources", "submissions", "items", "replies", "applied_bundles",
        "uploads", "source_sessions", "derivation_counts", "sync_nonces", "blobs", "blob_chunks",
        "upload_parts",
    }  # fmt: skip
    columns = {
        table: {c["name"]: c["type"] for c in inspector.get_columns(table)}
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }
    assert {t: set(c) for t, c in columns.items()} == {
        "sources": {"id", "lookup_id", "source_id", "reply_public", "created_day"},
        "submissions": {"id", "source_row_id", "received_day", "completion_key"},
        "items": {"id", "submission_id", "position", "kind", "blob_id", "size", "acknowledged"},
        "replies": {"id", "source_row_id", "blob_id", "created_day"},
        "applied_bundles": {"id", "bundle_id"},
        "uploads": {
            "id", "upload_id", "owner", "key_hash", "length", "created_day", "expires_day",
            "part",
        },
        # Sealed under the cookie's key: no source row, CSRF token or reply key in clear.
        "source_sessions": {"id", "sealed", "day", "logged_in"},
        "derivation_counts": {"kind", "minute", "count"},
        "sync_nonces": {"client_id", "nonce_hash", "expires_day"},
        # The database blob store (POSTERN_BLOB_STORE=database): ids, sizes and ciphertext.
        "blobs": {"blob_id", "content_id", "size"},
        "blob_chunks": {"content_id", "seq", "data"},
        # Its upload parts: random part names, piece numbers and ciphertext.
        "upload_parts": {"name", "seq", "data"},
    }  # fmt: skip
    # No time finer than a day anywhere.
    for table, types in columns.items():
        for name, kind in types.items():
            assert not isinstance(kind, sa.DateTime), (table, name)
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("sources")}
    assert unique == {("lookup_id",), ("source_id",)}


def test_foreign_keys_are_enforced(session):
    session.add(Submission(source_row_id=999, received_day=TODAY))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


def test_item_kinds_are_checked_by_the_database(session):
    source = create_source(session, fake_secrets(), TODAY)
    submission = Submission(source_row_id=source.id, received_day=TODAY)
    session.add(submission)
    session.flush()
    session.add(
        Item(submission_id=submission.id, position=0, kind="video", blob_id=blob_id(), size=1)
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


# -- sources -----------------------------------------------------------------------------------


def test_create_and_find_a_source(session):
    secrets = fake_secrets()
    source = create_source(session, secrets, TODAY)
    assert source.lookup_id == secrets.lookup_id
    assert source.source_id == secrets.source_id
    assert source.reply_public == secrets.reply_public
    assert source.created_day == TODAY
    found = find_source(session, secrets.lookup_id)
    assert found is not None
    assert found.id == source.id
    assert find_source(session, os.urandom(32)) is None
    assert find_source(session, bytes(32)) is None


def test_a_source_cannot_be_created_twice(session):
    secrets = fake_secrets()
    create_source(session, secrets, TODAY)
    with pytest.raises(SourceError):
        create_source(session, secrets, TODAY)
    assert session.query(Source).count() == 1


# -- submissions -------------------------------------------------------------------------------


def test_add_a_submission_with_items_in_order(session):
    source = create_source(session, fake_secrets(), TODAY)
    ids = [blob_id() for _ in range(3)]
    submission = add_submission(
        session,
        source.id,
        [(ItemKind.MESSAGE, ids[0], 1090), ("file", ids[1], 70_000), (ItemKind.FILE, ids[2], 0)],
        TODAY,
    )
    assert submission.received_day == TODAY
    items = session.scalars(
        sa.select(Item).where(Item.submission_id == submission.id).order_by(Item.position)
    ).all()
    assert [(i.position, i.kind, i.blob_id, i.size) for i in items] == [
        (0, "message", ids[0], 1090),
        (1, "file", ids[1], 70_000),
        (2, "file", ids[2], 0),
    ]


def submit(session, source_row: int, count: int) -> list[int]:
    submission = add_submission(session, source_row, [("file", blob_id(), 1)] * count, TODAY)
    return list(session.scalars(select_item_ids().where(Item.submission_id == submission.id)).all())


def select_item_ids() -> sa.Select[int]:
    return sa.select(Item.id).order_by(Item.id)


def test_item_ids_are_never_reused_after_the_newest_items_are_purged(session):
    source = create_source(session, fake_secrets(), TODAY)
    first = submit(session, source.id, 3)
    # The station acknowledged everything and the server purged it: no item row is left.
    session.execute(sa.delete(Item))
    session.commit()
    second = submit(session, source.id, 2)
    assert min(second) > max(first), (first, second)


def test_the_migration_keeps_items_and_their_high_water_mark(database_url):
    engine = db.make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(db.alembic_config(connection), "0002")
    with db.make_sessionmaker(engine)() as session:
        source = create_source(session, fake_secrets(), TODAY)
        # Core inserts: the ORM's Submission has the columns of the newest revision.
        session.execute(sa.insert(Submission).values(source_row_id=source.id, received_day=TODAY))
        submission_id = session.scalars(sa.select(Submission.id)).one()
        for position in range(4):
            session.execute(
                sa.insert(Item).values(
                    submission_id=submission_id,
                    position=position,
                    kind="file",
                    blob_id=blob_id(),
                    size=1,
                    acknowledged=False,
                )
            )
        session.commit()
        before = session.scalars(select_item_ids()).all()
        blobs = session.scalars(sa.select(Item.blob_id).order_by(Item.id)).all()
    db.upgrade(engine)
    with db.make_sessionmaker(engine)() as session:
        assert session.scalars(sa.select(Item.blob_id).order_by(Item.id)).all() == blobs
        session.execute(sa.delete(Item).where(Item.id >= before[2]))
        session.commit()
        after = submit(session, source.id, 1)
    assert after[0] > max(before), (before, after)
    engine.dispose()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "at least one item"),
        ([("video", "a" * 64, 1)], "unknown item kind"),
        ([("file", "A" * 64, 1)], "invalid blob id"),
        ([("file", "../" + "a" * 61, 1)], "invalid blob id"),
        ([("file", "a" * 64, -1)], "non-negative"),
        ([("file", "a" * 64, True)], "non-negative"),
    ],
)
def test_bad_submissions_are_refused(session, items, message):
    source = create_source(session, fake_secrets(), TODAY)
    with pytest.raises(SubmissionError, match=message):
        add_submission(session, source.id, items, TODAY)
    assert session.query(Submission).count() == 0


def test_a_submission_needs_an_existing_source(session):
    with pytest.raises(SubmissionError, match="no such source"):
        add_submission(session, 42, [("file", blob_id(), 1)], TODAY)


# -- replies -----------------------------------------------------------------------------------


def reply_for(secrets: SourceSecrets, text: bytes, kind: Kind = Kind.REPLY) -> bytes:
    return seal_bytes(text, [secrets.reply_public, TEAM_KEY], kind)


def test_store_list_open_and_delete_replies(session, store):
    secrets = fake_secrets()
    source = create_source(session, secrets, TODAY)
    first = store_reply(session, store, source, reply_for(secrets, b"first"), TODAY)
    second = store_reply(session, store, source, reply_for(secrets, "второй".encode()), TODAY)
    assert [r.id for r in list_replies(session, source)] == [first.id, second.id]
    assert first.created_day == TODAY

    opened = open_replies(store, list_replies(session, source), secrets.reply_private)
    assert [(o.reply_id, o.text) for o in opened] == [(first.id, "first"), (second.id, "второй")]
    # Another key opens nothing.
    assert [o.text for o in open_replies(store, list_replies(session, source), os.urandom(32))] == [
        None,
        None,
    ]

    assert delete_reply(session, store, source, first.id) is True
    assert not store.exists(first.blob_id)
    assert session.get(Reply, first.id) is None
    assert [r.id for r in list_replies(session, source)] == [second.id]
    assert delete_reply(session, store, source, first.id) is False


def test_a_source_cannot_delete_another_sources_reply(session, store):
    alice, bob = fake_secrets(), fake_secrets()
    alice_row = create_source(session, alice, TODAY)
    bob_row = create_source(session, bob, TODAY)
    reply = store_reply(session, store, alice_row, reply_for(alice, b"for alice"), TODAY)
    assert delete_reply(session, store, bob_row, reply.id) is False
    assert store.exists(reply.blob_id)
    assert list_replies(session, bob_row) == []


def test_a_blob_still_named_by_another_row_is_kept(session, store):
    secrets = fake_secrets()
    source = create_source(session, secrets, TODAY)
    envelope = reply_for(secrets, b"same bytes")
    one = store_reply(session, store, source, envelope, TODAY)
    two = store_reply(session, store, source, envelope, TODAY)
    assert one.blob_id == two.blob_id
    delete_reply(session, store, source, one.id)
    assert store.exists(two.blob_id)
    delete_reply(session, store, source, two.id)
    assert not store.exists(two.blob_id)


def test_replies_that_are_not_replies_are_flagged(session, store):
    secrets = fake_secrets()
    source = create_source(session, secrets, TODAY)
    message = store_reply(session, store, source, reply_for(secrets, b"x", Kind.MESSAGE), TODAY)
    latin1 = store_reply(session, store, source, reply_for(secrets, b"caf\xe9"), TODAY)
    opened = open_replies(store, [message, latin1], secrets.reply_private)
    assert [o.readable for o in opened] == [False, False]
    # A reply whose blob went missing is flagged, not an error.
    store.delete(message.blob_id)
    assert open_replies(store, [message], secrets.reply_private)[0].text is None


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (b"not an envelope", "not a valid reply envelope"),
        (b"PSTRNENV\x01\x01" + bytes(200), "not a valid reply envelope"),
    ],
)
def test_store_reply_refuses_what_is_not_an_envelope(session, store, envelope, message):
    source = create_source(session, fake_secrets(), TODAY)
    with pytest.raises(SourceError, match=message):
        store_reply(session, store, source, envelope, TODAY)
    assert list(store.ids()) == []


def test_store_reply_refuses_an_envelope_not_sealed_to_the_source(session, store):
    secrets = fake_secrets()
    source = create_source(session, secrets, TODAY)
    with pytest.raises(SourceError, match="not sealed to the source"):
        store_reply(session, store, source, seal_bytes(b"x", [TEAM_KEY], Kind.REPLY), TODAY)
    truncated = reply_for(secrets, b"x")[:-1]
    with pytest.raises(SourceError, match="not a valid reply envelope"):
        store_reply(session, store, source, truncated, TODAY)
    with pytest.raises(SourceError, match="at most"):
        store_reply(session, store, source, bytes(MAX_REPLY_ENVELOPE + 1), TODAY)
    assert list(store.ids()) == []


def test_a_completion_key_is_unique_per_source_only(session):
    first = create_source(session, fake_secrets(), TODAY)
    second = create_source(session, fake_secrets(), TODAY)
    key = bytes(32)
    add_submission(session, first.id, [("file", blob_id(), 1)], TODAY, key)
    add_submission(session, second.id, [("file", blob_id(), 1)], TODAY, key)
    add_submission(session, first.id, [("file", blob_id(), 1)], TODAY)
    add_submission(session, first.id, [("file", blob_id(), 1)], TODAY)
    with pytest.raises(sa.exc.IntegrityError):
        add_submission(session, first.id, [("file", blob_id(), 1)], TODAY, key)
    session.rollback()
    assert session.query(Submission).count() == 4


def test_0004_keeps_items_both_ways(database_url):
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    with db.make_sessionmaker(engine)() as session:
        source = create_source(session, fake_secrets(), TODAY)
        ids = submit(session, source.id, 3)
    with engine.begin() as connection:
        command.downgrade(db.alembic_config(connection), "0003")
    assert "completion_key" not in {
        c["name"] for c in sa.inspect(engine).get_columns("submissions")
    }
    db.upgrade(engine)
    assert db.current_revision(engine) == "0008"
    with db.make_sessionmaker(engine)() as session:
        assert list(session.scalars(select_item_ids()).all()) == ids
    engine.dispose()
