"""Recording an import in the store: the import, its sources and items, their ledger events
and the search index of the messages' text, inserted in bulk in one transaction.

A bundle already imported adds nothing; items already present (same id, same envelope, or
an earlier state of an envelope that was rewrapped since) are skipped and acknowledged
again; an item that differs from the one already imported refuses the whole bundle.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from crypto.bundle import InboundManifest
from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.importer.contents import Opened
from journalist_ui.store.designations import designation_for
from journalist_ui.store.models import Import, Item, LedgerRecord, Outgoing, Source
from journalist_ui.store.search_index import index_terms
from journalist_ui.unlock import Unlocked


@dataclass(frozen=True)
class Written:
    imported: int
    sources_new: int
    undecryptable: int
    item_ids: tuple[int, ...]


def bundle_imported(session: Session, bundle_sha256: str) -> bool:
    """Whether the bundle with this SHA-256 was imported already."""
    found = session.scalar(select(Import.id).where(Import.bundle_sha256 == bundle_sha256))
    return found is not None


def record_import(
    session: Session,
    unlocked: Unlocked,
    manifest: InboundManifest,
    bundle_sha256: str,
    present: frozenset[str],
    opened: list[Opened],
    today: date,
    now: datetime,
    mark: Callable[[str], None] = lambda _phase: None,
) -> Written:
    """Record the new items (``opened``) of a bundle whose items ``present`` were already
    in the store when it was read; refuse it if the store changed since. ``mark`` is
    called as the rows are written ("record") and as the search index is ("index")."""
    if already_present(session, manifest) != present:
        raise StationError("the store changed during the import: import again")
    written = _write(session, unlocked, manifest, bundle_sha256, opened, today, now, mark)
    # Items the server sent again are acknowledged again: the bundle that acknowledged them
    # first may never have reached the server.
    if present:
        session.execute(
            insert(Outgoing),
            [
                {"kind": "ack", "server_id": server_id, "created_day": today}
                for server_id in sorted(present, key=int)
            ],
        )
    return written


def already_present(session: Session, manifest: InboundManifest) -> frozenset[str]:
    """The manifest's items already in the store; refuse an id whose content differs.

    An item that ``journalist keys rewrap`` re-sealed is stored under another SHA-256 than
    it arrived with; it is the same item when a ``rewrap`` ledger event of it names the
    received hash as an earlier state (section 13.4).
    """
    present = set()
    ids = [item.id for item in manifest.items]
    known: dict[str, tuple[int, str, str]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Item.server_id, Item.id, Item.envelope_sha256, Source.source_id)
            .join(Source, Source.id == Item.source_pk)
            .where(Item.server_id.in_(ids[start : start + 500]))
        ).all()
        for server_id, local_id, envelope_sha256, source_id in rows:
            known[str(server_id)] = (local_id, envelope_sha256, source_id)
    for item in manifest.items:
        if item.id not in known:
            continue
        local_id, envelope_sha256, source_id = known[item.id]
        received = item.sha256.hex()
        same = hmac.compare_digest(envelope_sha256, received) or received in _rewrapped_from(
            session, local_id
        )
        if not same or source_id != item.source_id.hex():
            raise StationError(
                f"item {item.id} of this bundle differs from the item {item.id} already "
                "imported (another envelope or source): the bundle is refused"
            )
        present.add(item.id)
    return frozenset(present)


def _rewrapped_from(session: Session, local_id: int) -> set[str]:
    """The envelope hashes an item had before each rewrap of it (its ledger says)."""
    before = set()
    details = session.scalars(
        select(LedgerRecord.detail).where(
            LedgerRecord.event == "rewrap", LedgerRecord.item_ref == str(local_id)
        )
    )
    for detail in details:
        try:
            value = json.loads(detail).get("envelope_before")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str):
            before.add(value)
    return before


def _write(
    session: Session,
    unlocked: Unlocked,
    manifest: InboundManifest,
    bundle_sha256: str,
    opened: list[Opened],
    today: date,
    now: datetime,
    mark: Callable[[str], None],
) -> Written:
    """Insert everything in bulk: ids are assigned here, under the transaction's write lock
    (BEGIN IMMEDIATE), so rows need no flush one by one."""
    record = Import(
        bundle_sha256=bundle_sha256,
        made=manifest.made,
        server_key=manifest.server_key.hex(),
        keyring_serial=manifest.keyring_serial,
        items=len(opened),
        day=today,
        undecryptable=sum(1 for entry in opened if not entry.decryptable),
    )
    session.add(record)
    session.flush()
    wanted = sorted({entry.item.source_id.hex() for entry in opened})
    sources: dict[str, Source] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for found in session.scalars(select(Source).where(Source.source_id.in_(chunk))):
            sources[found.source_id] = found
    taken: set[str] | None = None
    next_source = (session.scalar(select(func.max(Source.id))) or 0) + 1
    next_item = (session.scalar(select(func.max(Item.id))) or 0) + 1
    new_sources: dict[str, dict[str, object]] = {}
    item_rows: list[dict[str, object]] = []
    fts_rows: list[tuple[int, str | None, str]] = []
    appender = ledger.Appender(session)
    for entry in opened:
        item = entry.item
        source_hex = item.source_id.hex()
        existing = sources.get(source_hex)
        if existing is not None:
            if existing.reply_public_key != item.reply_public_key:
                raise StationError(
                    f"item {item.id} names source {existing.designation} with another reply "
                    "key than before: the bundle is refused"
                )
            existing.first_day = min(existing.first_day, item.day)
            existing.last_day = max(existing.last_day, item.day)
            existing.deleted = False
            source_pk, designation = existing.id, existing.designation
        elif source_hex in new_sources:
            row = new_sources[source_hex]
            if row["reply_public_key"] != item.reply_public_key:
                raise StationError(
                    f"item {item.id} names source {row['designation']} with another reply "
                    "key than another item of the bundle: the bundle is refused"
                )
            row["first_day"] = min(cast(date, row["first_day"]), item.day)
            row["last_day"] = max(cast(date, row["last_day"]), item.day)
            source_pk, designation = cast(int, row["id"]), cast(str, row["designation"])
        else:
            if taken is None:
                taken = set(session.scalars(select(Source.designation)))
            designation = designation_for(source_hex, taken)
            taken.add(designation)
            source_pk = next_source
            next_source += 1
            new_sources[source_hex] = {
                "id": source_pk,
                "source_id": source_hex,
                "reply_public_key": item.reply_public_key,
                "designation": designation,
                "status": "new",
                "starred": False,
                "assigned_to": None,
                "first_day": item.day,
                "last_day": item.day,
                "deleted": False,
            }
        item_pk = next_item
        next_item += 1
        item_rows.append(
            {
                "id": item_pk,
                "source_pk": source_pk,
                "server_id": item.id,
                "direction": "in",
                "kind": entry.kind,
                "day": item.day,
                "envelope_name": entry.final_name,
                "envelope_size": item.size,
                "envelope_sha256": item.sha256.hex(),
                "filename": entry.filename,
                "media_type": entry.media_type,
                "plaintext_size": entry.plaintext_size,
                "plaintext_sha256": entry.plaintext_sha256,
                "key_ids": entry.key_ids,
                "import_id": record.id,
                "author": None,
                "decryptable": entry.decryptable,
            }
        )
        if entry.terms is not None:
            fts_rows.append((item_pk, entry.body, entry.terms))
        detail: dict[str, str | int] = {
            "bundle": bundle_sha256,
            "server_id": item.id,
            "source": designation,
            "kind": entry.kind,
            "envelope_size": item.size,
        }
        if entry.decryptable:
            detail["plaintext_sha256"] = entry.plaintext_sha256 or ""
            detail["plaintext_size"] = entry.plaintext_size or 0
            if entry.filename:
                detail["filename"] = entry.filename
        else:
            detail["undecryptable"] = 1
        appender.add(
            event="import",
            journalist=unlocked.journalist,
            item_ref=str(item_pk),
            sha256=item.sha256.hex(),
            detail=detail,
            now=now,
        )
    if not opened:
        appender.add(
            event="import",
            journalist=unlocked.journalist,
            item_ref=None,
            sha256=None,
            detail={"bundle": bundle_sha256, "items": 0},
            now=now,
        )
    if new_sources:
        session.execute(insert(Source), list(new_sources.values()))
    if item_rows:
        session.execute(insert(Item), item_rows)
    appender.flush()
    session.flush()
    mark("record")
    # The terms were worked out as each envelope was decrypted (contents.open_received).
    index_terms(session, fts_rows)
    mark("index")
    return Written(
        len(opened),
        len(new_sources),
        record.undecryptable,
        tuple(cast(int, row["id"]) for row in item_rows),
    )
