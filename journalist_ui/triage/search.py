"""Full-text search of messages, replies, file names and notes, in the languages of the
newsroom (journalist_ui.store.terms), and items with the same content."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, bindparam, func, select, text
from sqlalchemy.orm import Session

from journalist_ui.errors import StationError
from journalist_ui.store.models import Item, Source
from journalist_ui.store.terms import Analyzer, match_expression, matcher, words
from journalist_ui.triage.ranking import bm25, query_words

#: Longest search query accepted, and most results shown.
MAX_QUERY_CHARS = 200
MAX_SEARCH_RESULTS = 200
#: Matches ranked per search: the newest ones (a common word matches most of the store).
SEARCH_CANDIDATES = 1000
#: Words in a search snippet.
SNIPPET_WORDS = 24
#: Marks around matched words in a search snippet (private-use characters, replaced by the
#: view after escaping; a message containing them can only add harmless <mark> tags).
MATCH_START = "\ue000"
MATCH_END = "\ue001"


@dataclass(frozen=True)
class SearchHit:
    item_id: int
    source_pk: int
    designation: str
    kind: str  # an item's kind ("message", "file", "reply"), or "note"
    day: date
    snippet: str
    #: The note found, for a hit in a note (item_id is then 0).
    note_id: int | None = None


@dataclass(frozen=True)
class DuplicateGroup:
    sha256: str
    items: list[tuple[int, int, str, str, str | None]]  # item id, source pk, designation,
    # kind, filename

    @property
    def sources(self) -> int:
        return len({source for _, source, _, _, _ in self.items})


def fts_query(query: str, analyzer: Analyzer | None = None) -> str:
    """The FTS5 MATCH expression for what a journalist typed (journalist_ui.store.terms):
    every word (AND), each as any of its forms' terms, or a prefix for ``word*``."""
    if len(query) > MAX_QUERY_CHARS:
        raise StationError(f"a search is at most {MAX_QUERY_CHARS} characters")
    match = match_expression(analyzer or Analyzer(), query)
    if match is None:
        raise StationError("type a word to search for")
    return match


_ITEMS = text(
    # The newest CANDIDATES matches (FTS5 walks its index by rowid, newest first, and stops)
    # with their search terms, ranked among themselves (triage.ranking): a common word costs
    # no more than a rare one. CROSS JOIN keeps that order: by key from the candidates,
    # never a scan of every source's items. The texts are read for the shown hits only.
    "SELECT c.id, c.terms, i.source_pk, s.designation, i.kind, i.day, i.filename "
    "FROM (SELECT rowid AS id, terms FROM item_terms "
    "      WHERE item_terms MATCH :match ORDER BY rowid DESC LIMIT :candidates) AS c "
    "CROSS JOIN items AS i ON i.id = c.id "
    "CROSS JOIN sources AS s ON s.id = i.source_pk "
    "WHERE s.deleted = 0"
)
_BODIES = text("SELECT rowid, body FROM message_fts WHERE rowid IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_NOTES = text(
    "SELECT c.id, c.terms, n.source_pk, s.designation, n.day, n.text "
    "FROM (SELECT rowid AS id, terms FROM note_terms WHERE note_terms MATCH :match "
    "      ORDER BY rowid DESC LIMIT :candidates) AS c "
    "CROSS JOIN notes AS n ON n.id = c.id "
    "CROSS JOIN sources AS s ON s.id = n.source_pk "
    "WHERE s.deleted = 0"
)


def search(
    session: Session,
    query: str,
    limit: int = MAX_SEARCH_RESULTS,
    analyzer: Analyzer | None = None,
) -> list[SearchHit]:
    """Messages, replies, file names and notes with every word of ``query`` in some form,
    best first (BM25 among the newest SEARCH_CANDIDATES matches: triage.ranking), with
    highlighted snippets."""
    analyzer = analyzer or Analyzer()
    params = {"match": fts_query(query, analyzer), "candidates": SEARCH_CANDIDATES}
    wanted = query_words(analyzer, query)
    match = matcher(analyzer, query)
    items = session.execute(_ITEMS, params).all()
    notes = session.execute(_NOTES, params).all()
    scored = [
        (score, False, row)
        for score, row in zip(bm25(wanted, [str(r[1]) for r in items]), items, strict=True)
    ] + [
        (score, True, row)
        for score, row in zip(bm25(wanted, [str(r[1]) for r in notes]), notes, strict=True)
    ]
    # Best first; among equals, the newest.
    scored.sort(key=lambda entry: (-entry[0], -int(entry[2][0])))
    shown = scored[:limit]
    ids = [int(row[0]) for _, is_note, row in shown if not is_note]
    bodies: dict[int, str] = {}
    if ids:
        bodies = {int(i): str(b) for i, b in session.execute(_BODIES, {"ids": ids})}
    hits = []
    for _, is_note, row in shown:
        if is_note:
            note_id, _terms, source_pk, designation, day, note = row
            text_shown, item_id, kind, found_note = str(note), 0, "note", int(note_id)
        else:
            item_id, _terms, source_pk, designation, kind, day, filename = row
            body = bodies.get(int(item_id))
            text_shown, found_note = str(body if body is not None else filename or ""), None
        hits.append(
            SearchHit(
                int(item_id),
                int(source_pk),
                str(designation),
                str(kind),
                _day(day),
                snippet(analyzer, query, text_shown, match=match),
                found_note,
            )
        )
    return hits


def _day(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def snippet(
    analyzer: Analyzer,
    query: str,
    shown: str,
    width: int = SNIPPET_WORDS,
    match: Callable[[str], bool] | None = None,
) -> str:
    """About ``width`` words of ``shown`` around the first word the query finds, with every
    found word between MATCH_START and MATCH_END (the view escapes the text, then marks).
    ``match`` is :func:`~journalist_ui.store.terms.matcher` of the query, if made already.

    Only the words up to the first found one and those shown are looked at."""
    match = match or matcher(analyzer, query)
    shown = shown.replace(MATCH_START, "").replace(MATCH_END, "")
    spans = words(shown)
    first = next((n for n, (a, b) in enumerate(spans) if match(shown[a:b])), 0)
    begin = max(0, first - width // 4)
    end = min(len(spans), begin + width)
    if not spans:
        return shown[:200]
    out = ["…" if begin > 0 else ""]
    position = spans[begin][0]
    for a, b in spans[begin:end]:
        out.append(shown[position:a])
        out.append(MATCH_START + shown[a:b] + MATCH_END if match(shown[a:b]) else shown[a:b])
        position = b
    out.append("…" if end < len(spans) else shown[position:])
    return "".join(out)


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
