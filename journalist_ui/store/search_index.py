"""The search index: decrypted texts, file names and notes, as search terms (FTS5).

Three FTS5 tables (docs/format.md section 13): ``message_fts(item_id, body)`` keeps the
decrypted text of messages and replies (its rowid is the item id), ``item_terms(terms)``
the search terms (journalist_ui.store.terms) of an item's text and file name, and
``note_terms(terms)`` those of a note; their rowids are the item and note ids, so that a row
is found and deleted without a scan. Deleting an item or a note deletes its rows here (with
``secure_delete`` on, the words are overwritten in the file).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from journalist_ui.store.terms import Analyzer


def item_terms(analyzer: Analyzer, body: str | None, filename: str | None) -> str:
    return " ".join(analyzer.text_terms(part) for part in (body, filename) if part)


def index_items(
    session: Session,
    rows: Iterable[tuple[int, str | None, str | None]],
    analyzer: Analyzer | None = None,
) -> None:
    """Index items by id: (item id, decrypted text or None, file name or None)."""
    rows = list(rows)
    if not rows:
        return
    analyzer = analyzer or Analyzer()
    index_terms(session, [(i, body, item_terms(analyzer, body, name)) for i, body, name in rows])


def index_terms(session: Session, rows: list[tuple[int, str | None, str]]) -> None:
    """Index items whose search terms (:func:`item_terms`) are worked out already: (item id,
    decrypted text or None, terms). An import works them out as it decrypts."""
    if not rows:
        return
    bodies = [{"id": i, "body": body} for i, body, _ in rows if body is not None]
    if bodies:
        session.execute(
            text(
                "INSERT OR REPLACE INTO message_fts (rowid, item_id, body) VALUES (:id, :id, :body)"
            ),
            bodies,
        )
    session.execute(
        text("INSERT OR REPLACE INTO item_terms (rowid, terms) VALUES (:id, :terms)"),
        [{"id": i, "terms": terms} for i, _, terms in rows],
    )


def index_messages(
    session: Session, texts: list[tuple[int, str]], analyzer: Analyzer | None = None
) -> None:
    """Index message or reply texts by item id."""
    index_items(session, [(item_id, body, None) for item_id, body in texts], analyzer)


def unindex_item(session: Session, item_id: int) -> None:
    session.execute(text("DELETE FROM message_fts WHERE rowid = :id"), {"id": item_id})
    session.execute(text("DELETE FROM item_terms WHERE rowid = :id"), {"id": item_id})


def index_note(session: Session, note_id: int, note: str, analyzer: Analyzer | None = None) -> None:
    session.execute(
        text("INSERT OR REPLACE INTO note_terms (rowid, terms) VALUES (:id, :terms)"),
        {"id": note_id, "terms": (analyzer or Analyzer()).text_terms(note)},
    )


def unindex_notes(session: Session, note_ids: Iterable[int]) -> None:
    ids = [{"id": n} for n in note_ids]
    if ids:
        session.execute(text("DELETE FROM note_terms WHERE rowid = :id"), ids)


__all__ = [
    "index_items",
    "index_messages",
    "index_note",
    "index_terms",
    "item_terms",
    "unindex_item",
    "unindex_notes",
]
