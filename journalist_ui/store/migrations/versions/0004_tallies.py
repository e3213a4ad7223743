"""Counts the header needs, kept by triggers: the table tallies (store.models.Tally).

The header's unread count was a scan of the items, newest first, looking up each one's read
mark; with few unread items among a million it read them all (seconds per page). Now
``tallies`` holds the number of incoming items (``in``) and, per journalist, the number of
incoming items they have read (``read:<journalist>``); triggers on ``items`` and ``reads``
keep both, in the transaction that changes them, and this migration counts what is already
stored. Unread = in - read. An item's direction never changes once stored (the triggers
need not follow an UPDATE); a read mark goes before its item (the foreign key), so the item
is still there to say whether it was incoming.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TRIGGERS = {
    "tally_items_insert": (
        "AFTER INSERT ON items WHEN NEW.direction = 'in' BEGIN "
        "UPDATE tallies SET n = n + 1 WHERE name = 'in'; END"
    ),
    "tally_items_delete": (
        "AFTER DELETE ON items WHEN OLD.direction = 'in' BEGIN "
        "UPDATE tallies SET n = n - 1 WHERE name = 'in'; END"
    ),
    "tally_reads_insert": (
        "AFTER INSERT ON reads WHEN (SELECT direction FROM items WHERE id = NEW.item_id) = 'in' "
        "BEGIN "
        "INSERT OR IGNORE INTO tallies (name, n) VALUES ('read:' || NEW.journalist, 0); "
        "UPDATE tallies SET n = n + 1 WHERE name = 'read:' || NEW.journalist; END"
    ),
    "tally_reads_delete": (
        "AFTER DELETE ON reads WHEN (SELECT direction FROM items WHERE id = OLD.item_id) = 'in' "
        "BEGIN "
        "UPDATE tallies SET n = n - 1 WHERE name = 'read:' || OLD.journalist; END"
    ),
}


def upgrade() -> None:
    op.create_table(
        "tallies",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.execute(
        "INSERT INTO tallies (name, n) SELECT 'in', count(*) FROM items WHERE direction = 'in'"
    )
    op.execute(
        "INSERT INTO tallies (name, n) "
        "SELECT 'read:' || r.journalist, count(*) FROM reads AS r "
        "JOIN items AS i ON i.id = r.item_id WHERE i.direction = 'in' GROUP BY r.journalist"
    )
    for name, body in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.drop_table("tallies")
