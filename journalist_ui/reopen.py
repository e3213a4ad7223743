"""Items no key could open at their import, opened later with another journalist's keys.

Whether an incoming envelope decrypts is found at import, with the keys of the journalist
who imports. On a station with several journalists that can be the wrong person: while a
new journalist's key is not yet in the keyring installed on the server, envelopes are not
sealed to it, and if that journalist imports them they are kept but marked undecryptable
(``Item.decryptable`` False), though every other journalist could open them.

:func:`reopen_items` tries the unlocked journalist's keys on each such item whose envelope
header names one of them. Each item that opens gets what its import would have given it (its
kind, file name, media type, plaintext size and SHA-256, and a message's text for search)
and a ``reopen`` event in the evidence ledger. The station runs it whenever a journalist
unlocks (the web UI's unlock page and every ``journalist`` command that unlocks).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from journalist_ui import ledger
from journalist_ui.importer import Contents, read_contents
from journalist_ui.store import index_items
from journalist_ui.store.models import Item
from journalist_ui.unlock import Unlocked


def reopen_items(unlocked: Unlocked, *, now: datetime) -> int:
    """Open what this journalist's keys can of the items marked undecryptable; return how
    many now decrypt. Items whose envelope file is missing stay as they are."""
    mine = {key.key_id.hex() for key in unlocked.encryption_keys}
    with unlocked.store.session() as session:
        rows = session.execute(
            select(Item.id, Item.envelope_name, Item.kind, Item.key_ids).where(
                Item.decryptable.is_(False), Item.direction == "in"
            )
        ).all()
    opened = 0
    for item_id, envelope_name, kind, key_ids in rows:
        if not mine & set((key_ids or "").split(",")):
            continue
        try:
            with (unlocked.layout.envelopes / envelope_name).open("rb") as src:
                contents = read_contents(src, unlocked.secrets, kind)
        except FileNotFoundError:
            continue
        if contents.decryptable and _record(unlocked, item_id, contents, now):
            opened += 1
    if opened:
        ledger.update_head(unlocked.store, unlocked.layout.ledger_head)
    return opened


def _record(unlocked: Unlocked, item_id: int, contents: Contents, now: datetime) -> bool:
    """Give the item what its import would have, with its ledger event: one transaction."""
    with unlocked.store.session() as session:
        item = session.get(Item, item_id)
        if item is None or item.decryptable:
            return False  # deleted, or opened by someone else meanwhile
        item.decryptable = True
        item.kind = contents.kind
        item.filename = contents.filename
        item.media_type = contents.media_type
        item.plaintext_size = contents.plaintext_size
        item.plaintext_sha256 = contents.plaintext_sha256
        item.key_ids = contents.key_ids
        if contents.body is not None or contents.filename:
            index_items(session, [(item_id, contents.body, contents.filename)])
        detail: dict[str, str | int] = {
            "kind": contents.kind,
            "plaintext_size": contents.plaintext_size or 0,
            "key_ids": contents.key_ids,
        }
        if contents.filename:
            detail["filename"] = contents.filename
        ledger.record(
            session,
            event="reopen",
            journalist=unlocked.journalist,
            item_ref=str(item_id),
            sha256=contents.plaintext_sha256,
            detail=detail,
            now=now,
        )
    return True


__all__ = ["reopen_items"]
