"""The sync API: acknowledged items and the outbound bundles applied.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(
            sa.Column("acknowledged", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "applied_bundles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.LargeBinary(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_bundles")),
        sa.UniqueConstraint("bundle_id", name=op.f("uq_applied_bundles_bundle_id")),
    )


def downgrade() -> None:
    op.drop_table("applied_bundles")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("acknowledged")
