"""Submissions remember the script path's idempotency key, so a retried completion is found.

Revision ID: 0004
Revises: 0003

``submissions.completion_key`` holds a hash of the key the browser chose for one completion
(docs/format.md 8.4), scoped to the source row, unique per source (a unique index). Older
rows and plain-form submissions have NULL, which a unique index never compares as equal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN and CREATE INDEX, not a batch rebuild: rebuilding submissions on SQLite drops
    # the old table, and with foreign keys on that deletes every item by cascade.
    op.add_column("submissions", sa.Column("completion_key", sa.LargeBinary(32), nullable=True))
    op.create_index(
        op.f("ix_submissions_source_row_id_completion_key"),
        "submissions",
        ["source_row_id", "completion_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_submissions_source_row_id_completion_key"), "submissions")
    # DROP COLUMN in place (SQLite 3.35 and later), never a rebuild that cascades to items.
    op.execute("ALTER TABLE submissions DROP COLUMN completion_key")
