"""Triage use cases: the source list, a conversation, read state, stars, statuses,
assignment, notes, full-text search, duplicates and bulk actions.

Every function takes an open SQLAlchemy session of the station store (and the journalist
acting, where it matters) and neither decrypts nor renders anything: decrypted text comes
from :mod:`journalist_ui.content`, and the web views escape whatever they show.

The source list is one aggregate query (counts of messages, files, replies and unread items
per source, grouped in SQL, with the filters and the sort applied there), so that it stays
fast with tens of thousands of sources; only the requested page comes back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, delete, exists, func, select, text, update
from sqlalchemy.orm import Session

from journalist_ui.errors import StationError
from journalist_ui.store.models import Import, Item, Note, Read, Source, Status

#: Longest note and search query accepted.
MAX_NOTE_CHARS = 10_000
MAX_QUERY_CHARS = 200
MAX_SEARCH_RESULTS = 200
#: Marks around matched words in a search snippet (private-use characters, replaced by the
#: view after escaping; a message containing them can only add harmless <mark> tags).
MATCH_START = "\ue000"
MATCH_END = "\ue001"


class Sort(enum.Enum):
    LAST_ACTIVITY = "last"
    FIRST_ACTIVITY = "first"
    DESIGNATION = "designation"
    UNREAD = "unread"
    STATUS = "status"


@dataclass(frozen=True)
class SourceFilter:
    status: str | None = None
    starred: bool = False
    unread: bool = False
    #: A journalist's name, "" for unassigned sources, None for any.
    assigned_to: str | None = None
    #: Part of the designation.
    designation: str = ""


@dataclass(frozen=True)
class SourceRow:
    id: int
    designation: str
    status: str
    starred: bool
    assigned_to: str | None
    first_day: date
    last_day: date
    messages: int
    files: int
    replies: int
    unread: int


@dataclass(frozen=True)
class SourcePage:
    rows: list[SourceRow]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class ItemRow:
    id: int
    direction: str
    kind: str
    day: date
    filename: str | None
    media_type: str | None
    size: int | None
    sha256: str | None
    decryptable: bool
    author: str | None
    read: bool
    #: How many other items (of any source) have the same plaintext.
    duplicates: int


@dataclass(frozen=True)
class NoteRow:
    id: int
    author: str
    day: date
    text: str


@dataclass(frozen=True)
class Conversation:
    source: SourceRow
    items: list[ItemRow]
    notes: list[NoteRow]


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


# -- the source list -------------------------------------------------------------------------


def _unread_count() -> ColumnElement[int]:
    return func.count(case((and_(Item.direction == "in", Read.item_id.is_(None)), 1)))


def _source_rows_query(journalist: str) -> Select[*tuple[Any, ...]]:
    return (
        select(
            Source.id,
            Source.designation,
            Source.status,
            Source.starred,
            Source.assigned_to,
            Source.first_day,
            Source.last_day,
            func.count(case((Item.kind == "message", 1))).label("messages"),
            func.count(case((Item.kind == "file", 1))).label("files"),
            func.count(case((Item.kind == "reply", 1))).label("replies"),
            _unread_count().label("unread"),
        )
        .select_from(Source)
        .outerjoin(Item, Item.source_pk == Source.id)
        .outerjoin(Read, and_(Read.item_id == Item.id, Read.journalist == journalist))
        .where(Source.deleted.is_(False))
        .group_by(Source.id)
    )


def _row(values: Sequence[object]) -> SourceRow:
    return SourceRow(*values)  # type: ignore[arg-type]


def list_sources(
    session: Session,
    journalist: str,
    *,
    filters: SourceFilter = SourceFilter(),
    sort: Sort = Sort.LAST_ACTIVITY,
    page: int = 1,
    page_size: int = 100,
) -> SourcePage:
    """One page of the source list, with counts, filtered and sorted in SQL."""
    conditions: list[ColumnElement[bool]] = [Source.deleted.is_(False)]
    if filters.status:
        conditions.append(Source.status == filters.status)
    if filters.starred:
        conditions.append(Source.starred.is_(True))
    if filters.assigned_to == "":
        conditions.append(Source.assigned_to.is_(None))
    elif filters.assigned_to is not None:
        conditions.append(Source.assigned_to == filters.assigned_to)
    if filters.designation.strip():
        pattern = "%" + _escape_like(filters.designation.strip().lower()) + "%"
        conditions.append(Source.designation.like(pattern, escape="\\"))
    query = _source_rows_query(journalist).where(*conditions)
    if filters.unread:
        query = query.having(_unread_count() > 0)
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    else:  # the other filters are on the sources table alone: count without the joins
        total = session.execute(select(func.count(Source.id)).where(*conditions)).scalar_one()
    unread = _unread_count()
    order = {
        Sort.LAST_ACTIVITY: (Source.last_day.desc(), Source.id.desc()),
        Sort.FIRST_ACTIVITY: (Source.first_day.asc(), Source.id.asc()),
        Sort.DESIGNATION: (Source.designation.asc(),),
        Sort.UNREAD: (unread.desc(), Source.last_day.desc(), Source.id.desc()),
        Sort.STATUS: (
            select(Status.position).where(Status.name == Source.status).scalar_subquery(),
            Source.last_day.desc(),
            Source.id.desc(),
        ),
    }[sort]
    page = max(1, page)
    offset = (page - 1) * page_size
    if filters.unread or sort is Sort.UNREAD:
        rows = session.execute(query.order_by(*order).limit(page_size).offset(offset)).all()
    else:
        # Pick the page on the sources table alone, then count items for those sources only.
        chosen = (
            select(Source.id).where(*conditions).order_by(*order).limit(page_size).offset(offset)
        )
        rows = session.execute(query.where(Source.id.in_(chosen)).order_by(*order)).all()
    return SourcePage([_row(r) for r in rows], total, page, page_size)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_source(session: Session, journalist: str, source_pk: int) -> SourceRow:
    row = session.execute(_source_rows_query(journalist).where(Source.id == source_pk)).first()
    if row is None:
        raise StationError(f"no source {source_pk}")
    return _row(row)


def conversation(session: Session, journalist: str, source_pk: int) -> Conversation:
    """A source with every item (oldest first) and the notes about it."""
    source = get_source(session, journalist, source_pk)
    other = Item.__table__.alias("other")
    duplicates = (
        select(func.count())
        .select_from(other)
        .where(other.c.plaintext_sha256 == Item.plaintext_sha256, other.c.id != Item.id)
        .correlate(Item)
        .scalar_subquery()
    )
    is_read = exists().where(Read.item_id == Item.id, Read.journalist == journalist)
    rows = session.execute(
        select(Item, is_read, duplicates)
        .where(Item.source_pk == source_pk)
        .order_by(Item.day, Item.id)
    ).all()
    items = [
        ItemRow(
            id=item.id,
            direction=item.direction,
            kind=item.kind,
            day=item.day,
            filename=item.filename,
            media_type=item.media_type,
            size=item.plaintext_size,
            sha256=item.plaintext_sha256,
            decryptable=item.decryptable,
            author=item.author,
            read=bool(read) or item.direction == "out",
            duplicates=int(dups) if item.plaintext_sha256 else 0,
        )
        for item, read, dups in rows
    ]
    notes = [
        NoteRow(n.id, n.author, n.day, n.text)
        for n in session.scalars(select(Note).where(Note.source_pk == source_pk).order_by(Note.id))
    ]
    return Conversation(source, items, notes)


def get_item(session: Session, item_id: int) -> Item:
    """An item of a source that is not deleted."""
    item = session.execute(
        select(Item)
        .join(Source, Source.id == Item.source_pk)
        .where(Item.id == item_id, Source.deleted.is_(False))
    ).scalar_one_or_none()
    if item is None:
        raise StationError(f"no item {item_id}")
    return item


# -- read state, stars, statuses, assignment, notes --------------------------------------------


def mark_read(session: Session, journalist: str, item_ids: Iterable[int], read: bool = True) -> int:
    """Mark items read (or unread) for this journalist; how many changed."""
    ids = sorted(set(item_ids))
    if not ids:
        return 0
    if not read:
        result = session.execute(
            delete(Read).where(Read.journalist == journalist, Read.item_id.in_(ids))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
    existing = set(
        session.scalars(
            select(Read.item_id).where(Read.journalist == journalist, Read.item_id.in_(ids))
        )
    )
    known = set(session.scalars(select(Item.id).where(Item.id.in_(ids))))
    new = [i for i in ids if i in known and i not in existing]
    session.add_all(Read(journalist=journalist, item_id=i) for i in new)
    return len(new)


def mark_source_read(
    session: Session, journalist: str, source_pks: Iterable[int], read: bool
) -> int:
    pks = sorted(set(source_pks))
    ids = session.scalars(select(Item.id).where(Item.source_pk.in_(pks))).all()
    return mark_read(session, journalist, ids, read)


def _existing_sources(session: Session, source_pks: Iterable[int]) -> list[int]:
    pks = sorted(set(source_pks))
    if not pks:
        raise StationError("no source selected")
    found = list(
        session.scalars(select(Source.id).where(Source.id.in_(pks), Source.deleted.is_(False)))
    )
    if len(found) != len(pks):
        raise StationError("some selected sources no longer exist; reload the list")
    return found


def set_starred(session: Session, source_pks: Iterable[int], starred: bool) -> int:
    pks = _existing_sources(session, source_pks)
    session.execute(update(Source).where(Source.id.in_(pks)).values(starred=starred))
    return len(pks)


def statuses(session: Session) -> list[str]:
    return list(session.scalars(select(Status.name).order_by(Status.position, Status.name)))


def set_status(session: Session, source_pks: Iterable[int], status: str) -> int:
    if status not in statuses(session):
        raise StationError(f"unknown status {status!r}")
    pks = _existing_sources(session, source_pks)
    session.execute(update(Source).where(Source.id.in_(pks)).values(status=status))
    return len(pks)


def assign(
    session: Session, source_pks: Iterable[int], journalist: str | None, known: Sequence[str]
) -> int:
    """Assign sources to a journalist of this station (``known``), or to nobody (None)."""
    if journalist is not None and journalist not in known:
        raise StationError(f"no journalist {journalist!r} on this station")
    pks = _existing_sources(session, source_pks)
    session.execute(update(Source).where(Source.id.in_(pks)).values(assigned_to=journalist))
    return len(pks)


def add_note(session: Session, source_pk: int, author: str, note: str, today: date) -> Note:
    note = note.strip()
    if not note:
        raise StationError("the note is empty")
    if len(note) > MAX_NOTE_CHARS:
        raise StationError(f"a note is at most {MAX_NOTE_CHARS} characters")
    _existing_sources(session, [source_pk])
    row = Note(source_pk=source_pk, author=author, day=today, text=note)
    session.add(row)
    session.flush()
    return row


def delete_note(session: Session, note_id: int, author: str) -> None:
    note = session.get(Note, note_id)
    if note is None:
        raise StationError(f"no note {note_id}")
    if note.author != author:
        raise StationError("only the author of a note can delete it")
    session.delete(note)


# -- bulk actions --------------------------------------------------------------------------------


class BulkAction(enum.Enum):
    STAR = "star"
    UNSTAR = "unstar"
    READ = "read"
    UNREAD = "unread"
    STATUS = "status"
    ASSIGN = "assign"


def bulk(
    session: Session,
    journalist: str,
    source_pks: Sequence[int],
    action: BulkAction,
    value: str = "",
    known_journalists: Sequence[str] = (),
) -> int:
    """Apply one action to every selected source; how many sources (or items) changed."""
    if action is BulkAction.STAR:
        return set_starred(session, source_pks, True)
    if action is BulkAction.UNSTAR:
        return set_starred(session, source_pks, False)
    if action in (BulkAction.READ, BulkAction.UNREAD):
        pks = _existing_sources(session, source_pks)
        return mark_source_read(session, journalist, pks, action is BulkAction.READ)
    if action is BulkAction.STATUS:
        return set_status(session, source_pks, value)
    return assign(session, source_pks, value or None, known_journalists)


# -- search and duplicates -------------------------------------------------------------------------


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


def journalists_unread(session: Session, journalist: str) -> int:
    """Incoming items this journalist has not read (for the header)."""
    return int(
        session.execute(
            select(func.count(Item.id))
            .join(Source, and_(Source.id == Item.source_pk, Source.deleted.is_(False)))
            .where(
                Item.direction == "in",
                ~exists().where(Read.item_id == Item.id, Read.journalist == journalist),
            )
        ).scalar_one()
    )


def unacknowledged_imports(session: Session) -> int:
    """Imports whose acknowledgement has not gone out in an outbound bundle yet."""
    return int(
        session.execute(
            select(func.count(Import.id)).where(Import.acknowledged_bundle_id.is_(None))
        ).scalar_one()
    )


# -- the configurable list of statuses -----------------------------------------------------------

MAX_STATUS_CHARS = 40


def add_status(session: Session, name: str) -> str:
    """Add a status at the end of the list."""
    name = " ".join(name.split()).lower()
    if not name or len(name) > MAX_STATUS_CHARS or not name.isprintable():
        raise StationError(f"a status is 1 to {MAX_STATUS_CHARS} printable characters")
    if session.get(Status, name) is not None:
        raise StationError(f"the status {name!r} exists already")
    last = session.execute(select(func.max(Status.position))).scalar_one()
    session.add(Status(name=name, position=(last or 0) + 1))
    return name


def remove_status(session: Session, name: str) -> None:
    """Remove a status no source has (sources keep their status: move them first)."""
    status = session.get(Status, name)
    if status is None:
        raise StationError(f"no status {name!r}")
    used = session.execute(
        select(func.count(Source.id)).where(Source.status == name, Source.deleted.is_(False))
    ).scalar_one()
    if used:
        raise StationError(
            f"{used} source{'s have' if used != 1 else ' has'} the status {name!r}: "
            "give them another status first"
        )
    if session.execute(select(func.count()).select_from(Status)).scalar_one() == 1:
        raise StationError("the last status cannot be removed")
    session.delete(status)


def move_status(session: Session, name: str, step: int) -> None:
    """Move a status one place up (step -1) or down (step 1) in the list."""
    order = statuses(session)
    if name not in order:
        raise StationError(f"no status {name!r}")
    index = order.index(name)
    other = index + (1 if step > 0 else -1)
    if not 0 <= other < len(order):
        return
    order[index], order[other] = order[other], order[index]
    for position, status in enumerate(order, start=1):
        session.execute(update(Status).where(Status.name == status).values(position=position))


def status_counts(session: Session) -> list[tuple[str, int]]:
    """Every status in order with how many sources have it."""
    counts = dict(
        session.execute(
            select(Source.status, func.count(Source.id))
            .where(Source.deleted.is_(False))
            .group_by(Source.status)
        ).all()
    )
    return [(name, int(counts.get(name, 0))) for name in statuses(session)]
