"""The source list and a source's conversation: what the triage pages show.

The source list is one aggregate query (counts of messages, files, replies and unread items
per source, grouped in SQL, with the filters and the sort applied there), so that it stays
fast with tens of thousands of sources; only the requested page comes back.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, select
from sqlalchemy.orm import Session

from journalist_ui.errors import StationError
from journalist_ui.store.models import Import, Item, Note, Read, Source, Status, Tally


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
    #: The hex key ids its envelope is sealed to, comma-separated.
    key_ids: str = ""


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
    elif len(conditions) == 1:  # no filter: the tally of sources not deleted (0005)
        total = session.scalar(select(Tally.n).where(Tally.name == "sources")) or 0
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
            key_ids=item.key_ids,
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


#: The header shows at most this many unread items ("1000+"): a number beyond it tells a
#: journalist nothing more.
UNREAD_COUNT_CAP = 1000


def journalists_unread(session: Session, journalist: str, cap: int = UNREAD_COUNT_CAP) -> int:
    """Incoming items this journalist has not read (for the header), at most ``cap``.

    Two rows of ``tallies`` (kept by triggers, migration 0004): the incoming items, and those
    this journalist has read; no count of the items themselves, however many there are.
    (Deleting a source deletes its items, so no item of a deleted source is counted.)"""
    incoming = session.scalar(select(Tally.n).where(Tally.name == "in")) or 0
    read = session.scalar(select(Tally.n).where(Tally.name == f"read:{journalist}")) or 0
    return max(0, min(incoming - read, cap))


def unacknowledged_imports(session: Session) -> int:
    """Imports whose acknowledgement has not gone out in an outbound bundle yet."""
    return int(
        session.execute(
            select(func.count(Import.id)).where(Import.acknowledged_bundle_id.is_(None))
        ).scalar_one()
    )
