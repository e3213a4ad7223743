"""The first schema: sources, submissions, items and replies.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lookup_id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("source_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("reply_public", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("lookup_id", name=op.f("uq_sources_lookup_id")),
        sa.UniqueConstraint("source_id", name=op.f("uq_sources_source_id")),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_row_id", sa.Integer(), nullable=False),
        sa.Column("received_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_row_id"],
            ["sources.id"],
            name=op.f("fk_submissions_source_row_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(
        op.f("ix_submissions_source_row_id"), "submissions", ["source_row_id"], unique=False
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=7), nullable=False),
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('message', 'file')", name=op.f("ck_items_kind")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_items_size")),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_items_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint(
            "submission_id", "position", name=op.f("uq_items_submission_id_position")
        ),
    )
    op.create_index(op.f("ix_items_submission_id"), "items", ["submission_id"], unique=False)
    op.create_index(op.f("ix_items_blob_id"), "items", ["blob_id"], unique=False)
    op.create_table(
        "replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_row_id", sa.Integer(), nullable=False),
        sa.Column("blob_id", sa.String(length=64), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_row_id"],
            ["sources.id"],
            name=op.f("fk_replies_source_row_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replies")),
    )
    op.create_index(op.f("ix_replies_source_row_id"), "replies", ["source_row_id"], unique=False)
    op.create_index(op.f("ix_replies_blob_id"), "replies", ["blob_id"], unique=False)


def downgrade() -> None:
    op.drop_table("replies")
    op.drop_table("items")
    op.drop_table("submissions")
    op.drop_table("sources")
