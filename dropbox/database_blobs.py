"""Blobs in PostgreSQL, so that every app node reaches every envelope (``POSTERN_BLOB_STORE=
database``; local files in the data directory stay the default, dropbox/storage.py).

The same contract as :class:`dropbox.storage.LocalBlobStore`, the same ids (SHA-256 of the
bytes), with the database in place of the file system:

- **Streamed, never whole in memory.** A writer sends the bytes in chunks of
  :data:`CHUNK_SIZE` (1 MiB) as rows of ``blob_chunks`` under a random *content id*, all in
  one transaction on a connection of its own. :meth:`_DatabaseWriter.commit` adds the
  ``blobs`` row that names the content by its SHA-256, and commits: the blob exists whole or
  not at all. Leaving before the commit rolls back: nothing is left, not even a temporary
  (a crashed node's transaction is rolled back by PostgreSQL when its connection drops), so
  :meth:`DatabaseBlobStore.remove_stale_temporaries` has nothing to do. Committing bytes that
  are already stored rolls back too and keeps the stored copy: the same id, the same bytes.
  Reading streams the chunks one query at a time (:meth:`DatabaseBlobStore.open`).
- **Held until released, in any process on any node.** Where the local store holds a blob
  with an ``flock`` on its file, this one holds a PostgreSQL advisory lock, *shared*, on a
  key derived from the blob id, taken at the commit (before the ``blobs`` row is visible) on
  the writer's connection and kept until :meth:`_DatabaseWriter.release`. Like an ``flock``
  it belongs to a session and ends with it: a node that dies stops holding its blobs.
  Several writers of the same bytes hold it together.
- **Reclaimed atomically.** :meth:`DatabaseBlobStore.reclaim` runs one transaction that
  first takes the *exclusive* advisory lock of the candidate for the transaction
  (``pg_try_advisory_xact_lock``): it fails while any writer holds the blob, and while it is
  held no writer can start to hold it (a writer committing the same bytes waits). Then the
  ``still_named`` check (a fresh read: a writer that released recorded its row before), and
  the deletion of the row and its chunks. This is the local store's commit lock, per blob.

Only PostgreSQL has advisory locks, so this store needs it: :func:`require_postgresql`
refuses SQLite in one sentence. A writer holds one database connection for as long as its
blob streams in (a plain-form upload over Tor: minutes), so the engine's pool must allow one
per upload at once (docs/operations.md).

What a seized database shows of blobs is what a seized blob directory shows: ids and sizes.
Deleted rows stay in PostgreSQL's dead tuples until VACUUM, in its WAL until the segment is
recycled, and in base backups: the chunks are ciphertext, like the files the local store
overwrites on a file system that keeps no promise either (docs/threat-model.md).
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import BinaryIO, Final

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from dropbox.db import Base
from dropbox.errors import DropboxError
from dropbox.storage import OutOfSpace, StorageError, check_blob_id, is_out_of_space

#: Bytes per ``blob_chunks`` row: large enough that a pull needs few queries, small enough
#: that a writer or a reader holds one in memory without a thought.
CHUNK_SIZE: Final = 1 << 20
#: ``POSTERN_BLOB_STORE`` values.
LOCAL: Final = "local"
DATABASE: Final = "database"


class StoredBlob(Base):
    """A committed blob: its id names the content stored under ``content_id``."""

    __tablename__ = "blobs"

    blob_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Random, chosen by the writer before the id is known (the id is the hash of all bytes).
    content_id: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)


class BlobChunk(Base):
    """One :data:`CHUNK_SIZE` piece of a blob's bytes (the last one may be shorter)."""

    __tablename__ = "blob_chunks"

    content_id: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


def lock_key(blob_id: str) -> int:
    """The advisory lock key of a blob: its id's first 64 bits, as PostgreSQL's signed bigint.
    Two ids sharing a key only make one look held while the other is: never a removal."""
    key = int(check_blob_id(blob_id)[:16], 16)
    return key - (1 << 64) if key >= 1 << 63 else key


def require_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise DropboxError(
            "POSTERN_BLOB_STORE=database keeps the blobs in PostgreSQL: set "
            "POSTERN_DATABASE_URL to the PostgreSQL database every node shares"
        )


def _storage_error(error: BaseException) -> StorageError:
    """A database failure as the store's own error (full disk: :class:`OutOfSpace`)."""
    if is_out_of_space(error):
        return OutOfSpace()
    return StorageError(f"the blob store's database failed ({type(error).__name__})")


class _DatabaseWriter:
    """A blob streaming into one transaction, then held by a shared advisory lock."""

    def __init__(self, engine: Engine) -> None:
        self._hash = hashlib.sha256()
        self._size = 0
        self._seq = 0
        self._pending = bytearray()
        self._content_id = secrets.token_bytes(16)
        self._held: int | None = None
        self._committed = False
        try:
            self._connection: Connection | None = engine.connect()
            self._connection.begin()
            # A plain-form upload over Tor may pause longer than the server's limit on idle
            # transactions between two chunks; this transaction holds no row lock meanwhile.
            self._connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        except SQLAlchemyError as error:
            raise _storage_error(error) from None

    @property
    def size(self) -> int:
        return self._size

    def _open(self) -> Connection:
        if self._connection is None or self._committed:
            raise StorageError("blob writer is closed")
        return self._connection

    def _flush(self, connection: Connection, data: bytes) -> None:
        try:
            connection.execute(
                insert(BlobChunk).values(content_id=self._content_id, seq=self._seq, data=data)
            )
        except SQLAlchemyError as error:
            raise _storage_error(error) from None
        self._seq += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        connection = self._open()
        self._hash.update(data)
        self._size += len(data)
        self._pending += data
        while len(self._pending) >= CHUNK_SIZE:
            self._flush(connection, bytes(self._pending[:CHUNK_SIZE]))
            del self._pending[:CHUNK_SIZE]
        return len(data)

    def commit(self) -> str:
        connection = self._open()
        if self._pending:
            self._flush(connection, bytes(self._pending))
            self._pending.clear()
        blob_id = self._hash.hexdigest()
        key = lock_key(blob_id)
        try:
            # Held from before the row is visible: no sweep can take the blob from here on
            # (a sweep deciding about this id right now is waited for).
            connection.execute(select(func.pg_advisory_lock_shared(key)))
            self._held = key
            row = {"blob_id": blob_id, "content_id": self._content_id, "size": self._size}
            stored = (
                connection.execute(
                    select(StoredBlob.blob_id).where(StoredBlob.blob_id == blob_id)
                ).first()
                is not None
            )
            if not stored:
                try:
                    with connection.begin_nested():
                        connection.execute(insert(StoredBlob).values(**row))
                except IntegrityError:
                    stored = True  # another writer of the same bytes committed meanwhile
            if not stored:
                connection.commit()
            else:
                connection.rollback()  # the same bytes are stored already: keep that copy
        except SQLAlchemyError as error:
            self._discard()
            raise _storage_error(error) from None
        self._committed = True
        return blob_id

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if self._held is not None:
                connection.execute(select(func.pg_advisory_unlock_shared(self._held)))
                self._held = None
            if connection.in_transaction():
                connection.rollback()
            connection.close()
        except SQLAlchemyError:
            # A connection whose lock might outlive us goes, not back to the pool: closing
            # the session is what ends its locks.
            connection.invalidate()
            connection.close()

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
            self._held = None

    def abort(self) -> None:
        """Roll back a blob not yet committed (and stop holding a committed one)."""
        if not self._committed and self._connection is not None:
            try:
                self._connection.rollback()
            except SQLAlchemyError:
                self._discard()
        self.release()

    def __enter__(self) -> _DatabaseWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class _ChunkReader(io.RawIOBase):
    """A blob's bytes, fetched one chunk per query as they are read; seekable."""

    def __init__(self, engine: Engine, content_id: bytes, size: int) -> None:
        super().__init__()
        self._engine = engine
        self._content_id = content_id
        self._size = size
        self._position = 0
        self._chunk: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def _fetch(self, seq: int) -> bytes:
        if self._chunk is not None and self._chunk[0] == seq:
            return self._chunk[1]
        query = select(BlobChunk.data).where(
            BlobChunk.content_id == self._content_id, BlobChunk.seq == seq
        )
        try:
            with self._engine.connect() as connection:
                data = connection.execute(query).scalar_one_or_none()
        except SQLAlchemyError as error:
            raise _storage_error(error) from None
        if data is None:
            raise StorageError("the blob was deleted while it was being read")
        self._chunk = (seq, bytes(data))
        return self._chunk[1]

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._position >= self._size:
            return 0
        seq, offset = divmod(self._position, CHUNK_SIZE)
        data = self._fetch(seq)[offset:]
        count = min(len(buffer), len(data), self._size - self._position)
        buffer[:count] = data[:count]
        self._position += count
        return count


class DatabaseBlobStore:
    """Blobs as rows of ``blobs`` and ``blob_chunks`` in the shared PostgreSQL database."""

    def __init__(self, engine: Engine) -> None:
        require_postgresql(engine)
        self.engine = engine

    def writer(self) -> _DatabaseWriter:
        return _DatabaseWriter(self.engine)

    def _row(self, blob_id: str) -> tuple[bytes, int]:
        query = select(StoredBlob.content_id, StoredBlob.size).where(
            StoredBlob.blob_id == check_blob_id(blob_id)
        )
        try:
            with self.engine.connect() as connection:
                row = connection.execute(query).first()
        except SQLAlchemyError as error:
            raise _storage_error(error) from None
        if row is None:
            raise StorageError("no such blob")
        return bytes(row.content_id), int(row.size)

    def open(self, blob_id: str) -> BinaryIO:
        content_id, size = self._row(blob_id)
        reader = io.BufferedReader(_ChunkReader(self.engine, content_id, size), CHUNK_SIZE)
        return reader

    def size(self, blob_id: str) -> int:
        return self._row(blob_id)[1]

    def exists(self, blob_id: str) -> bool:
        try:
            self._row(blob_id)
        except StorageError as error:
            if str(error) == "no such blob":
                return False
            raise
        return True

    def delete(self, blob_id: str) -> None:
        """Remove the blob and its chunks in one transaction. Missing blobs are fine."""
        check_blob_id(blob_id)
        try:
            with self.engine.begin() as connection:
                self._remove(connection, blob_id)
        except SQLAlchemyError as error:
            raise _storage_error(error) from None

    @staticmethod
    def _remove(connection: Connection, blob_id: str) -> bool:
        content_id = connection.execute(
            delete(StoredBlob).where(StoredBlob.blob_id == blob_id).returning(StoredBlob.content_id)
        ).scalar_one_or_none()
        if content_id is None:
            return False
        connection.execute(delete(BlobChunk).where(BlobChunk.content_id == content_id))
        return True

    def ids(self) -> Iterator[str]:
        try:
            with self.engine.connect() as connection:
                found = list(connection.scalars(select(StoredBlob.blob_id)))
        except SQLAlchemyError as error:
            raise _storage_error(error) from None
        yield from found

    def in_flight(self, connection: Connection, blob_id: str) -> bool:
        """Whether a writer (of any node) holds the blob; if not, none can until the
        transaction of ``connection`` ends."""
        taken = connection.execute(select(func.pg_try_advisory_xact_lock(lock_key(blob_id))))
        return not taken.scalar_one()

    def reclaim(self, blob_id: str, still_named: Callable[[str], bool]) -> bool:
        """Remove the blob unless it is in flight or ``still_named(blob_id)``; True if removed.
        One transaction, holding the blob's exclusive advisory lock throughout."""
        check_blob_id(blob_id)
        try:
            with self.engine.begin() as connection:
                if self.in_flight(connection, blob_id) or still_named(blob_id):
                    return False
                return self._remove(connection, blob_id)
        except SQLAlchemyError as error:
            raise _storage_error(error) from None

    def remove_stale_temporaries(self) -> int:
        """Nothing to remove: an unfinished blob is an open transaction, rolled back when its
        writer aborts or its connection drops."""
        return 0
