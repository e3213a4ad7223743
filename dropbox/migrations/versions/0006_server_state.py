"""Server state out of process memory: sessions, derivation budgets and sync API nonces.

Revision ID: 0006
Revises: 0004

The app processes keep nothing of their own (DESIGN.md section 6): several of them, or a
restarted one, must see the same sessions, budgets and nonces. The three tables hold no time
finer than a day and nothing that names a source in clear (docs/threat-model.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_sessions",
        sa.Column("id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("logged_in", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_sessions")),
    )
    op.create_index(op.f("ix_source_sessions_day"), "source_sessions", ["day"])
    op.create_table(
        "derivation_counts",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("minute", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "minute", name=op.f("pk_derivation_counts")),
    )
    op.create_table(
        "sync_nonces",
        sa.Column("client_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("nonce_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "nonce_hash", name=op.f("pk_sync_nonces")),
    )
    op.create_index(op.f("ix_sync_nonces_expires_day"), "sync_nonces", ["expires_day"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_nonces_expires_day"), "sync_nonces")
    op.drop_table("sync_nonces")
    op.drop_table("derivation_counts")
    op.drop_index(op.f("ix_source_sessions_day"), "source_sessions")
    op.drop_table("source_sessions")
