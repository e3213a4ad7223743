"""Incomplete uploads keep their state in the database, by the day, not in sidecar files.

Revision ID: 0005
Revises: 0004

``uploads`` replaces the ``<id>.json`` sidecar files beside the upload data (docs/format.md
8.3): a sidecar held its owner and its creation time to the second in a file of its own,
whose blocks outlived it. A row keeps days only and is overwritten when deleted
(``secure_delete``). Uploads in progress during the upgrade are not carried over: their
sidecars are left to the next expiry pass, which discards every part file no row names
(a source's browser starts such an upload again).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("created_day", sa.Date(), nullable=False),
        sa.Column("expires_day", sa.Date(), nullable=False),
        sa.Column("part", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("upload_id", name=op.f("uq_uploads_upload_id")),
        sa.UniqueConstraint("part", name=op.f("uq_uploads_part")),
    )
    op.create_index(op.f("ix_uploads_owner"), "uploads", ["owner"])
    op.create_index(op.f("ix_uploads_expires_day"), "uploads", ["expires_day"])


def downgrade() -> None:
    op.drop_index(op.f("ix_uploads_expires_day"), "uploads")
    op.drop_index(op.f("ix_uploads_owner"), "uploads")
    op.drop_table("uploads")
