"""The upload store: incomplete uploads as ``ROOT/<id>.part`` plus ``ROOT/<id>.json``.

See :mod:`dropbox.uploads` for the layout, the locking and what the store never sees.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from common.files import fsync_dir, write_all
from dropbox.errors import DropboxError
from dropbox.storage import BlobStore, is_out_of_space
from dropbox.uploads.sidecar import (
    MAX_OWNER,
    MAX_SIDECAR,
    Sidecar,
    decode_sidecar,
    encode_sidecar,
    key_hash,
    utc,
)
from dropbox.uploads.upload import (
    CLIENT_SECRET,
    DEFAULT_TTL,
    OPEN_FLAGS,
    PART_NAME,
    PIECE,
    SIDECAR_NAME,
    TEMPORARY_NAME,
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
    lock_upload,
)


class UploadStore:
    """Incomplete uploads as ``ROOT/<id>.part`` plus ``ROOT/<id>.json``; see the module text."""

    def __init__(self, root: Path, ttl: timedelta = DEFAULT_TTL) -> None:
        if ttl <= timedelta(0):
            raise ValueError("the time to live must be positive")
        self.root = root
        self.ttl = ttl
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------

    def _part(self, upload_id: str) -> Path:
        if not check_upload_id(upload_id):
            raise UploadNotFound("no such upload")
        return self.root / f"{upload_id}.part"

    def _sidecar(self, upload_id: str) -> Path:
        if not check_upload_id(upload_id):
            raise UploadNotFound("no such upload")
        return self.root / f"{upload_id}.json"

    @contextlib.contextmanager
    def _open_part(self, upload_id: str, flags: int) -> Iterator[int]:
        try:
            fd = os.open(self._part(upload_id), flags | OPEN_FLAGS)
        except FileNotFoundError:
            raise UploadNotFound("no such upload") from None
        try:
            yield fd
        finally:
            os.close(fd)  # also releases the flock, if taken

    def _read_sidecar(self, upload_id: str) -> Sidecar | None:
        try:
            fd = os.open(self._sidecar(upload_id), os.O_RDONLY | OPEN_FLAGS)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            return decode_sidecar(handle.read(MAX_SIDECAR + 1))

    def _required_sidecar(self, upload_id: str) -> Sidecar:
        sidecar = self._read_sidecar(upload_id)
        if sidecar is None:
            raise UploadNotFound("no such upload")
        return sidecar

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
        created = utc(now)
        if secret is None:
            secret, upload_id = secrets.token_urlsafe(32), secrets.token_hex(16)
        else:
            if not CLIENT_SECRET.match(secret):
                raise ValueError("a chosen capability is 43 base64url characters")
            upload_id = chosen_upload_id(owner, secret)
            if (existing := self._same_upload(upload_id, owner, length, secret)) is not None:
                return existing, secret
        sidecar = Sidecar(owner, key_hash(secret), length, created, created + self.ttl)
        # The sidecar first, by rename so that no reader ever sees half of it; then the
        # (empty) .part. get() needs both, so the upload appears only once it is whole.
        temporary = self.root / f".{upload_id}.json.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, 0o600)
            with os.fdopen(fd, "wb") as handle:
                # Locked until renamed: a locked temporary is being written, an unlocked one
                # is what a crash left (reclaim_temporaries removes those).
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                handle.write(encode_sidecar(sidecar))
                handle.flush()
                os.fsync(handle.fileno())
                # A link never replaces: two creations of one chosen id cannot both win.
                os.link(temporary, self._sidecar(upload_id))
                os.unlink(temporary)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS
            os.close(os.open(self._part(upload_id), flags, 0o600))
            fsync_dir(self.root)
        except FileExistsError:
            # The same chosen id, created by a request racing with this one.
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            if (existing := self._same_upload(upload_id, owner, length, secret)) is not None:
                return existing, secret
            raise UploadConflict("that upload exists for another owner or length") from None
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.delete(upload_id)
            if is_out_of_space(error):
                raise UploadStoreFull("no space left for a new upload") from error
            raise
        upload = Upload(upload_id, owner, sidecar.key, length, sidecar.created, sidecar.expires, 0)
        return upload, secret

    def _same_upload(self, upload_id: str, owner: str, length: int, secret: str) -> Upload | None:
        """The existing upload ``upload_id`` if it is this owner's, of this length, opened by
        ``secret`` (a creation asked again); None if there is none; UploadConflict else."""
        existing = self.get(upload_id)
        if existing is None:
            return None
        if existing.belongs_to(owner) and existing.length == length and existing.opens_with(secret):
            return existing
        raise UploadConflict("that upload exists for another owner or length")

    def get(self, upload_id: str) -> Upload | None:
        """The upload, whether expired or not; None for an unknown or malformed id."""
        if not check_upload_id(upload_id):
            return None
        sidecar = self._read_sidecar(upload_id)
        if sidecar is None:
            return None
        try:
            info = os.stat(self._part(upload_id), follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return Upload(
            upload_id,
            sidecar.owner,
            sidecar.key,
            sidecar.length,
            sidecar.created,
            sidecar.expires,
            info.st_size,
        )

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

        A full disk (ENOSPC, EDQUOT, at a write or at the fsync) cuts the file back to the
        offset it had when this call began and raises :class:`UploadStoreFull`: the upload
        is as it was, and the same bytes can be sent again once there is room.
        """
        with self._open_part(upload_id, os.O_WRONLY | os.O_APPEND) as fd:
            lock_upload(fd)
            sidecar = self._required_sidecar(upload_id)
            start = offset = os.fstat(fd).st_size
            if expected_offset is not None and expected_offset != offset:
                raise OffsetMismatch(offset)
            budget = max(0, min(max_bytes, sidecar.length - offset))
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
                        write_all(fd, piece)
                        offset += len(piece)
                        budget -= len(piece)
                finally:
                    os.fsync(fd)
            except OSError as error:
                if not is_out_of_space(error):
                    raise
                os.ftruncate(fd, start)  # shrinking needs no new block
                with contextlib.suppress(OSError):
                    os.fsync(fd)
                raise UploadStoreFull("no space left for this upload") from error
            return offset

    def read_prefix(self, upload_id: str, size: int) -> bytes:
        """The first ``size`` bytes of the upload, or fewer if it holds fewer."""
        with self._open_part(upload_id, os.O_RDONLY) as fd:
            parts: list[bytes] = []
            got = 0
            while got < size:
                piece = os.pread(fd, min(PIECE, size - got), got)
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
            return b"".join(parts)

    def delete(self, upload_id: str) -> bool:
        """Remove the upload's bytes and sidecar; return whether there was anything to remove.

        The .part goes first, so that a reader never finds bytes without their sidecar.
        Unknown and malformed ids are fine: deletion is idempotent.
        """
        if not check_upload_id(upload_id):
            return False
        removed = False
        for path in (self._part(upload_id), self._sidecar(upload_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed = True
        if removed:
            fsync_dir(self.root)
        return removed

    def expire(self, now: datetime) -> int:
        """Delete every upload whose expiry is at or before ``now``; return how many.

        Also removes leftovers of crashes: a .part without sidecar or an unreadable sidecar
        once their modification time is a whole TTL before ``now``, and every temporary
        sidecar that no request is writing.
        """
        now = utc(now)
        stale_before = (now - self.ttl).timestamp()
        count = 0
        for entry in list(os.scandir(self.root)):
            name = entry.name
            if match := SIDECAR_NAME.match(name):
                sidecar = self._read_sidecar(match[1])
                if sidecar is None:
                    if _mtime(entry) <= stale_before and self.delete(match[1]):
                        count += 1
                elif sidecar.expires <= now and self.delete(match[1]):
                    count += 1
            elif match := PART_NAME.match(name):
                sidecar_gone = not (self.root / f"{match[1]}.json").exists()
                if sidecar_gone and _mtime(entry) <= stale_before and self.delete(match[1]):
                    count += 1
            elif TEMPORARY_NAME.match(name):
                _remove_if_unheld(Path(entry.path))
        return count

    def reclaim_temporaries(self) -> int:
        """Remove the temporary sidecars that a crash left (none is being written); how many."""
        return sum(
            _remove_if_unheld(Path(entry.path))
            for entry in list(os.scandir(self.root))
            if TEMPORARY_NAME.match(entry.name)
        )

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
        with self._open_part(upload_id, os.O_RDONLY) as fd:
            lock_upload(fd)
            sidecar = self._required_sidecar(upload_id)
            if os.fstat(fd).st_size != sidecar.length:
                raise UploadIncomplete("the upload is not complete")
            try:
                # The writer is the caller's to close: leaving it open holds the blob.
                writer = hold.enter_context(blob_store.writer())
                while piece := os.read(fd, PIECE):
                    writer.write(piece)
                if writer.size != sidecar.length:
                    raise UploadIncomplete("the upload changed while it was being copied")
                return writer.commit()
            except (OSError, DropboxError) as error:
                if is_out_of_space(error):
                    raise UploadStoreFull("no space left in the blob store") from error
                raise


def _remove_if_unheld(path: Path) -> bool:
    """Unlink a temporary sidecar unless its writer still holds its lock; whether it went."""
    try:
        fd = os.open(path, os.O_RDONLY | OPEN_FLAGS)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # being written right now
        # Still under that name (not renamed into a sidecar meanwhile)?
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False
        if same:
            path.unlink(missing_ok=True)
        return same
    finally:
        os.close(fd)


def _mtime(entry: os.DirEntry[str]) -> float:
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return float("inf")  # gone meanwhile: nothing to remove
