"""The bytes of incomplete uploads ("part data"), behind one small interface.

:class:`PartStore` is all :class:`dropbox.uploads.UploadStore` asks of the place where the
bytes received so far live; the upload's state is in the database. :class:`LocalParts`, the
default, keeps each part as a file ``ROOT/<name>`` (mode 0600, in a directory of mode 0700)
whose size *is* the upload offset, so there is no second copy of the offset that could
disagree with the bytes. :class:`dropbox.uploads.database_parts.DatabaseParts` implements the
same two protocols with rows of PostgreSQL, for app nodes on several machines
(``POSTERN_BLOB_STORE=database``; :func:`dropbox.services.open_part_store` chooses).

A store signals a full disk (or database) by raising an ``OSError`` that
:func:`dropbox.storage.is_out_of_space` recognizes, from ``create``, ``append`` or ``sync``:
the upload store then cuts the part back and answers "full".

Names are 32 random lowercase hex digits, chosen by the upload store and unrelated to the
upload's id: a name left in a directory block after its file is gone ties it to nothing.
Every name is checked before a path is built from it.

Exclusive opens hold a lock for their whole duration (an ``flock`` on the file): two
requests never interleave their bytes in one part (the second gets :class:`UploadBusy`).

Times: after every change the file's and the directory's access and modification times are
set to the day (:mod:`dropbox.filetimes`); a part is removed with
:func:`dropbox.filetimes.discard` (overwritten with zeros, unlinked at the daily blur).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final, Protocol

from common.files import fsync_dir, write_all
from dropbox.filetimes import discard, settle, settle_fd
from dropbox.uploads.upload import UploadBusy, UploadNotFound

PART_NAME: Final = re.compile(r"\A[0-9a-f]{32}\Z")
_OPEN_FLAGS: Final = os.O_NOFOLLOW | os.O_CLOEXEC


class Part(Protocol):
    """One upload's part data, opened."""

    def size(self) -> int: ...

    def read(self, offset: int, size: int) -> bytes: ...

    def append(self, data: bytes) -> None: ...

    def truncate(self, size: int) -> None:
        """Cut the part back to ``size`` bytes (after a failed append)."""
        ...

    def sync(self) -> None:
        """Make what was appended durable (and its times a day's)."""
        ...


class PartStore(Protocol):
    def create(self, name: str) -> None:
        """Make an empty part; FileExistsError if the name is taken."""
        ...

    def open(self, name: str, *, exclusive: bool) -> AbstractContextManager[Part]:
        """The part, locked for this holder alone with ``exclusive`` (else UploadBusy);
        UploadNotFound if there is none."""
        ...

    def size(self, name: str) -> int | None:
        """The part's size, None if there is none."""
        ...

    def discard(self, name: str) -> bool:
        """Remove the part for good; whether there was one."""
        ...

    def names(self) -> Iterator[str]:
        """The name of every part stored."""
        ...


class _LocalPart:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def append(self, data: bytes) -> None:
        write_all(self._fd, data)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)  # shrinking needs no new block

    def sync(self) -> None:
        os.fsync(self._fd)
        settle_fd(self._fd)


class LocalParts:
    """Part data as files ``ROOT/<name>``; see the module text."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if not isinstance(name, str) or not PART_NAME.match(name):
            raise UploadNotFound("no such upload")
        return self.root / name

    def create(self, name: str) -> None:
        path = self.path(name)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600))
        settle(path)
        settle(self.root)
        fsync_dir(self.root)

    @contextlib.contextmanager
    def open(self, name: str, *, exclusive: bool) -> Iterator[Part]:
        flags = (os.O_RDWR | os.O_APPEND) if exclusive else os.O_RDONLY
        try:
            fd = os.open(self.path(name), flags | _OPEN_FLAGS)
        except FileNotFoundError:
            raise UploadNotFound("no such upload") from None
        try:
            if exclusive:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UploadBusy("the upload is in use") from None
            yield _LocalPart(fd)
        finally:
            os.close(fd)  # also releases the flock, if taken

    def size(self, name: str) -> int | None:
        try:
            return os.stat(self.path(name), follow_symlinks=False).st_size
        except (FileNotFoundError, UploadNotFound):
            return None

    def discard(self, name: str) -> bool:
        if not discard(self.path(name)):
            return False
        fsync_dir(self.root)
        return True

    def names(self) -> Iterator[str]:
        for entry in list(os.scandir(self.root)):
            if PART_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                yield entry.name
