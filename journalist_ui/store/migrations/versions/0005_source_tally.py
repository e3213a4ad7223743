"""The source list's total from a tally: ``tallies`` row ``sources`` (store.models.Tally).

The source list counted the sources not deleted on every page (an index of 100,000 entries
at newsroom scale: tens of milliseconds of a 100 ms budget). Now the row ``sources`` of
``tallies`` holds that number, kept by triggers on ``sources`` in the transaction that
inserts a source, marks it deleted, or lists it again (an import from a deleted source);
this migration counts what is stored. Filtered lists still count.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TRIGGERS = {
    "tally_sources_insert": (
        "AFTER INSERT ON sources WHEN NEW.deleted = 0 BEGIN "
        "UPDATE tallies SET n = n + 1 WHERE name = 'sources'; END"
    ),
    "tally_sources_delete": (
        "AFTER DELETE ON sources WHEN OLD.deleted = 0 BEGIN "
        "UPDATE tallies SET n = n - 1 WHERE name = 'sources'; END"
    ),
    "tally_sources_deleted": (
        "AFTER UPDATE OF deleted ON sources WHEN OLD.deleted != NEW.deleted BEGIN "
        "UPDATE tallies SET n = n + (CASE WHEN NEW.deleted = 0 THEN 1 ELSE -1 END) "
        "WHERE name = 'sources'; END"
    ),
}


def upgrade() -> None:
    op.execute(
        "INSERT INTO tallies (name, n) SELECT 'sources', count(*) FROM sources WHERE deleted = 0"
    )
    for name, body in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DELETE FROM tallies WHERE name = 'sources'")
