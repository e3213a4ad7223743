"""Use cases of the sync API's inbound side: what waits for transfer to the station.

An item waits until a journalist's outbound bundle acknowledges it. It is described with the
least metadata the station needs (docs/format.md sections 9.2 and 10.2): its source's
journalist-facing id and reply key, its kind, its ciphertext size and SHA-256 (the blob id:
blobs are content-addressed) and the day it was received.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from crypto import FormatError, PrivateKey, parse_json
from crypto.bundle import InboundItem, InboundManifest, sign_inbound_manifest
from dropbox.db import Item, Source, Submission
from dropbox.errors import DropboxError
from dropbox.sync.retention import MAX_ROW_ID, chunks

MAX_PAGE: Final = 1000
MAX_MANIFEST_ITEMS: Final = 10_000

_CURSOR = re.compile(r"\A[A-Za-z0-9_-]{11}\Z")
_ITEM_ID = re.compile(r"\A[1-9][0-9]{0,19}\Z")


class UnknownItems(DropboxError):
    """Some of the items asked for do not exist or are no longer waiting."""

    def __init__(self, item_ids: Sequence[str]) -> None:
        shown = ", ".join(item_ids[:10]) + (", ..." if len(item_ids) > 10 else "")
        super().__init__(f"{len(item_ids)} of the items are not waiting for transfer: {shown}")
        self.item_ids = tuple(item_ids)


@dataclass(frozen=True)
class PendingItem:
    """An item waiting for transfer, as the sync API describes it."""

    id: int
    source_id: bytes
    reply_public_key: bytes
    kind: str
    size: int
    sha256: bytes
    day: date

    def to_inbound(self) -> InboundItem:
        return InboundItem(
            id=str(self.id),
            source_id=self.source_id,
            reply_public_key=self.reply_public_key,
            kind=self.kind,
            size=self.size,
            sha256=self.sha256,
            day=self.day,
        )

    def to_json(self) -> dict[str, Any]:
        return self.to_inbound().to_json()


@dataclass(frozen=True)
class Page:
    items: list[PendingItem]
    #: The cursor of the next page, or None when this page is the last.
    next: str | None


# -- cursors and ids ---------------------------------------------------------------------------


def encode_cursor(after_id: int) -> str:
    """An opaque cursor: the last item id of a page, packed and base64url-encoded."""
    return base64.urlsafe_b64encode(struct.pack(">Q", after_id)).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The item id a cursor points after; ValueError for anything this server did not make."""
    if not _CURSOR.match(cursor):
        raise ValueError("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=")
    except binascii.Error:  # pragma: no cover - the pattern admits only valid base64url
        raise ValueError("not a cursor") from None
    if len(raw) != 8 or encode_cursor(struct.unpack(">Q", raw)[0]) != cursor:
        raise ValueError("not a cursor")
    (after_id,) = struct.unpack(">Q", raw)
    if after_id > MAX_ROW_ID:
        raise ValueError("not a cursor")
    return int(after_id)


def parse_item_id(text: str) -> int | None:
    """A decimal item id as a row id, or None if it cannot name an item."""
    if not _ITEM_ID.match(text):
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


def parse_manifest_request(body: bytes) -> list[str]:
    """The item ids of ``{"items": ["<id>", ...]}``: 1 to 10,000 distinct decimal ids.

    ValueError, with a message fit for the client, for anything else.
    """
    try:
        document = parse_json(body, max_bytes=len(body), what="the body")
    except FormatError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(document, dict) or set(document) != {"items"}:
        raise ValueError('the body must be {"items": ["<id>", ...]}')
    ids = document["items"]
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_MANIFEST_ITEMS:
        raise ValueError(f"items must be a list of 1 to {MAX_MANIFEST_ITEMS} item ids")
    if not all(isinstance(text, str) and _ITEM_ID.match(text) for text in ids):
        raise ValueError("an item id is 1 to 20 decimal digits without leading zeros")
    if len(set(ids)) != len(ids):
        raise ValueError("an item id appears twice")
    return list(ids)


# -- queries -----------------------------------------------------------------------------------


def _pending_query() -> Select[int, bytes, bytes, str, int, str, date]:
    return (
        select(
            Item.id,
            Source.source_id,
            Source.reply_public,
            Item.kind,
            Item.size,
            Item.blob_id,
            Submission.received_day,
        )
        .join(Submission, Item.submission_id == Submission.id)
        .join(Source, Submission.source_row_id == Source.id)
        .where(Item.acknowledged.is_(False))
    )


def _pending(row: Row[int, bytes, bytes, str, int, str, date]) -> PendingItem:
    item_id, source_id, reply_public, kind, size, blob_id, day = row
    return PendingItem(
        id=item_id,
        source_id=source_id,
        reply_public_key=reply_public,
        kind=kind,
        size=size,
        sha256=bytes.fromhex(blob_id),
        day=day,
    )


def pending_totals(db: Session) -> tuple[int, int]:
    """How many items wait for transfer, and their ciphertext bytes."""
    count, size = db.execute(
        select(func.count(Item.id), func.coalesce(func.sum(Item.size), 0)).where(
            Item.acknowledged.is_(False)
        )
    ).one()
    return int(count), int(size)


def list_pending(db: Session, *, after: int = 0, limit: int = MAX_PAGE) -> Page:
    """Items waiting for transfer with an id above ``after``, oldest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be from 1 to {MAX_PAGE}")
    query = _pending_query().where(Item.id > after).order_by(Item.id).limit(limit + 1)
    rows = [_pending(row) for row in db.execute(query)]
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, encode_cursor(items[-1].id) if more else None)


def find_pending(db: Session, item_ids: Sequence[str]) -> list[PendingItem]:
    """The items with these decimal ids, in that order; all must be waiting for transfer."""
    wanted = {text: parse_item_id(text) for text in item_ids}
    found: dict[int, PendingItem] = {}
    ids = sorted({row_id for row_id in wanted.values() if row_id is not None})
    for chunk in chunks(ids):
        for row in db.execute(_pending_query().where(Item.id.in_(chunk))):
            item = _pending(row)
            found[item.id] = item
    missing = [text for text, row_id in wanted.items() if row_id not in found]
    if missing:
        raise UnknownItems(missing)
    return [found[row_id] for row_id in wanted.values() if row_id is not None]


def signed_manifest(
    db: Session,
    item_ids: Sequence[str],
    *,
    server_key: PrivateKey,
    keyring_serial: int,
    today: date,
) -> bytes:
    """The signed inbound manifest (docs/format.md 10.2) for exactly these items, in order."""
    items = find_pending(db, item_ids)
    manifest = InboundManifest(
        server_key=server_key.public.key,
        keyring_serial=keyring_serial,
        made=today,
        items=tuple(item.to_inbound() for item in items),
    )
    return sign_inbound_manifest(manifest, server_key)


def envelope_blob(db: Session, item_id: int) -> str | None:
    """The blob id of an item's envelope, or None if there is no such item."""
    return db.scalars(select(Item.blob_id).where(Item.id == item_id)).one_or_none()
