"""Item ids are never handed out twice, even after the items with the highest ids are purged.

Revision ID: 0003
Revises: 0002

SQLite gives a new row the largest rowid plus one, so purging the newest items (the station
acknowledged them) made the next submission's items repeat ids the station already holds,
and the station rightly refused the next bundle. An AUTOINCREMENT table remembers the largest
id ever used (in sqlite_sequence). SQLite cannot add AUTOINCREMENT to a table, so the table is
rebuilt; copying the rows into it records their largest id as the high-water mark. Nothing
references items by foreign key, so dropping the old table removes nothing else. PostgreSQL's
serial ids already never repeat; the revision does nothing there.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "items", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "items", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
