"""Applying an outbound bundle: replies, deletions and acknowledgements from the station.

docs/format.md section 11. The bundle is read from a stream by :func:`read_outbound_bundle`,
which verifies the journalist's signature before any envelope is read. Each reply envelope
goes into the blob store as soon as all its bytes arrived and matched their SHA-256 (one
file open at a time, whatever the number of replies). Once the whole bundle verified, one
database transaction applies everything; only after it committed are the blobs of deleted
rows removed. On any failure the transaction is rolled back and the reply blobs this bundle
added are deleted again: the server is as it was.

The caller serializes calls (one bundle at a time): two pushes of the same bundle must not
race for the same content-addressed reply blobs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crypto import (
    Algorithm,
    CryptoError,
    FormatError,
    Manifest,
    SignatureError,
    UnsupportedVersion,
    key_id,
    parse_header,
)
from crypto.bundle import OutboundManifest, OutboundReply, read_outbound_bundle
from crypto.envelope import MAX_RECIPIENTS, header_length
from dropbox.db import AppliedBundle, Reply, Source
from dropbox.errors import DropboxError
from dropbox.storage import BlobStore, BlobWriter
from dropbox.sync.retention import (
    acknowledge_items,
    delete_items,
    delete_source,
    delete_source_data,
    delete_unreferenced_blobs,
    row_ids,
)

#: The longest envelope header (32 recipients): what a sink keeps to check the recipients.
_MAX_HEADER: Final = header_length(MAX_RECIPIENTS)


class OutboundRefused(DropboxError):
    """The bundle does not verify or may not be applied; nothing was changed.

    ``code`` is the error class of docs/format.md (``format``, ``unsupported_version``,
    ``signature``) or ``unknown_source`` / ``reply_not_sealed_to_source``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class OutboundResult:
    """``applied`` is False when the bundle was applied before (nothing changed).

    The counts are the bundle's: its replies, deletions and acknowledgements; ``purged`` is
    how many acknowledged items were deleted at once (``purge_after_ack``; 0 otherwise).
    """

    applied: bool
    replies: int
    deletions: int
    acknowledged: int
    purged: int = 0


def signing_keys(keyring: Manifest | None) -> dict[bytes, bytes]:
    """Key id to public key of the journalist signing keys the installed keyring lists."""
    if keyring is None:
        return {}
    return {key_id(Algorithm.ED25519, e.public_key): e.public_key for e in keyring.signing_keys}


class _ReplySink:
    """One reply envelope on its way into the blob store (a crypto.bundle EnvelopeSink)."""

    def __init__(self, blobs: BlobStore, reply: OutboundReply) -> None:
        self.reply = reply
        self._blobs = blobs
        self._writer: BlobWriter | None = blobs.writer()
        self._hash = hashlib.sha256()
        self._received = 0
        self.head = bytearray()
        self.blob_id: str | None = None
        self._held: BlobWriter | None = None
        #: The blob did not exist before this sink stored it.
        self.added = False

    def write(self, data: bytes, /) -> None:
        if self._writer is None:
            raise FormatError("reply envelope longer than its size")
        if len(self.head) < _MAX_HEADER:
            self.head += data[: _MAX_HEADER - len(self.head)]
        self._writer.write(data)
        self._hash.update(data)
        self._received += len(data)
        if self._received == self.reply.size:
            self._store()

    def _store(self) -> None:
        """All bytes are here: store the blob now and close its file."""
        if self._writer is None or not hmac.compare_digest(self._hash.digest(), self.reply.sha256):
            return  # the reader raises for the mismatch and aborts this sink
        blob_id = self.reply.sha256.hex()
        existed = self._blobs.exists(blob_id)
        writer, self._writer = self._writer, None
        self.blob_id = writer.commit()
        # Held (no sweep takes the blob) until this sink is dropped, after the rows are
        # committed or the push discarded.
        self._held = writer
        self.added = not existed

    def commit(self) -> None:
        if self.blob_id is None:  # pragma: no cover - the reader commits only complete sinks
            raise FormatError("reply envelope incomplete")

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        # A blob stored early is removed by apply_outbound's clean-up, which knows whether
        # another row names it.


def _refusal(error: CryptoError) -> OutboundRefused:
    if isinstance(error, UnsupportedVersion):
        return OutboundRefused("unsupported_version", f"the bundle's version is unknown: {error}")
    if isinstance(error, FormatError):
        return OutboundRefused("format", f"the bundle is malformed: {error}")
    if isinstance(error, SignatureError):
        return OutboundRefused(
            "signature",
            "the bundle's signature does not verify under a journalist signing key of the "
            f"installed keyring ({error})",
        )
    return OutboundRefused("format", f"the bundle does not verify: {error}")


def apply_outbound(
    src: BinaryIO,
    *,
    db: sessionmaker[Session],
    blobs: BlobStore,
    keyring: Manifest | None,
    today: date,
    purge_after_ack: bool,
    authorize: Callable[[], None] | None = None,
) -> OutboundResult:
    """Verify the outbound bundle read from ``src`` and apply it (docs/format.md 11.2).

    ``keyring`` is the installed keyring (its signing keys may sign bundles). ``authorize``
    runs once the whole bundle was read and verified, before anything is applied: the sync
    API checks the request's own signature there, which covers the whole body. Raises
    :class:`OutboundRefused` (nothing changed) or whatever ``authorize`` raises.
    """
    sinks: list[_ReplySink] = []

    def open_sink(reply: OutboundReply) -> _ReplySink:
        sink = _ReplySink(blobs, reply)
        sinks.append(sink)
        return sink

    try:
        try:
            manifest = read_outbound_bundle(src, signing_keys(keyring), open_sink)
        except CryptoError as exc:
            raise _refusal(exc) from None
        if authorize is not None:
            authorize()
        with db() as session:
            result, freed = _apply(session, manifest, sinks, today, purge_after_ack)
    except BaseException:
        _discard(db, blobs, sinks)
        raise
    if not result.applied:
        _discard(db, blobs, sinks)  # nothing of this push is kept
    if freed:
        with db() as session:
            delete_unreferenced_blobs(session, blobs, freed)
    return result


def _discard(db: sessionmaker[Session], blobs: BlobStore, sinks: list[_ReplySink]) -> None:
    """Delete the reply blobs this bundle added, unless a row names them."""
    for sink in sinks:
        sink.abort()
    added = [sink.blob_id for sink in sinks if sink.added and sink.blob_id is not None]
    if added:
        with db() as session:
            delete_unreferenced_blobs(session, blobs, added)


def _apply(
    session: Session,
    manifest: OutboundManifest,
    sinks: list[_ReplySink],
    today: date,
    purge_after_ack: bool,
) -> tuple[OutboundResult, list[str]]:
    """One transaction; returns the result and the blob ids of the rows it deleted."""
    counts = (len(manifest.replies), len(manifest.deletions), len(manifest.acknowledged))
    try:
        if _applied_before(session, manifest.bundle_id):
            session.rollback()
            return OutboundResult(False, *counts), []
        freed: list[str] = []
        for sink, source in zip(sinks, _reply_sources(session, sinks), strict=True):
            if sink.blob_id is None:  # pragma: no cover - the reader verified every reply
                raise OutboundRefused("format", "a reply envelope is incomplete")
            session.add(Reply(source_row_id=source.id, blob_id=sink.blob_id, created_day=today))
        session.flush()
        for deletion in manifest.deletions:
            if deletion.scope == "item":
                freed += delete_items(session, row_ids([deletion.id] if deletion.id else []))
                continue
            source_row = _source_row(session, deletion.source_id)
            if source_row is None:
                continue
            if deletion.scope == "source_data":
                freed += delete_source_data(session, source_row)
            else:
                freed += delete_source(session, source_row)
        # With purge, one blob id per item deleted: the count of items purged.
        acked = acknowledge_items(session, row_ids(manifest.acknowledged), purge=purge_after_ack)
        freed += acked
        session.add(AppliedBundle(bundle_id=manifest.bundle_id))
        session.commit()
    except IntegrityError:
        session.rollback()
        if _applied_before(session, manifest.bundle_id):  # applied meanwhile by another process
            return OutboundResult(False, *counts), []
        raise
    except BaseException:
        session.rollback()
        raise
    return OutboundResult(True, *counts, purged=len(acked)), freed


def _applied_before(session: Session, bundle_id: bytes) -> bool:
    query = select(AppliedBundle.id).where(AppliedBundle.bundle_id == bundle_id)
    return session.scalars(query).first() is not None


def _source_row(session: Session, source_id: bytes | None) -> int | None:
    if source_id is None:  # pragma: no cover - crypto.bundle.Deletion requires it
        return None
    return session.scalars(select(Source.id).where(Source.source_id == source_id)).one_or_none()


def _reply_sources(session: Session, sinks: list[_ReplySink]) -> list[Source]:
    """The source of each reply, whose reply key its envelope must name (else all is refused)."""
    cache: dict[bytes, Source | None] = {}
    sources = []
    for index, sink in enumerate(sinks):
        source_id = sink.reply.source_id
        if source_id not in cache:
            query = select(Source).where(Source.source_id == source_id)
            cache[source_id] = session.scalars(query).one_or_none()
        source = cache[source_id]
        if source is None:
            raise OutboundRefused(
                "unknown_source", f"reply {index} is for source {source_id.hex()}, unknown here"
            )
        _check_sealed_to(sink, source, index)
        sources.append(source)
    return sources


def _check_sealed_to(sink: _ReplySink, source: Source, index: int) -> None:
    try:
        header = parse_header(bytes(sink.head))
        header.check_total_length(sink.reply.size)
    except FormatError as exc:
        raise OutboundRefused("format", f"reply {index} is not a valid envelope: {exc}") from None
    if key_id(Algorithm.X25519, source.reply_public) not in header.key_ids:
        raise OutboundRefused(
            "reply_not_sealed_to_source",
            f"reply {index} is not sealed to the reply key of source {sink.reply.source_id.hex()}",
        )
