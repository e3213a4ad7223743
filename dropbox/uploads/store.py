"""The upload store: each incomplete upload is a database row plus its part data.

See :mod:`dropbox.uploads` for the layout, the locking and what the store never sees.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dropbox.db import UploadRow
from dropbox.errors import DropboxError
from dropbox.storage import BlobStore, is_out_of_space
from dropbox.uploads.parts import LocalParts, Part, PartStore
from dropbox.uploads.upload import (
    CLIENT_SECRET,
    DEFAULT_TTL,
    MAX_OWNER,
    PIECE,
    ByteSource,
    OffsetMismatch,
    StreamInterrupted,
    Upload,
    UploadConflict,
    UploadIncomplete,
    UploadNotFound,
    UploadStoreFull,
    check_upload_id,
    chosen_upload_id,
    expiry_day,
    key_hash,
    midnight,
    utc,
)


class UploadStore:
    """Incomplete uploads: state in the database (``uploads``), bytes in a :class:`PartStore`
    (files under ``root`` unless another is given); see the package text."""

    def __init__(
        self,
        root: Path,
        db: sessionmaker[Session],
        ttl: timedelta = DEFAULT_TTL,
        *,
        parts: PartStore | None = None,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("the time to live must be positive")
        self.root = root
        self.ttl = ttl
        self._db = db
        self.parts: PartStore = parts if parts is not None else LocalParts(root)
        # The day this store last ran expire() for a creation: a hint, not state (a restarted
        # process runs it again, and so does every other process).
        self._expired_on: date | None = None

    # -- rows --------------------------------------------------------------------------------

    def _row(self, upload_id: str) -> UploadRow | None:
        if not check_upload_id(upload_id):
            return None
        with self._db() as session:
            return session.scalars(
                select(UploadRow).where(UploadRow.upload_id == upload_id)
            ).first()

    def _required_row(self, upload_id: str) -> UploadRow:
        row = self._row(upload_id)
        if row is None:
            raise UploadNotFound("no such upload")
        return row

    @contextlib.contextmanager
    def _locked(self, upload_id: str) -> Iterator[tuple[UploadRow, Part]]:
        row = self._required_row(upload_id)
        with self.parts.open(row.part, exclusive=True) as part:
            yield row, part

    # -- operations --------------------------------------------------------------------------

    def create(self, owner: str, length: int, now: datetime) -> Upload:
        """:meth:`create_with_key` without the capability, for callers that never need it."""
        return self.create_with_key(owner, length, now)[0]

    def create_with_key(
        self, owner: str, length: int, now: datetime, secret: str | None = None
    ) -> tuple[Upload, str]:
        """Make a new, empty upload of ``length`` bytes for ``owner``, expiring after the TTL.

        Returns the upload and its capability: a random secret of which only the hash is
        kept, so it cannot be learnt from the store. A client may choose the secret itself
        (32 random bytes, base64url): the upload's id is then derived from it, so that
        asking again after a lost answer gives the same upload instead of a second one that
        nobody can ever resume. Raises :class:`UploadConflict` when that id is taken by an
        upload of another owner or length, :class:`UploadStoreFull` (nothing left behind)
        when the disk is full.
        """
        if not isinstance(owner, str) or not 0 < len(owner) <= MAX_OWNER:
            raise ValueError(f"an owner is 1 to {MAX_OWNER} characters")
        if type(length) is not int or length < 0:
            raise ValueError("an upload length is a non-negative integer")
        created = utc(now).date()
        if secret is None:
            secret, upload_id = secrets.token_urlsafe(32), secrets.token_hex(16)
        else:
            if not CLIENT_SECRET.match(secret):
                raise ValueError("a chosen capability is 43 base64url characters")
            upload_id = chosen_upload_id(owner, secret)
            if (existing := self._same_upload(upload_id, owner, length, secret)) is not None:
                return existing, secret
        row = UploadRow(
            upload_id=upload_id, owner=owner, key_hash=key_hash(secret), length=length,
            created_day=created, expires_day=expiry_day(created, self.ttl),
            part=secrets.token_hex(16),
        )  # fmt: skip
        # The row first, then its (empty) part: get() needs both, so the upload appears only
        # once it is whole, and a part is never without its row until the row is deleted
        # (expire() discards parts that no row names).
        try:
            with self._db() as session, session.begin():
                session.add(row)
        except IntegrityError:
            # The same chosen id, created by a request racing with this one.
            if (existing := self._same_upload(upload_id, owner, length, secret)) is not None:
                return existing, secret
            raise UploadConflict("that upload exists for another owner or length") from None
        except Exception as error:
            if is_out_of_space(error):
                raise UploadStoreFull("no space left for a new upload") from error
            raise
        try:
            self.parts.create(row.part)
        except OSError as error:
            with contextlib.suppress(Exception):
                self.delete(upload_id)
            if is_out_of_space(error):
                raise UploadStoreFull("no space left for a new upload") from error
            raise
        return _upload(row, 0), secret

    def _same_upload(self, upload_id: str, owner: str, length: int, secret: str) -> Upload | None:
        """The existing upload ``upload_id`` if it is this owner's, of this length, opened by
        ``secret`` (a creation asked again), its part made if a kill left it without one; None
        if there is none; UploadConflict else."""
        row = self._row(upload_id)
        if row is None:
            return None
        existing = _upload(row, 0)
        if not (
            existing.belongs_to(owner) and existing.length == length and existing.opens_with(secret)
        ):
            raise UploadConflict("that upload exists for another owner or length")
        size = self.parts.size(row.part)
        if size is None:
            # The creation that made the row was killed before it made the part: finish it,
            # or the page that asks again could never reach its upload.
            try:
                self.parts.create(row.part)
            except FileExistsError:
                pass  # a request racing with this one made it
            except OSError as error:
                if is_out_of_space(error):
                    raise UploadStoreFull("no space left for a new upload") from error
                raise
            size = 0
        return _upload(row, size)

    def get(self, upload_id: str) -> Upload | None:
        """The upload, whether expired or not; None for an unknown or malformed id."""
        row = self._row(upload_id)
        if row is None:
            return None
        size = self.parts.size(row.part)
        return None if size is None else _upload(row, size)

    def append(
        self,
        upload_id: str,
        stream: ByteSource,
        max_bytes: int,
        *,
        expected_offset: int | None = None,
    ) -> int:
        """Append up to ``max_bytes`` from ``stream``; return the new offset.

        Reads in pieces of at most :data:`PIECE` bytes until ``max_bytes`` are stored, the
        stream ends or the upload reaches its announced length, whichever comes first: nothing
        is ever written past the length. ``expected_offset``, when given, must equal the current
        offset (checked under the lock; else :class:`OffsetMismatch`).

        A stream that ends early leaves the bytes that arrived, and the returned offset counts
        them. A stream that raises leaves them too and raises :class:`StreamInterrupted` with
        that offset. Either way the bytes are flushed to disk (fsync) before this returns.

        A full disk (ENOSPC, EDQUOT, at a write or at the fsync) cuts the part back to the
        offset it had when this call began and raises :class:`UploadStoreFull`: the upload
        is as it was, and the same bytes can be sent again once there is room.
        """
        with self._locked(upload_id) as (row, part):
            start = offset = part.size()
            if expected_offset is not None and expected_offset != offset:
                raise OffsetMismatch(offset)
            budget = max(0, min(max_bytes, row.length - offset))
            try:
                try:
                    while budget > 0:
                        try:
                            piece = stream.read(min(PIECE, budget))
                        except Exception as error:
                            raise StreamInterrupted(offset) from error
                        if not piece:
                            break
                        piece = piece[:budget]
                        part.append(piece)
                        offset += len(piece)
                        budget -= len(piece)
                finally:
                    part.sync()
            except OSError as error:
                if not is_out_of_space(error):
                    raise
                part.truncate(start)
                with contextlib.suppress(OSError):
                    part.sync()
                raise UploadStoreFull("no space left for this upload") from error
            return offset

    def read_prefix(self, upload_id: str, size: int) -> bytes:
        """The first ``size`` bytes of the upload, or fewer if it holds fewer."""
        row = self._required_row(upload_id)
        with self.parts.open(row.part, exclusive=False) as part:
            pieces: list[bytes] = []
            got = 0
            while got < size:
                piece = part.read(got, min(PIECE, size - got))
                if not piece:
                    break
                pieces.append(piece)
                got += len(piece)
            return b"".join(pieces)

    def delete(self, upload_id: str) -> bool:
        """Remove the upload's row, then its part; return whether there was anything to remove.

        Unknown and malformed ids are fine: deletion is idempotent. Deletion does not wait for
        an append in progress: that one goes on writing into a part that no longer has a name
        (the daily blur overwrites it before it unlinks it).
        """
        row = self._row(upload_id)
        if row is None:
            return False
        with self._db() as session, session.begin():
            session.execute(delete(UploadRow).where(UploadRow.id == row.id))
        self.parts.discard(row.part)
        return True

    def expire(self, now: datetime) -> int:
        """Delete every upload expired at ``now`` (at a day's start); return how many.

        Also discards every part that no row names: what a crash between a row's deletion
        and its part's left, and the parts of a deleted source (dropbox/sync/retention.py
        deletes its rows). The parts are listed before the rows are read: a part is made
        after its row, so a part made meanwhile is always found named.
        """
        today = utc(now).date()
        on_disk = set(self.parts.names())
        with self._db() as session:
            expired = list(
                session.scalars(select(UploadRow.upload_id).where(UploadRow.expires_day <= today))
            )
            named = set(session.scalars(select(UploadRow.part)))
        count = sum(self.delete(upload_id) for upload_id in expired)
        for name in sorted(on_disk - named):
            self.parts.discard(name)
        return count

    def expire_once_a_day(self, now: datetime) -> int:
        """:meth:`expire`, the first time this store is asked on ``now``'s day; else 0.

        Uploads expire by the day, so a second run on the same day finds nothing expired; it
        would only list every part and every row again. A tus creation asks at each call
        (bench/scale.py: a thousand at once, each listing a thousand parts)."""
        today = utc(now).date()
        if self._expired_on == today:
            return 0
        count = self.expire(now)
        self._expired_on = today
        return count

    def copy_into(
        self, upload_id: str, blob_store: BlobStore, hold: contextlib.ExitStack[bool | None]
    ) -> str:
        """Copy a complete upload into the blob store; return the blob id.

        The blob stays held (the reclaiming sweep leaves it alone) until ``hold`` closes: the
        caller closes it once a row names the blob. The upload stays too: the caller deletes
        it once the blob is recorded (a crash in between leaves an upload that expires, never
        a submission without its bytes). Raises
        :class:`UploadIncomplete` if bytes are still missing (nothing changes then),
        :class:`UploadBusy` while a request appends to it, :class:`UploadStoreFull` when the
        blob store's disk is full (its temporary file is removed).
        """
        with self._locked(upload_id) as (row, part):
            if part.size() != row.length:
                raise UploadIncomplete("the upload is not complete")
            try:
                # The writer is the caller's to close: leaving it open holds the blob.
                writer = hold.enter_context(blob_store.writer())
                offset = 0
                while piece := part.read(offset, PIECE):
                    writer.write(piece)
                    offset += len(piece)
                if writer.size != row.length:
                    raise UploadIncomplete("the upload changed while it was being copied")
                return writer.commit()
            except (OSError, DropboxError) as error:
                if is_out_of_space(error):
                    raise UploadStoreFull("no space left in the blob store") from error
                raise


def _upload(row: UploadRow, offset: int) -> Upload:
    return Upload(
        row.upload_id, row.owner, row.key_hash, row.length, midnight(row.created_day),
        midnight(row.expires_day), offset, row.part,
    )  # fmt: skip
