"""Full-text search of the messages and replies, and items with the same content."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, select, text
from sqlalchemy.orm import Session

from journalist_ui.errors import StationError
from journalist_ui.store.models import Item, Source

#: Longest search query accepted, and most results shown.
MAX_QUERY_CHARS = 200
MAX_SEARCH_RESULTS = 200
#: Marks around matched words in a search snippet (private-use characters, replaced by the
#: view after escaping; a message containing them can only add harmless <mark> tags).
MATCH_START = "\ue000"
MATCH_END = "\ue001"


@dataclass(frozen=True)
class SearchHit:
    item_id: int
    source_pk: int
    designation: str
    kind: str
    day: date
    snippet: str


@dataclass(frozen=True)
class DuplicateGroup:
    sha256: str
    items: list[tuple[int, int, str, str, str | None]]  # item id, source pk, designation,
    # kind, filename

    @property
    def sources(self) -> int:
        return len({source for _, source, _, _, _ in self.items})


def fts_query(query: str) -> str:
    """The FTS5 MATCH expression for what a journalist typed: every word, quoted (AND).

    Quoting each word makes FTS5 operators and syntax characters (``AND``, ``NEAR``, ``*``,
    ``:``, ``"``) plain text; a double quote inside a word is doubled.
    """
    if len(query) > MAX_QUERY_CHARS:
        raise StationError(f"a search is at most {MAX_QUERY_CHARS} characters")
    words = query.split()
    if not words:
        raise StationError("type a word to search for")
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def search(session: Session, query: str, limit: int = MAX_SEARCH_RESULTS) -> list[SearchHit]:
    """Messages and replies whose decrypted text contains every word of ``query``."""
    match = fts_query(query)
    rows = session.execute(
        text(
            "SELECT f.item_id, i.source_pk, s.designation, i.kind, i.day, "
            "snippet(message_fts, 1, :start, :end, '…', 16) "
            "FROM message_fts AS f "
            "JOIN items AS i ON i.id = f.item_id "
            "JOIN sources AS s ON s.id = i.source_pk "
            "WHERE message_fts MATCH :match AND s.deleted = 0 "
            "ORDER BY f.rank LIMIT :limit"
        ),
        {"match": match, "start": MATCH_START, "end": MATCH_END, "limit": limit},
    ).all()
    return [
        SearchHit(
            int(item_id),
            int(source_pk),
            str(designation),
            str(kind),
            day if isinstance(day, date) else date.fromisoformat(str(day)),
            str(snippet),
        )
        for item_id, source_pk, designation, kind, day, snippet in rows
    ]


def duplicates(session: Session, limit: int = 200) -> list[DuplicateGroup]:
    """Groups of items with the same plaintext SHA-256 (across items and sources)."""
    visible = and_(Source.id == Item.source_pk, Source.deleted.is_(False))
    hashes = list(
        session.scalars(
            select(Item.plaintext_sha256)
            .join(Source, visible)
            .where(Item.plaintext_sha256.is_not(None))
            .group_by(Item.plaintext_sha256)
            .having(func.count(Item.id) > 1)
            .order_by(func.count(Item.id).desc(), Item.plaintext_sha256)
            .limit(limit)
        )
    )
    groups: dict[str | None, list[tuple[int, int, str, str, str | None]]] = {
        h: [] for h in hashes if h
    }
    if groups:
        rows = session.execute(
            select(
                Item.plaintext_sha256,
                Item.id,
                Source.id,
                Source.designation,
                Item.kind,
                Item.filename,
            )
            .join(Source, visible)
            .where(Item.plaintext_sha256.in_(list(groups)))
            .order_by(Item.id)
        ).all()
        for sha, item_id, source_pk, designation, kind, filename in rows:
            groups[sha].append((item_id, source_pk, designation, kind, filename))
    return [DuplicateGroup(sha, items) for sha, items in groups.items() if sha]
