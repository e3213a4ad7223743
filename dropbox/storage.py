"""Blob storage for envelopes: ciphertext only, atomic, path-confined, really deleted.

The server stores every envelope as one blob, named by the SHA-256 of its bytes (content
addressing: a name reveals nothing but the content hash, and the same bytes are stored
once). Storage never sees plaintext and knows nothing of Flask or the database.

A blob is written through a :class:`BlobWriter`: bytes go to a temporary file in the store's
own directory, and :meth:`BlobWriter.commit` fsyncs it and renames it into place, so a blob
either exists whole or not at all. :meth:`BlobWriter.abort` (or leaving the ``with`` block on
an exception) removes the temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

from dropbox.errors import DropboxError

_BLOB_ID = re.compile(r"\A[0-9a-f]{64}\Z")
_TEMP_PREFIX = ".incoming-"


class StorageError(DropboxError):
    """A blob operation failed (bad id, missing blob, I/O error)."""


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
        """Make the blob durable and visible; return its id (hex SHA-256)."""
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


class _LocalWriter:
    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._size = 0
        self._path = store.root / f"{_TEMP_PREFIX}{secrets.token_hex(16)}"
        self._file: BinaryIO | None = open(  # noqa: SIM115 - closed in commit/abort
            os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb"
        )

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._file is None:
            raise StorageError("blob writer is closed")
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    def commit(self) -> str:
        if self._file is None:
            raise StorageError("blob writer is closed")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        blob_id = self._hash.hexdigest()
        os.replace(self._path, self._store.path(blob_id))
        self._store.sync_dir()
        return blob_id

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)

    def __enter__(self) -> _LocalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self.abort()


class LocalBlobStore:
    """Blobs as files ``ROOT/<sha256 hex>`` (mode 0600) in one directory (mode 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

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

        The file is overwritten with zeros before it is unlinked. On journaling and
        copy-on-write file systems and SSDs that is no guarantee; the real protection is
        that blobs are ciphertext (docs/threat-model.md).
        """
        path = self.path(blob_id)
        try:
            size = path.stat().st_size
            with open(path, "r+b") as handle:
                zeros = bytes(min(size, 1 << 20))
                left = size
                while left > 0:
                    left -= handle.write(zeros[: min(left, len(zeros))])
                handle.flush()
                os.fsync(handle.fileno())
            path.unlink()
        except FileNotFoundError:
            return
        self.sync_dir()

    def ids(self) -> Iterator[str]:
        for entry in os.scandir(self.root):
            if _BLOB_ID.match(entry.name):
                yield entry.name

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files left by a crash; return how many."""
        count = 0
        for entry in os.scandir(self.root):
            if entry.name.startswith(_TEMP_PREFIX):
                os.unlink(entry.path)
                count += 1
        return count
