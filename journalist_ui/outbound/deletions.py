"""Deleting locally at once, and queueing the deletion for the server.

A deletion removes the local copy at once (rows, search index, envelope files overwritten
and unlinked) and waits in the ``outgoing`` table for the next bundle to reach the server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from common.files import fsync_dir
from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.store import unindex_item, unindex_notes
from journalist_ui.store.models import Item, Note, Outgoing, Read, Source
from journalist_ui.unlock import Unlocked

Scope = Literal["item", "source_data", "source"]


def destroy_envelope(path: Path) -> None:
    """Overwrite a file with zeros, sync it, unlink it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(min(size, 1 << 20))
        written = 0
        while written < size:
            written += os.write(fd, zeros[: size - written])
        os.fsync(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _delete_items(
    session: Session, unlocked: Unlocked, items: Sequence[Item], source: Source, scope: str,
    now: datetime,
) -> list[str]:  # fmt: skip
    """Delete item rows and their traces; return the envelope names to destroy."""
    names = []
    for item in items:
        session.execute(delete(Read).where(Read.item_id == item.id))
        unindex_item(session, item.id)
        # A reply not sent yet is simply dropped; rows of sent ones keep no link to it.
        session.execute(
            delete(Outgoing).where(Outgoing.item_id == item.id, Outgoing.bundle_id.is_(None))
        )
        session.execute(update(Outgoing).where(Outgoing.item_id == item.id).values(item_id=None))
        detail: dict[str, str | int] = {
            "scope": scope,
            "source": source.designation,
            "kind": item.kind,
            "envelope_sha256": item.envelope_sha256,
        }
        if item.server_id is not None:
            detail["server_id"] = item.server_id
        if item.filename:
            detail["filename"] = item.filename
        ledger.record(
            session,
            event="delete",
            journalist=unlocked.journalist,
            item_ref=str(item.id),
            sha256=item.plaintext_sha256,
            detail=detail,
            now=now,
        )
        names.append(item.envelope_name)
        session.delete(item)
    return names


def queue_deletion(
    unlocked: Unlocked,
    *,
    scope: Scope,
    source_pk: int,
    item_id: int | None = None,
    today: date,
    now: datetime | None = None,
) -> None:
    """Delete locally now (rows, index, envelope files) and queue the server's deletion.

    ``item``: one item of the source (item_id); ``source_data``: every item and reply of
    the source, keeping the source; ``source``: the source too (its row stays, marked
    deleted and emptied, so that the queued deletion can still name it).
    """
    if scope not in ("item", "source_data", "source"):
        raise StationError(f"unknown deletion scope {scope!r}")
    if (scope == "item") != (item_id is not None):
        raise StationError("an item deletion names an item; other scopes name only the source")
    moment = datetime.now(UTC) if now is None else now
    with unlocked.store.session() as session:
        source = session.get(Source, source_pk)
        if source is None or source.deleted:
            raise StationError(f"no source {source_pk}")
        if scope == "item":
            item = session.get(Item, item_id)
            if item is None or item.source_pk != source.id:
                raise StationError(f"source {source.designation} has no item {item_id}")
            items: Sequence[Item] = [item]
            if item.server_id is not None:
                session.add(
                    Outgoing(
                        kind="deletion",
                        source_pk=source.id,
                        scope="item",
                        server_id=item.server_id,
                        created_day=today,
                        source_id=source.source_id,
                    )
                )
        else:
            items = session.scalars(select(Item).where(Item.source_pk == source.id)).all()
            session.add(
                Outgoing(
                    kind="deletion",
                    source_pk=source.id,
                    scope=scope,
                    created_day=today,
                    source_id=source.source_id,
                )
            )
        names = _delete_items(session, unlocked, items, source, scope, moment)
        if scope == "source":
            unindex_notes(
                session, session.scalars(select(Note.id).where(Note.source_pk == source.id))
            )
            session.execute(delete(Note).where(Note.source_pk == source.id))
            source.deleted = True
            source.starred = False
            source.assigned_to = None
            ledger.record(
                session,
                event="delete",
                journalist=unlocked.journalist,
                item_ref=None,
                sha256=None,
                detail={"scope": "source", "source": source.designation},
                now=moment,
            )
    # Only once the rows are gone for good are the files destroyed.
    for name in names:
        destroy_envelope(unlocked.layout.envelopes / name)
    fsync_dir(unlocked.layout.envelopes)
    ledger.update_head(unlocked.store, unlocked.layout.ledger_head)
