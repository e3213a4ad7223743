"""Search that understands the languages, and the indexes the triage pages need.

Adds the FTS5 tables item_terms and note_terms (search terms of item texts, file names and
notes: journalist_ui.store.terms), gives message_fts rows the item id as rowid, indexes
what is already stored, and adds the index of sources by day of last activity.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from journalist_ui.store.search_index import item_terms
from journalist_ui.store.terms import Analyzer

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Prefix indexes of 2 to 4 characters: a prefix search ("закуп*") reads one list and stops
#: at its newest matches, instead of merging the lists of every word with that prefix.
_TOKENIZER = "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4'"


def upgrade() -> None:
    bind = op.get_bind()
    op.execute(f"CREATE VIRTUAL TABLE item_terms USING fts5(terms, {_TOKENIZER})")
    op.execute(f"CREATE VIRTUAL TABLE note_terms USING fts5(terms, {_TOKENIZER})")
    op.create_index("ix_sources_activity", "sources", ["deleted", "last_day", "id"])
    # message_fts rows get their item id as rowid (found and deleted without a scan).
    texts = {
        int(item_id): str(body)
        for item_id, body in bind.execute(text("SELECT item_id, body FROM message_fts"))
    }
    op.execute("DELETE FROM message_fts")
    analyzer = Analyzer()
    if texts:
        bind.execute(
            text("INSERT INTO message_fts (rowid, item_id, body) VALUES (:id, :id, :body)"),
            [{"id": i, "body": b} for i, b in texts.items()],
        )
    names = {
        int(i): str(n)
        for i, n in bind.execute(text("SELECT id, filename FROM items WHERE filename IS NOT NULL"))
    }
    rows = [
        {"id": i, "terms": item_terms(analyzer, texts.get(i), names.get(i))}
        for i in sorted(set(texts) | set(names))
    ]
    if rows:
        bind.execute(text("INSERT INTO item_terms (rowid, terms) VALUES (:id, :terms)"), rows)
    notes = [
        {"id": int(i), "terms": analyzer.text_terms(str(t))}
        for i, t in bind.execute(text("SELECT id, text FROM notes"))
    ]
    if notes:
        bind.execute(text("INSERT INTO note_terms (rowid, terms) VALUES (:id, :terms)"), notes)


def downgrade() -> None:
    op.drop_index("ix_sources_activity", "sources")
    op.execute("DROP TABLE note_terms")
    op.execute("DROP TABLE item_terms")
