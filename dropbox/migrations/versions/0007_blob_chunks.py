"""Blobs in the database, for app nodes on several machines (POSTERN_BLOB_STORE=database).

Revision ID: 0007
Revises: 0004

``blobs`` names each committed blob (the SHA-256 of its bytes) and its size, and points at its
content; ``blob_chunks`` holds the content in pieces of 1 MiB (dropbox/database_blobs.py). No
time, no owner: what the blob directory of the local store shows, ids and sizes. Both tables
stay empty with the default local store.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("blob_id", sa.String(64), nullable=False),
        sa.Column("content_id", sa.LargeBinary(16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("blob_id", name=op.f("pk_blobs")),
        sa.UniqueConstraint("content_id", name=op.f("uq_blobs_content_id")),
    )
    op.create_table(
        "blob_chunks",
        sa.Column("content_id", sa.LargeBinary(16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("content_id", "seq", name=op.f("pk_blob_chunks")),
    )


def downgrade() -> None:
    op.drop_table("blob_chunks")
    op.drop_table("blobs")
