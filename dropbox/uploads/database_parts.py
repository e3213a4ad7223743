"""Part data in PostgreSQL, so that an upload started on one app node can be resumed on
another (``POSTERN_BLOB_STORE=database``: the one setting for "shared storage"; files in the
data directory, :class:`dropbox.uploads.parts.LocalParts`, stay the default).

The same two protocols as the local store (:mod:`dropbox.uploads.parts`), with rows in place
of a file:

- **Pieces as rows.** A part is the rows of ``upload_parts`` under its name, ordered by
  ``seq``; each holds at most :data:`PIECE_MAX` (1 MiB) of bytes. :meth:`DatabaseParts.create`
  writes the empty piece ``seq = 0``, which marks that the part exists; its size is the sum of
  the pieces' lengths (the upload offset, with no second copy that could disagree).
- **Appended as the bytes arrive, never whole in memory.** An exclusive holder gathers what
  it is given up to 1 MiB and inserts that as the next piece, each insert committed on its
  own; :meth:`_DatabasePart.sync` inserts what is left. A request that breaks off keeps the
  pieces already committed, as the local store keeps the bytes written.
- **Exclusive across nodes.** An exclusive open takes ``pg_try_advisory_lock`` on a key
  derived from the name, on a connection held for the whole open (the second opener, on any
  node, gets :class:`UploadBusy`). Like an ``flock`` it ends with its session: a node that dies
  stops holding its parts. Readers (:meth:`DatabaseParts.open` without ``exclusive``) take no
  lock: pieces are only ever added while an upload is incomplete, and read once it is whole.
- **Cut back, discarded.** :meth:`_DatabasePart.truncate` deletes the pieces past the size and
  shortens the one it falls in; :meth:`DatabaseParts.discard` deletes every row of the part,
  without waiting for the lock (as the local store's discard). An append still running then
  adds rows under a name no upload names: :meth:`dropbox.uploads.UploadStore.expire`
  discards them, as it does the parts of a deleted source.

A full database (anything :func:`dropbox.storage.is_out_of_space` recognizes: PostgreSQL's
``disk_full``, SQLite's ``SQLITE_FULL``) is raised as an ``OSError`` of ``ENOSPC``, as a full
disk under the local store: the upload store then cuts the part back and answers "full"
(dropbox/uploads/store.py). Other database failures raise :class:`dropbox.uploads.UploadError`.

What a seized database shows of parts is what a seized part directory shows: random names and
sizes of ciphertext; deleted rows linger in dead tuples and WAL until VACUUM and recycling
(docs/threat-model.md), as the blobs' chunks do (dropbox/database_blobs.py).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
from collections.abc import Iterator
from typing import Final

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from dropbox.database_blobs import require_postgresql
from dropbox.db import Base
from dropbox.storage import is_out_of_space
from dropbox.uploads.parts import PART_NAME, Part
from dropbox.uploads.upload import UploadBusy, UploadError, UploadNotFound

#: The most bytes one ``upload_parts`` row holds.
PIECE_MAX: Final = 1 << 20
_LOCK_CONTEXT: Final = b"postern upload part lock v1\x00"


class PartPiece(Base):
    """One piece of an upload's part data; ``seq = 0`` (empty) marks that the part exists."""

    __tablename__ = "upload_parts"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


def lock_key(name: str) -> int:
    """The advisory lock key of a part: 64 bits of a hash of its name, as a signed bigint.
    Hashed with a context of its own, so that it never meets a blob's key by design."""
    digest = hashlib.sha256(_LOCK_CONTEXT + name.encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _checked(name: str) -> str:
    if not isinstance(name, str) or not PART_NAME.match(name):
        raise UploadNotFound("no such upload")
    return name


def _failure(error: SQLAlchemyError) -> Exception:
    """A database failure as the part store's error: full is ``ENOSPC``, as for a file."""
    if is_out_of_space(error):
        return OSError(errno.ENOSPC, "the part store's database is full")
    return UploadError(f"the part store's database failed ({type(error).__name__})")


class _DatabasePart:
    """One part, opened on a connection of its own (holding its lock when exclusive)."""

    def __init__(self, connection: Connection, name: str) -> None:
        self._connection = connection
        self._name = name
        self._pending = bytearray()
        #: (seq, start, length) of every stored piece, in order; read again when needed.
        self._pieces: list[tuple[int, int, int]] = []
        self._cached: tuple[int, bytes] | None = None
        self._load()

    def _load(self) -> None:
        query = (
            select(PartPiece.seq, func.length(PartPiece.data))
            .where(PartPiece.name == self._name)
            .order_by(PartPiece.seq)
        )
        with self._transaction() as connection:
            rows = list(connection.execute(query))
        if not rows:
            raise UploadNotFound("no such upload")
        start = 0
        self._pieces = []
        for seq, length in rows:
            self._pieces.append((int(seq), start, int(length)))
            start += int(length)
        self._cached = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with self._connection.begin():
                yield self._connection
        except SQLAlchemyError as error:
            raise _failure(error) from error

    def _stored(self) -> int:
        _seq, start, length = self._pieces[-1]
        return start + length

    def size(self) -> int:
        return self._stored() + len(self._pending)

    def _flush(self) -> None:
        if not self._pending:
            return
        seq = self._pieces[-1][0] + 1
        data = bytes(self._pending)
        with self._transaction() as connection:
            connection.execute(insert(PartPiece).values(name=self._name, seq=seq, data=data))
        self._pieces.append((seq, self._stored(), len(data)))
        self._pending.clear()

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = PIECE_MAX - len(self._pending)
            self._pending += view[:room]
            view = view[room:]
            if len(self._pending) >= PIECE_MAX:
                self._flush()

    def sync(self) -> None:
        self._flush()

    def truncate(self, size: int) -> None:
        stored = self._stored()
        if size >= stored:
            del self._pending[size - stored :]
            return
        self._pending.clear()
        with self._transaction() as connection:
            for seq, start, length in self._pieces:
                if start >= size and seq > 0:
                    connection.execute(
                        delete(PartPiece).where(PartPiece.name == self._name, PartPiece.seq == seq)
                    )
                elif start < size < start + length:
                    connection.execute(
                        update(PartPiece)
                        .where(PartPiece.name == self._name, PartPiece.seq == seq)
                        .values(data=func.substr(PartPiece.data, 1, size - start))
                    )
        self._load()

    def read(self, offset: int, size: int) -> bytes:
        self._flush()
        if offset >= self._stored():
            self._load()  # another holder may have appended since this one opened
        for seq, start, length in self._pieces:
            if start <= offset < start + length:
                data = self._piece(seq)[offset - start :]
                return data[:size]
        return b""

    def _piece(self, seq: int) -> bytes:
        if self._cached is None or self._cached[0] != seq:
            query = select(PartPiece.data).where(PartPiece.name == self._name, PartPiece.seq == seq)
            with self._transaction() as connection:
                data = connection.execute(query).scalar_one_or_none()
            if data is None:
                raise UploadNotFound("the upload was deleted while it was being read")
            self._cached = (seq, bytes(data))
        return self._cached[1]


class DatabaseParts:
    """Part data as rows of ``upload_parts`` in the shared PostgreSQL database."""

    def __init__(self, engine: Engine) -> None:
        require_postgresql(engine)
        self.engine = engine

    def create(self, name: str) -> None:
        row = {"name": _checked(name), "seq": 0, "data": b""}
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(PartPiece).values(**row))
        except IntegrityError:
            raise FileExistsError(name) from None
        except SQLAlchemyError as error:
            raise _failure(error) from error

    @contextlib.contextmanager
    def open(self, name: str, *, exclusive: bool) -> Iterator[Part]:
        _checked(name)
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as error:
            raise _failure(error) from error
        locked = False
        try:
            if exclusive:
                try:
                    with connection.begin():
                        locked = bool(
                            connection.execute(
                                select(func.pg_try_advisory_lock(lock_key(name)))
                            ).scalar_one()
                        )
                except SQLAlchemyError as error:
                    raise _failure(error) from error
                if not locked:
                    raise UploadBusy("the upload is in use")
            yield _DatabasePart(connection, name)
        finally:
            _close(connection, lock_key(name) if locked else None)

    def size(self, name: str) -> int | None:
        if not isinstance(name, str) or not PART_NAME.match(name):
            return None
        query = select(func.count(), func.coalesce(func.sum(func.length(PartPiece.data)), 0))
        try:
            with self.engine.connect() as connection:
                count, total = connection.execute(query.where(PartPiece.name == name)).one()
        except SQLAlchemyError as error:
            raise _failure(error) from error
        return int(total) if count else None

    def discard(self, name: str) -> bool:
        try:
            with self.engine.begin() as connection:
                gone = connection.execute(delete(PartPiece).where(PartPiece.name == _checked(name)))
        except SQLAlchemyError as error:
            raise _failure(error) from error
        return bool(gone.rowcount)

    def names(self) -> Iterator[str]:
        try:
            with self.engine.connect() as connection:
                found = list(connection.scalars(select(PartPiece.name).distinct()))
        except SQLAlchemyError as error:
            raise _failure(error) from error
        yield from found


def _close(connection: Connection, held: int | None) -> None:
    """Give the connection back, its lock released; a connection whose lock might outlive
    this goes instead of back to the pool (closing the session is what ends its locks)."""
    try:
        if connection.in_transaction():
            connection.rollback()
        if held is not None:
            with connection.begin():
                connection.execute(select(func.pg_advisory_unlock(held)))
        connection.close()
    except SQLAlchemyError:
        connection.invalidate()
        connection.close()
