"""Revision 0002: acknowledged items and applied bundles, over a database made by 0001."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

# The blob store's tables (migration 0007) and the part store's (0008) live beside the stores:
# importing them puts them in db.Base.metadata, which the schema is compared with.
from dropbox import (
    database_blobs,  # noqa: F401
    db,
)
from dropbox.uploads import database_parts  # noqa: F401


def test_the_schema_of_the_models_is_what_the_migrations_make(database_url):
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision() == "0008"
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, db.Base.metadata) == []
    finally:
        engine.dispose()


def test_0002_keeps_the_items_of_0001_waiting_and_adds_only_what_it_needs(database_url):
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.upgrade(db.alembic_config(connection), "0001")
            connection.execute(
                sa.text(
                    "INSERT INTO sources (id, lookup_id, source_id, reply_public, created_day) "
                    "VALUES (1, :l, :s, :r, :d)"
                ),
                {"l": b"l" * 32, "s": b"s" * 16, "r": b"r" * 32, "d": date(2026, 1, 1)},
            )
            connection.execute(
                sa.text("INSERT INTO submissions VALUES (1, 1, :d)"), {"d": date(2026, 1, 1)}
            )
            connection.execute(
                sa.text("INSERT INTO items VALUES (1, 1, 0, 'message', :b, 2048)"),
                {"b": "ab" * 32},
            )
        db.upgrade(engine)
        inspector = sa.inspect(engine)
        assert {c["name"] for c in inspector.get_columns("items")} == {
            "id", "submission_id", "position", "kind", "blob_id", "size", "acknowledged",
        }  # fmt: skip
        # Only the random bundle id: no day, no signer, nothing about who pushed it.
        assert {c["name"] for c in inspector.get_columns("applied_bundles")} == {
            "id", "bundle_id",
        }  # fmt: skip
        assert {tuple(u["column_names"]) for u in inspector.get_unique_constraints(
            "applied_bundles"
        )} == {("bundle_id",)}  # fmt: skip
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, acknowledged FROM items")).all()
        assert [tuple(row) for row in rows] == [(1, False)]

        with engine.begin() as connection:
            command.downgrade(db.alembic_config(connection), "0001")
        assert "applied_bundles" not in sa.inspect(engine).get_table_names()
        assert "acknowledged" not in {c["name"] for c in sa.inspect(engine).get_columns("items")}
    finally:
        engine.dispose()
