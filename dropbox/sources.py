"""Use cases about source accounts and the replies waiting for them.

Each function takes the database session and the blob store it needs; none imports Flask.
Functions that change something commit before they return.

A source account holds only what docs/format.md section 5.2 allows: the lookup id, the
journalist-facing source id and the reply public key, with the day it was made. Replies are
envelopes sealed on the station to the source's reply key and the team; the server opens them
only in :func:`open_replies`, with a reply private key derived at login and dropped after.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crypto import (
    Algorithm,
    DecryptionError,
    FormatError,
    Kind,
    SourceSecrets,
    key_id,
    open_envelope,
    parse_header,
)
from dropbox.db import Item, Reply, Source
from dropbox.errors import DropboxError
from dropbox.storage import BlobStore, StorageError

#: The largest reply envelope accepted (a reply is text typed by a journalist).
MAX_REPLY_ENVELOPE: Final = 16 * 1024 * 1024  # docs/format.md section 11.2
#: Compared against when no source has the lookup id, so both outcomes do the same work.
_NO_LOOKUP_ID: Final = bytes(32)


class SourceError(DropboxError):
    """A source or reply operation cannot be done as asked."""


def create_source(db: Session, secrets: SourceSecrets, today: date) -> Source:
    """Record a new source from its derived secrets (the codename itself is never stored)."""
    source = Source(
        lookup_id=secrets.lookup_id,
        source_id=secrets.source_id,
        reply_public=secrets.reply_public,
        created_day=today,
    )
    db.add(source)
    try:
        db.commit()
    except IntegrityError:
        # Two 90-bit codenames colliding: in practice only a codename reused by a test.
        db.rollback()
        raise SourceError("a source with this codename exists already") from None
    return source


def find_source(db: Session, lookup_id: bytes) -> Source | None:
    """The source with this lookup id, or None.

    The lookup id is compared in constant time after the index lookup, and the comparison is
    made whether or not a row was found, so the caller's timing depends on the Argon2id
    derivation that made the lookup id, not on whether the account exists.
    """
    row = db.scalars(select(Source).where(Source.lookup_id == lookup_id)).one_or_none()
    stored = row.lookup_id if row is not None else _NO_LOOKUP_ID
    matches = hmac.compare_digest(stored, lookup_id)
    return row if row is not None and matches else None


def get_source(db: Session, row_id: int) -> Source | None:
    return db.get(Source, row_id)


# -- replies -----------------------------------------------------------------------------------


def list_replies(db: Session, source: Source) -> list[Reply]:
    """The replies waiting for the source, oldest first."""
    query = select(Reply).where(Reply.source_row_id == source.id).order_by(Reply.id)
    return list(db.scalars(query))


def store_reply(
    db: Session, store: BlobStore, source: Source, envelope: bytes, today: date
) -> Reply:
    """Store a reply envelope for the source.

    The envelope must be a well-formed v1 envelope (checked without a key) with the source's
    reply key among its recipients; anything else is refused before it is stored.
    """
    if len(envelope) > MAX_REPLY_ENVELOPE:
        raise SourceError(f"a reply envelope is at most {MAX_REPLY_ENVELOPE} bytes")
    try:
        header = parse_header(envelope)
        header.check_total_length(len(envelope))
    except FormatError as exc:
        raise SourceError(f"not a valid reply envelope: {exc}") from None
    if key_id(Algorithm.X25519, source.reply_public) not in header.key_ids:
        raise SourceError("the reply envelope is not sealed to the source's reply key")
    with store.writer() as writer:
        writer.write(envelope)
        blob_id = writer.commit()
        # Recorded while the blob is still held, so that no sweep takes it before its row.
        reply = Reply(source_row_id=source.id, blob_id=blob_id, created_day=today)
        db.add(reply)
        db.commit()
    return reply


def delete_reply(db: Session, store: BlobStore, source: Source, reply_id: int) -> bool:
    """Delete one of the source's replies, row and blob; False if the source has no such reply.

    The row goes first: if removing the blob then fails, what is left is an unreferenced
    ciphertext, never a reply listed without its content.
    """
    reply = db.scalars(
        select(Reply).where(Reply.id == reply_id, Reply.source_row_id == source.id)
    ).one_or_none()
    if reply is None:
        return False
    blob_id = reply.blob_id
    db.delete(reply)
    db.commit()
    if not _blob_in_use(db, blob_id):
        store.delete(blob_id)
    return True


def _blob_in_use(db: Session, blob_id: str) -> bool:
    """Blobs are content-addressed: another row may name the same bytes."""
    for model in (Reply, Item):
        if db.scalars(select(model.id).where(model.blob_id == blob_id).limit(1)).first():
            return True
    return False


@dataclass(frozen=True)
class OpenedReply:
    """A reply as shown to the source: its row id and text, or None if it did not open, and
    the day the server received it (the server keeps no finer time)."""

    reply_id: int
    text: str | None
    day: date | None = None

    @property
    def readable(self) -> bool:
        return self.text is not None


def open_replies(store: BlobStore, replies: list[Reply], reply_private: bytes) -> list[OpenedReply]:
    """Decrypt the replies in memory with the source's reply private key.

    A reply that does not open, is not of kind reply or is not UTF-8 text is returned with
    ``text=None`` so that the page can say so (and the source can still delete it).
    """
    opened = []
    for reply in replies:
        text = _open_reply(store, reply.blob_id, reply_private)
        opened.append(OpenedReply(reply.id, text, reply.created_day))
    return opened


def _open_reply(store: BlobStore, blob_id: str, reply_private: bytes) -> str | None:
    try:
        if store.size(blob_id) > MAX_REPLY_ENVELOPE:
            return None
        with store.open(blob_id) as blob:
            envelope = open_envelope(blob, [reply_private])
            if envelope.metadata.kind is not Kind.REPLY:
                return None
            content = envelope.read_all()
        return content.decode("utf-8")
    except (StorageError, DecryptionError, FormatError, UnicodeDecodeError):
        return None
