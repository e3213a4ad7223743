"""Writing a large envelope file past the page cache (``O_DIRECT``).

Why: the import never reads a large envelope back (the spool decrypts it from memory as it
streams), so its pages in the cache would only push out what the station uses; and filling
fresh page-cache pages is most of what a buffered write costs. On the station's reference
machine 1 GiB written through the cache took 3.3-3.5 CPU seconds, and 0.03 with ``O_DIRECT``,
the disk doing the copy while the two cores verify and decrypt (bench/station.py).

``O_DIRECT`` wants the memory, the length and the file offset of each write aligned to the
device's blocks. The bytes therefore go through one page-aligned staging buffer that the
import's files share (the spool thread writes one file at a time): whole blocks are written
directly, and fewer than :data:`ALIGN` bytes are carried over to the file's next write. The
last partial block is written through the cache when the file is closed. A file system that
refuses ``O_DIRECT`` (tmpfs), or a write it refuses, gets ordinary writes from then on: the
bytes on disk are the same either way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
from collections.abc import Iterable
from typing import Final

from common.files import write_all

#: Alignment of every direct write: a page, which covers every block size in use (512, 4096).
ALIGN: Final = mmap.PAGESIZE if mmap.PAGESIZE % 4096 == 0 else 4096
#: Size of the staging buffer (a multiple of ALIGN).
STAGING_BYTES: Final = 8 * 1024 * 1024


class Staging:
    """The page-aligned buffer the direct writes of one import go through (one thread)."""

    def __init__(self, size: int = STAGING_BYTES) -> None:
        if size <= 0 or size % ALIGN:
            raise ValueError(f"the staging buffer must be a positive multiple of {ALIGN} bytes")
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None
        self.size = size

    @property
    def view(self) -> memoryview:
        """The buffer, mapped on first use (an import without a large envelope maps none)."""
        if self._view is None:
            # Anonymous mappings start on a page boundary: every slice [k * ALIGN:] is aligned.
            self._map = mmap.mmap(-1, self.size)
            self._view = memoryview(self._map)
        return self._view

    def close(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None
        if self._map is not None:
            mapping, self._map = self._map, None
            # A write that failed (a full disk) left slices of the buffer in its traceback's
            # frames: the mapping goes when they do. Raising here would hide that failure.
            with contextlib.suppress(BufferError):
                mapping.close()


class DirectFile:
    """A new file (opened with ``flags`` and ``mode``) written past the page cache when the
    file system allows it; see the module text."""

    def __init__(
        self, path: os.PathLike[str] | str, flags: int, mode: int, staging: Staging
    ) -> None:
        self._staging = staging
        self._tail = b""  # fewer than ALIGN bytes not written yet
        try:
            self.fd = os.open(path, flags | os.O_DIRECT, mode)
            self.direct = True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.fd = os.open(path, flags, mode)
            self.direct = False

    def write(self, parts: Iterable[bytes | memoryview]) -> None:
        """Append ``parts``, in order."""
        if not self.direct:
            # What a direct write left over comes first.
            tail, self._tail = self._tail, b""
            for part in (tail, *parts):
                write_all(self.fd, part)
            return
        buffer = self._staging.view
        held = len(self._tail)
        buffer[:held] = self._tail
        for part in parts:
            data = memoryview(part)
            while data:
                take = min(len(buffer) - held, len(data))
                buffer[held : held + take] = data[:take]
                held += take
                data = data[take:]
                if held == len(buffer):
                    self._write_blocks(buffer, held)
                    held = 0
        whole = held - held % ALIGN
        self._write_blocks(buffer, whole)
        self._tail = bytes(buffer[whole:held])

    def _write_blocks(self, buffer: memoryview, size: int) -> None:
        view = buffer[:size]
        while view:
            if not self.direct:
                write_all(self.fd, view)
                return
            try:
                done = os.write(self.fd, view)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._stop_direct()  # alignment this file system does not take
                continue
            view = view[done:]
            if done % ALIGN:
                self._stop_direct()  # a short write left the offset unaligned

    def _stop_direct(self) -> None:
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        self.direct = False

    def close(self) -> None:
        """Write what is left (through the cache: it is not a whole block) and close."""
        try:
            if self._tail:
                if self.direct:
                    self._stop_direct()
                write_all(self.fd, self._tail)
                self._tail = b""
        finally:
            os.close(self.fd)
