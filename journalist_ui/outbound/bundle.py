"""The signed outbound bundle (docs/format.md section 11) that carries every pending reply,
deletion and acknowledgement to the server, which applies it.

Every import whose items were not yet acknowledged is acknowledged in the next bundle, and
so is every item a later bundle repeated.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from common.files import sha256_file
from crypto import FormatError
from crypto.bundle import MAX_ACKNOWLEDGED, MAX_REPLIES, Deletion, write_outbound_bundle
from journalist_ui import fs, ledger
from journalist_ui.errors import StationError
from journalist_ui.store.models import Import, Item, Outgoing
from journalist_ui.unlock import Unlocked


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
                sha256=sha256_file(path),
                detail={
                    "bundle_id": bundle_id.hex(),
                    "replies": len(replies),
                    "deletions": len(deletions),
                    "acknowledged": len(acknowledged),
                },
                now=datetime.now(UTC) if now is None else now,
            )
            # Committed here, so that a bundle file exists only for a committed export
            # (a second bundle with the same replies would deliver them twice).
            session.commit()
        except BaseException:
            path.unlink()
            raise
    ledger.update_head(unlocked.store, layout.ledger_head)
    return OutboundResult(path, bundle_id.hex(), len(replies), len(deletions), len(acknowledged))


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
