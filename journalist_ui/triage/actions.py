"""What a journalist does to sources: read state, stars, statuses, assignment, notes, and
the bulk actions of the source list."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from journalist_ui.errors import StationError
from journalist_ui.store import index_note, unindex_notes
from journalist_ui.store.models import Item, Note, Read, Source
from journalist_ui.triage.statuses import statuses

#: Longest note accepted.
MAX_NOTE_CHARS = 10_000


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
    index_note(session, row.id, note)
    return row


def delete_note(session: Session, note_id: int, author: str) -> None:
    note = session.get(Note, note_id)
    if note is None:
        raise StationError(f"no note {note_id}")
    if note.author != author:
        raise StationError("only the author of a note can delete it")
    unindex_notes(session, [note.id])
    session.delete(note)


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
