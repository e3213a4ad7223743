"""The first station schema: sources, items, reads, notes, imports, outgoing, statuses,
ledger, and the FTS5 table message_fts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = ("new", "in review", "verified", "published", "closed")


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bundle_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("made", sa.Date(), nullable=False),
        sa.Column("server_key", sa.String(64), nullable=False),
        sa.Column("keyring_serial", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("acknowledged_bundle_id", sa.String(32), nullable=True),
        sa.Column("undecryptable", sa.Integer(), nullable=False),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.String(32), nullable=False, unique=True),
        sa.Column("reply_public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("designation", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("starred", sa.Boolean(), nullable=False),
        sa.Column("assigned_to", sa.String(32), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_pk", sa.Integer(), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("server_id", sa.String(20), nullable=True, unique=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("envelope_name", sa.String(32), nullable=False, unique=True),
        sa.Column("envelope_size", sa.Integer(), nullable=False),
        sa.Column("envelope_sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("media_type", sa.String(127), nullable=True),
        sa.Column("plaintext_size", sa.Integer(), nullable=True),
        sa.Column("plaintext_sha256", sa.String(64), nullable=True),
        sa.Column("key_ids", sa.Text(), nullable=False),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("imports.id"), nullable=True),
        sa.Column("author", sa.String(32), nullable=True),
        sa.Column("decryptable", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_items_source_pk", "items", ["source_pk"])
    op.create_index("ix_items_plaintext_sha256", "items", ["plaintext_sha256"])
    op.create_table(
        "reads",
        sa.Column("journalist", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), primary_key=True),
    )
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_pk", sa.Integer(), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("author", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_notes_source_pk", "notes", ["source_pk"])
    op.create_table(
        "outgoing",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("source_pk", sa.Integer(), sa.ForeignKey("sources.id"), nullable=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=True),
        sa.Column("scope", sa.String(16), nullable=True),
        sa.Column("server_id", sa.String(20), nullable=True),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.Column("bundle_id", sa.String(32), nullable=True),
        sa.Column("source_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_outgoing_bundle_id", "outgoing", ["bundle_id"])
    statuses = op.create_table(
        "statuses",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.bulk_insert(
        statuses, [{"name": name, "position": i} for i, name in enumerate(STATUSES, start=1)]
    )
    op.create_table(
        "ledger",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("hour", sa.String(13), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("journalist", sa.String(32), nullable=False),
        sa.Column("item_ref", sa.String(32), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.execute("CREATE VIRTUAL TABLE message_fts USING fts5(item_id UNINDEXED, body)")


def downgrade() -> None:
    op.execute("DROP TABLE message_fts")
    for table in ("ledger", "statuses", "outgoing", "notes", "reads", "items", "sources"):
        op.drop_table(table)
    op.drop_table("imports")
