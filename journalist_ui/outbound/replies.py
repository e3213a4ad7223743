"""Replies: sealed to the source and the team, stored at once, queued for the next bundle.

A reply is sealed to the source's reply public key (docs/format.md section 5.2) and to every
recipient of the station's newest keyring, so the team can read it later too; it is stored
as an outgoing item at once and waits in the ``outgoing`` table for the next bundle.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime
from pathlib import Path

from crypto import Kind, parse_header, seal_bytes
from crypto.bundle import MAX_REPLY
from journalist_ui import fs, ledger
from journalist_ui.errors import StationError
from journalist_ui.outbound.deletions import destroy_envelope
from journalist_ui.store import index_messages
from journalist_ui.store.models import Item, Outgoing, Source
from journalist_ui.unlock import Unlocked, latest_keyring_recipients

#: Longest reply text, in UTF-8 bytes (its envelope must stay within the format's 16 MiB).
MAX_REPLY_TEXT = MAX_REPLY - 64 * 1024


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
                now=datetime.now(UTC) if now is None else now,
            )
            session.flush()
    except BaseException:
        # Not recorded (nothing was committed): the file must not stay behind.
        if created is not None:
            destroy_envelope(created)
        raise
    ledger.update_head(unlocked.store, layout.ledger_head)
    return item
