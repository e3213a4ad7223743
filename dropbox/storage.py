"""Blob storage for envelopes: ciphertext only, atomic, path-confined, really deleted.

The server stores every envelope as one blob, named by the SHA-256 of its bytes (content
addressing: a name reveals nothing but the content hash, and the same bytes are stored
once). Storage never sees plaintext and knows nothing of Flask or the database.

A blob is written through a :class:`BlobWriter`: bytes go to a temporary file in the store's
own directory, and :meth:`BlobWriter.commit` fsyncs it and renames it into place, so a blob
either exists whole or not at all. :meth:`BlobWriter.abort` (or leaving the ``with`` block
before the commit) removes the temporary file.

A committed blob stays *held* until :meth:`BlobWriter.release` (or the end of the ``with``
block): the caller records the database row that names it first, then releases. Blobs that no
row names and no writer holds are orphans (a crash between the commit and the row, a refusal
whose clean-up failed); :mod:`dropbox.sweep` reclaims them with :meth:`LocalBlobStore.reclaim`,
which decides and removes under the store's commit lock, so it never takes a blob in flight.

Temporary files (``.incoming-<random>``) are removed at a worker's start and by every sweep
only when no process holds their ``flock``. A writer takes the lock when it makes the file and
keeps it until the blob is committed and recorded, and :meth:`LocalBlobStore.reclaim` holds it
on a blob it renames away until it is overwritten; the kernel drops the lock of a process that
dies, so what a crash leaves is removed at once, and a live worker's file never is, however
slow its upload. No age threshold, so no clock to trust. (flock covers every process of one
machine; a store shared between machines needs its own liveness check.)

A full disk (ENOSPC, EDQUOT) surfaces as :class:`OutOfSpace`, never as a bare ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Protocol

from common.files import write_all
from dropbox.errors import DropboxError, error_chain
from dropbox.filetimes import discard, settle, settle_fd

_BLOB_ID = re.compile(r"\A[0-9a-f]{64}\Z")
_TEMP_PREFIX = ".incoming-"


class StorageError(DropboxError):
    """A blob operation failed (bad id, missing blob, I/O error)."""


#: The errno values that mean "no space left": the file system is full, or the server's
#: user is over its quota.
_NO_SPACE: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL: Final = 13
#: PostgreSQL's SQLSTATE ``disk_full`` (class 53, insufficient resources). Only this one:
#: ``out_of_memory`` (53200) and ``too_many_connections`` (53300) pass with time, and a
#: refusal that says "the disk is full" would send the operator to the wrong place.
_POSTGRES_DISK_FULL: Final = "53100"


class OutOfSpace(StorageError):
    """Storing failed because the disk (or the server's quota) is full.

    Raised by the blob store and the upload store in place of the ``OSError`` (ENOSPC,
    EDQUOT), so that every path can answer it plainly (HTTP 507) instead of with a 500.
    """

    def __init__(self, message: str = "the server is out of disk space") -> None:
        super().__init__(message)


def is_out_of_space(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) means the disk is full."""
    return any(_means_no_space(each) for each in error_chain(error))


def _means_no_space(error: BaseException) -> bool:
    if isinstance(error, OutOfSpace):
        return True
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return True
    # SQLite's "database or disk is full" (SQLITE_FULL), raw or wrapped by SQLAlchemy.
    if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
        return True
    # PostgreSQL's disk_full, raw from psycopg (its errors carry their SQLSTATE) or wrapped.
    return getattr(error, "sqlstate", None) == _POSTGRES_DISK_FULL


@contextlib.contextmanager
def out_of_space_as_error() -> Iterator[None]:
    """Turn an ``OSError`` meaning "disk full" raised inside the block into :class:`OutOfSpace`."""
    try:
        yield
    except OSError as error:
        if error.errno in _NO_SPACE:
            raise OutOfSpace() from None
        raise


def check_blob_id(blob_id: str) -> str:
    """A blob id is 64 lowercase hex digits; anything else could escape the store."""
    if not isinstance(blob_id, str) or not _BLOB_ID.match(blob_id):
        raise StorageError("invalid blob id")
    return blob_id


class BlobWriter(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    @property
    def size(self) -> int: ...

    def commit(self) -> str:
        """Make the blob durable and visible; return its id (hex SHA-256).

        The blob stays *held* (in flight: no sweep removes it) until :meth:`release`.
        """
        ...

    def release(self) -> None:
        """Stop holding the committed blob: the row naming it is recorded (or it was deleted)."""
        ...

    def abort(self) -> None: ...

    def __enter__(self) -> BlobWriter: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BlobStore(Protocol):
    def writer(self) -> BlobWriter: ...

    def open(self, blob_id: str) -> BinaryIO: ...

    def size(self, blob_id: str) -> int: ...

    def exists(self, blob_id: str) -> bool: ...

    def delete(self, blob_id: str) -> None: ...

    def ids(self) -> Iterator[str]: ...


class ReclaimableBlobStore(BlobStore, Protocol):
    """A blob store the orphan sweep can work on (dropbox/sweep.py): this module's
    :class:`LocalBlobStore`, or dropbox/database_blobs.py's store shared by several nodes."""

    def reclaim(self, blob_id: str, still_named: Callable[[str], bool]) -> bool: ...

    def remove_stale_temporaries(self) -> int: ...


class _LocalWriter:
    """A blob being written: a temporary file, locked (``flock``) for as long as it is held.

    The lock is what tells a sweep, in this process or another, that the file is in flight:
    it is taken when the temporary file is made (under the store's commit lock, so that no
    sweep can see the file unlocked) and kept through the rename until :meth:`release`.
    """

    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._size = 0
        self._path = store.root / f"{_TEMP_PREFIX}{secrets.token_hex(16)}"
        self._committed = False
        with store.commit_lock(), out_of_space_as_error():
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        settle(store.root)
        self._fd: int | None = fd

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._fd is None or self._committed:
            raise StorageError("blob writer is closed")
        with out_of_space_as_error():
            write_all(self._fd, data)
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    def commit(self) -> str:
        if self._fd is None or self._committed:
            raise StorageError("blob writer is closed")
        with out_of_space_as_error():
            os.fsync(self._fd)
        blob_id = self._hash.hexdigest()
        settle_fd(self._fd)
        with self._store.commit_lock(), out_of_space_as_error():
            os.replace(self._path, self._store.path(blob_id))
            self._committed = True
        settle(self._store.root)
        self._store.sync_dir()
        return blob_id

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock: the blob is no longer in flight
            self._fd = None

    def abort(self) -> None:
        """Remove the temporary file of a blob not yet committed (and stop holding it)."""
        if not self._committed:
            discard(self._path)
        self.release()

    def __enter__(self) -> _LocalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def __del__(self) -> None:
        # A writer dropped without abort or release: its file descriptor must not leak.
        if getattr(self, "_fd", None) is not None:
            self.abort()


class LocalBlobStore:
    """Blobs as files ``ROOT/<sha256 hex>`` (mode 0600) in one directory (mode 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    @contextlib.contextmanager
    def commit_lock(self) -> Iterator[None]:
        """The store's commit lock: an exclusive ``flock`` on its directory.

        Held briefly while a writer makes its temporary file or renames it into place, and
        while a sweep decides about and removes one blob. A flock belongs to one open file
        description, so it excludes other threads of this process as well as other processes
        (the CLI's ``dropbox purge``) on this machine.
        """
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def path(self, blob_id: str) -> Path:
        return self.root / check_blob_id(blob_id)

    def sync_dir(self) -> None:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def writer(self) -> _LocalWriter:
        return _LocalWriter(self)

    def open(self, blob_id: str) -> BinaryIO:
        try:
            return open(self.path(blob_id), "rb")
        except FileNotFoundError:
            raise StorageError("no such blob") from None

    def size(self, blob_id: str) -> int:
        try:
            return self.path(blob_id).stat().st_size
        except FileNotFoundError:
            raise StorageError("no such blob") from None

    def exists(self, blob_id: str) -> bool:
        return self.path(blob_id).is_file()

    def delete(self, blob_id: str) -> None:
        """Remove the blob. Missing blobs are fine: deletion is idempotent.

        The file is overwritten with zeros and discarded (:func:`dropbox.filetimes.discard`:
        unlinked at the next daily blur). On the deployment's file system (ext4 without a
        journal) the zeros land on the blob's blocks; on journaling and copy-on-write file
        systems and SSDs that is no guarantee, and the real protection is that blobs are
        ciphertext (docs/threat-model.md).
        """
        if discard(self.path(blob_id)):
            self.sync_dir()

    def ids(self) -> Iterator[str]:
        for entry in os.scandir(self.root):
            if _BLOB_ID.match(entry.name):
                yield entry.name

    def in_flight(self, blob_id: str) -> bool:
        """Whether a live writer (of any process on this machine) holds the blob.

        Call under :meth:`commit_lock`, where no writer can start or commit meanwhile.
        """
        try:
            fd = os.open(self.path(blob_id), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def reclaim(self, blob_id: str, still_named: Callable[[str], bool]) -> bool:
        """Remove the blob unless it is in flight or ``still_named(blob_id)``; True if removed.

        Both checks and the removal happen under :meth:`commit_lock`: a writer that commits
        the same id waits, and a writer that released its hold before the check recorded its
        row before, which ``still_named`` (a fresh database read) sees.
        """
        with self.commit_lock():
            # Locked as a writer locks its file: the test for "in flight", and, once renamed
            # to a temporary name, what keeps another process's remove_stale_temporaries from
            # unlinking it before it is overwritten.
            fd = _lock_if_free(self.path(blob_id))
            if fd is None:
                return False
            try:
                if still_named(blob_id):
                    os.close(fd)
                    return False
                # Renamed away under the lock, overwritten and unlinked outside it: a writer
                # committing the same bytes meanwhile makes a new, whole file under the name.
                doomed = self.root / f"{_TEMP_PREFIX}{secrets.token_hex(16)}"
                os.rename(self.path(blob_id), doomed)
            except FileNotFoundError:
                os.close(fd)
                return False
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
        try:
            discard(doomed)
        finally:
            os.close(fd)
        self.sync_dir()
        return True

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files no live writer holds (left by a crash); return how many."""
        count = 0
        with self.commit_lock():
            for entry in os.scandir(self.root):
                if not entry.name.startswith(_TEMP_PREFIX):
                    continue
                try:
                    fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer's
                finally:
                    os.close(fd)
                count += discard(Path(entry.path))
        return count


def _lock_if_free(path: Path) -> int | None:
    """An open descriptor of ``path`` holding its exclusive ``flock``; None if the file is
    gone or a live writer holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
