"""Upload part data in the database, so that any app node can resume an upload
(POSTERN_BLOB_STORE=database).

Revision ID: 0008
Revises: 0007

``upload_parts`` holds each incomplete upload's bytes as pieces of at most 1 MiB under the
part's random name (dropbox/uploads/database_parts.py); the empty piece ``seq = 0`` marks that
the part exists. No time, no owner: what the part directory of the local store shows, names
and sizes. The table stays empty with the default local store.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_parts",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", "seq", name=op.f("pk_upload_parts")),
    )


def downgrade() -> None:
    op.drop_table("upload_parts")
