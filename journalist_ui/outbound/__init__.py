"""Replies, deletions and acknowledgements, and the signed outbound bundle that carries them.

docs/format.md section 11 is the bundle; the server applies it. A reply is sealed to the
source's reply public key (section 5.2) and to every recipient of the station's newest
keyring, so the team can read it later too; it is stored as an outgoing item at once and
waits in the ``outgoing`` table for the next bundle. A deletion removes the local copy at
once (rows, search index, envelope files overwritten and unlinked) and waits for the next
bundle to reach the server. Every import whose items were not yet acknowledged is
acknowledged in the next bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from crypto import FormatError, Kind, parse_header, seal_bytes
from crypto.bundle import MAX_ACKNOWLEDGED, MAX_REPLIES, MAX_REPLY, Deletion, write_outbound_bundle
from journalist_ui import fs, ledger
from journalist_ui.errors import StationError
from journalist_ui.store import index_messages
from journalist_ui.store.models import Import, Item, Note, Outgoing, Read, Source
from journalist_ui.unlock import Unlocked, latest_keyring_recipients

Scope = Literal["item", "source_data", "source"]
#: Longest reply text, in UTF-8 bytes (its envelope must stay within the format's 16 MiB).
MAX_REPLY_TEXT = MAX_REPLY - 64 * 1024


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


# -- replies ---------------------------------------------------------------------------------


def queue_reply(
    unlocked: Unlocked, source_pk: int, text_: str, *, today: date, now: datetime | None = None
) -> Item:
    """Seal a reply to the source and the team, store it, queue it for the next bundle."""
    body = text_.encode("utf-8")
    if not text_.strip():
        raise StationError("a reply needs some text")
    if len(body) > MAX_REPLY_TEXT:
        raise StationError(f"a reply is at most {MAX_REPLY_TEXT} bytes of text")
    layout = unlocked.layout
    team = latest_keyring_recipients(layout)
    created: Path | None = None
    try:
        with unlocked.store.session() as session:
            source = session.get(Source, source_pk)
            if source is None or source.deleted:
                raise StationError(f"no source {source_pk}")
            recipients = list(dict.fromkeys([source.reply_public_key, *team]))
            envelope = seal_bytes(body, recipients, Kind.REPLY)
            header = parse_header(envelope)
            name = secrets.token_hex(16)
            path = layout.envelopes / name
            fs.create_private_file(path, envelope)
            created = path
            sha256 = hashlib.sha256(body).hexdigest()
            item = Item(
                source_pk=source.id,
                server_id=None,
                direction="out",
                kind="reply",
                day=today,
                envelope_name=name,
                envelope_size=len(envelope),
                envelope_sha256=hashlib.sha256(envelope).hexdigest(),
                plaintext_size=len(body),
                plaintext_sha256=sha256,
                key_ids=",".join(sorted(k.hex() for k in header.key_ids)),
                author=unlocked.journalist,
                decryptable=True,
            )
            session.add(item)
            session.flush()
            index_messages(session, [(item.id, text_)])
            session.add(
                Outgoing(
                    kind="reply",
                    source_pk=source.id,
                    item_id=item.id,
                    created_day=today,
                    source_id=source.source_id,
                )
            )
            source.last_day = max(source.last_day, today)
            ledger.record(
                session,
                event="reply",
                journalist=unlocked.journalist,
                item_ref=str(item.id),
                sha256=sha256,
                detail={"source": source.designation, "size": len(body)},
                now=_now(now),
            )
            session.flush()
    except BaseException:
        # Not recorded (nothing was committed): the file must not stay behind.
        if created is not None:
            _destroy(created)
        raise
    ledger.update_head(unlocked.store, layout.ledger_head)
    return item


# -- deletions -------------------------------------------------------------------------------


def _destroy(path: Path) -> None:
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
        session.execute(text("DELETE FROM message_fts WHERE item_id = :id"), {"id": item.id})
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
    moment = _now(now)
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
        _destroy(unlocked.layout.envelopes / name)
    fs.fsync_dir(unlocked.layout.envelopes)
    ledger.update_head(unlocked.store, unlocked.layout.ledger_head)


# -- the outbound bundle ---------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundResult:
    path: Path
    bundle_id: str
    replies: int
    deletions: int
    acknowledged: int


def export_outbound(
    unlocked: Unlocked, out_dir: Path, *, today: date, now: datetime | None = None
) -> OutboundResult | None:
    """Write every pending reply, deletion and acknowledgement into one signed bundle in
    out_dir (created if missing); None when nothing is pending."""
    layout = unlocked.layout
    with unlocked.store.session() as session:
        pending = session.scalars(
            select(Outgoing).where(Outgoing.bundle_id.is_(None)).order_by(Outgoing.id)
        ).all()
        reply_rows = [o for o in pending if o.kind == "reply"][:MAX_REPLIES]
        deletion_rows = [o for o in pending if o.kind == "deletion"]
        imports = session.scalars(
            select(Import).where(Import.acknowledged_bundle_id.is_(None)).order_by(Import.id)
        ).all()
        acked_imports: list[Import] = []
        acknowledged: list[str] = []
        for record in imports:
            ids = [
                server_id
                for server_id in session.scalars(
                    select(Item.server_id).where(Item.import_id == record.id)
                )
                if server_id is not None
            ]
            if len(acknowledged) + len(ids) > MAX_ACKNOWLEDGED:
                break
            acked_imports.append(record)
            acknowledged.extend(ids)
        # Items a later bundle repeated (their first acknowledgement may be lost).
        ack_rows = []
        seen = set(acknowledged)
        for row in pending:
            if row.kind != "ack" or row.server_id is None:
                continue
            if row.server_id not in seen:
                if len(acknowledged) >= MAX_ACKNOWLEDGED:
                    break
                acknowledged.append(row.server_id)
                seen.add(row.server_id)
            ack_rows.append(row)
        if not reply_rows and not deletion_rows and not acked_imports and not ack_rows:
            return None
        replies: list[tuple[bytes, bytes]] = []
        for row in reply_rows:
            item = session.get(Item, row.item_id) if row.item_id is not None else None
            if item is None or row.source_id is None:
                continue
            envelope = (layout.envelopes / item.envelope_name).read_bytes()
            if hashlib.sha256(envelope).hexdigest() != item.envelope_sha256:
                raise StationError(f"the stored envelope of reply {item.id} is damaged")
            replies.append((bytes.fromhex(row.source_id), envelope))
        deletions: list[Deletion] = []
        for row in deletion_rows:
            if row.scope == "item" and row.server_id is not None:
                deletion = Deletion("item", id=row.server_id)
            elif row.scope in ("source_data", "source") and row.source_id is not None:
                deletion = Deletion(row.scope, source_id=bytes.fromhex(row.source_id))  # type: ignore[arg-type]
            else:
                continue
            if deletion not in deletions:
                deletions.append(deletion)
        bundle_id = os.urandom(16)
        path = _write_bundle(unlocked, out_dir, bundle_id, today, replies, deletions, acknowledged)
        try:
            for row in [*reply_rows, *deletion_rows, *ack_rows]:
                row.bundle_id = bundle_id.hex()
            for record in acked_imports:
                record.acknowledged_bundle_id = bundle_id.hex()
            ledger.record(
                session,
                event="outbound",
                journalist=unlocked.journalist,
                item_ref=None,
                sha256=_file_sha256(path),
                detail={
                    "bundle_id": bundle_id.hex(),
                    "replies": len(replies),
                    "deletions": len(deletions),
                    "acknowledged": len(acknowledged),
                },
                now=_now(now),
            )
            # Committed here, so that a bundle file exists only for a committed export
            # (a second bundle with the same replies would deliver them twice).
            session.commit()
        except BaseException:
            path.unlink()
            raise
    ledger.update_head(unlocked.store, layout.ledger_head)
    return OutboundResult(path, bundle_id.hex(), len(replies), len(deletions), len(acknowledged))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _write_bundle(
    unlocked: Unlocked, out_dir: Path, bundle_id: bytes, today: date,
    replies: list[tuple[bytes, bytes]], deletions: list[Deletion], acknowledged: list[str],
) -> Path:  # fmt: skip
    if not out_dir.exists():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        fs.make_private_dir(out_dir)
    if not out_dir.is_dir():
        raise StationError(f"{out_dir} is not a directory")
    final = out_dir / f"outbound-{bundle_id.hex()}.bundle"
    fd, temp_name = tempfile.mkstemp(prefix=".outbound-", suffix=".tmp", dir=out_dir)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                write_outbound_bundle(
                    out,
                    signing_key=unlocked.signing_key,
                    made=today,
                    replies=replies,
                    deletions=deletions,
                    acknowledged=acknowledged,
                    bundle_id=bundle_id,
                )
            except FormatError as exc:
                raise StationError(f"cannot write the outbound bundle: {exc}") from None
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, fs.FILE_MODE)
        # Never replaces an existing file, also on removable media without hard links.
        final = fs.link_without_replacing(temp, out_dir, [final.name])
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return final


__all__ = ["OutboundResult", "export_outbound", "queue_deletion", "queue_reply"]
