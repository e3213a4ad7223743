"""Writing an import's envelope files while the bundle is read and verified.

Each envelope goes into HOME/store/envelopes/ under a temporary name (TEMP_PREFIX), written
by a writer thread (:class:`Spool`): file creation, writes and SHA-256 release the GIL, so
they use the second core while the calling thread verifies and decrypts. Every envelope is
decrypted from memory, once, as the bundle streams; none is read back from its file. Small
envelopes are held whole and decrypted (with their search terms) by the calling thread; the
spool decrypts each large one piece by piece right after writing the piece
(contents.ContentsStream).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

from common.files import write_all
from crypto import RecipientKeys
from crypto.bundle import InboundItem
from journalist_ui.errors import StationError
from journalist_ui.importer.contents import ContentsStream, Opened, open_received, opened_from
from journalist_ui.importer.direct_write import DirectFile, Staging
from journalist_ui.store.terms import Analyzer

TEMP_PREFIX = ".import-"
#: Envelopes up to this size are gathered in memory and decrypted whole; larger ones are
#: decrypted piece by piece as they stream.
IN_MEMORY_MAX = 1024 * 1024
#: Small envelopes held in memory until the bundle has verified, at most (bytes).
HELD_MAX = 64 * 1024 * 1024
#: A large envelope goes to the spool thread in writes of this many bytes.
WRITE_BATCH = 8 * 1024 * 1024
#: Bytes handed to the writer thread and not yet written, at most (bounds the memory used).
SPOOL_BACKLOG = 32 * 1024 * 1024
#: Large envelopes are written (and decrypted as they are) by a second thread.
SPOOL_THREAD = True
#: The calling thread decrypts held small envelopes while the spool's backlog is full,
#: rather than wait (bench/station.py --profile: ~2 s of waiting filled when the machine
#: was quiet; no better, nor clearly worse, when other work held both cores).
DECRYPT_WHILE_WAITING = True
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Spool:
    """A thread that writes the envelope files (and opens the large envelopes as it does)
    while the calling thread reads, verifies and decrypts the bundle: file writes and SHA-256
    release the GIL, so the two cores share the work. Jobs run in the order given; after a
    failure or :meth:`cancel` the remaining jobs are skipped."""

    def __init__(self, threaded: bool, idle: Callable[[], bool] | None = None) -> None:
        self._idle = idle
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], int] | None] = queue.SimpleQueue()
        self._room = threading.Condition()
        self._backlog = 0
        self._error: BaseException | None = None
        self._cancelled = False
        self._threaded = threaded
        self._thread = threading.Thread(target=self._run, name="postern-import-spool")
        if threaded:
            self._thread.start()

    def _run(self) -> None:
        while True:
            entry = self._jobs.get()
            if entry is None:
                return
            job, size = entry
            try:
                if self._error is None and not self._cancelled:
                    job()
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                self._error = exc
            finally:
                with self._room:
                    self._backlog -= size
                    self._room.notify_all()

    def submit(self, job: Callable[[], None], size: int) -> None:
        """Queue a job holding ``size`` bytes. While SPOOL_BACKLOG bytes are queued, call
        ``idle`` (work of the calling thread, which returns False when it has none) or wait."""
        idle = self._idle
        self.check()
        if not self._threaded:
            job()
            return
        if not self._thread.is_alive():
            raise OSError("the import's writer thread has stopped")
        with self._room:
            while self._backlog > SPOOL_BACKLOG and self._error is None:
                if idle is not None:
                    self._room.release()
                    try:
                        busy = idle()
                    finally:
                        self._room.acquire()
                    if busy:
                        continue
                self._room.wait()
            self._backlog += size
        self._jobs.put((job, size))

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        """Run every queued job, stop the thread and raise the first failure, if any."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self.check()

    def cancel(self) -> None:
        """Skip what is still queued and wait until the thread has stopped (idempotent)."""
        self._cancelled = True
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()


class Receiving:
    """What the sinks of one import share."""

    def __init__(self, directory: Path, keys: RecipientKeys, analyzer: Analyzer) -> None:
        self.directory = directory
        #: The journalist's keys, prepared once for every envelope of the import.
        self.keys = keys
        #: One analyzer for the import (it caches each word's search terms).
        self.analyzer = analyzer
        self.spool = Spool(SPOOL_THREAD, self.decrypt_one if DECRYPT_WHILE_WAITING else None)
        #: False once the bundle is known to be imported already: sinks then keep nothing.
        self.keep = True
        self.sinks: list[SpoolSink] = []
        #: Bytes of small envelopes held in memory until they are decrypted.
        self.held = 0
        #: Small envelopes held and not decrypted yet, oldest first.
        self.waiting: collections.deque[SpoolSink] = collections.deque()
        #: The buffer the large envelopes' direct writes go through (the spool thread's).
        self.staging = Staging()
        self.names = Names()

    def decrypt_one(self) -> bool:
        """Decrypt the oldest small envelope held (while the spool has work queued, instead
        of waiting for it); False if none is left."""
        if not self.waiting:
            return False
        sink = self.waiting.popleft()
        if sink.opened is None and sink.data is not None:
            self.held -= len(sink.data)
            sink.opened = sink.decrypt()
        return True


class Names:
    """Random file names (32 lowercase hex digits, 128 bits from the system's CSPRNG), drawn
    1024 at a time: one getrandom call, not one per file, in the thread that verifies."""

    def __init__(self) -> None:
        self._pool: list[str] = []

    def take(self) -> str:
        if not self._pool:
            block = os.urandom(16 * 1024).hex()
            self._pool = [block[at : at + 32] for at in range(0, len(block), 32)]
        return self._pool.pop()


class SpoolSink:
    """One envelope on its way into HOME/store/envelopes/, under a temporary name.

    An envelope of up to IN_MEMORY_MAX bytes is written to its file in one piece and kept in
    memory (HELD_MAX bytes of them at most, beyond which it is decrypted at once) to be
    decrypted from there, whenever the calling thread would otherwise wait for the spool, or
    else once the bundle has verified; a larger one is handed to the spool in batches of
    WRITE_BATCH bytes, each decrypted (and its content hashed) right after it is written.
    Either way each envelope is decrypted once, from memory, and its file holds exactly the
    bundle's bytes. What decrypting taught counts only once the whole bundle verified: until
    then nothing of it leaves the import.
    """

    def __init__(self, receiving: Receiving, item: InboundItem) -> None:
        self.item = item
        self.path = receiving.directory / f"{TEMP_PREFIX}{receiving.names.take()}.tmp"
        #: The whole envelope, for a small one until it is decrypted.
        self.data: bytes | None = None
        #: What decrypting it taught, if that happened on the way (by the spool for a large
        #: envelope, while waiting for the spool or beyond HELD_MAX for a small one).
        self.opened: Opened | None = None
        #: Set once its file has its final name in a committed import: nothing to remove.
        self.published = False
        self._receiving = receiving
        self._received = 0
        self._parts: list[bytes] = []
        self._pending = 0
        self._fd: int | None = None
        #: A large envelope's file, written past the page cache (never read back here).
        self._file: DirectFile | None = None
        self.small = item.size <= IN_MEMORY_MAX
        self._stream: ContentsStream | None = None
        if receiving.keep and not self.small:
            self._stream = ContentsStream(item.size, receiving.keys, item.kind)
            receiving.spool.submit(self._create_large, 0)

    def _create(self) -> None:
        self._fd = os.open(self.path, _CREATE_FLAGS, 0o600)

    def _create_large(self) -> None:
        self._file = DirectFile(self.path, _CREATE_FLAGS, 0o600, self._receiving.staging)

    def _append(self, parts: list[bytes]) -> None:
        cast(DirectFile, self._file).write(parts)

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def write(self, data: bytes, /) -> object:
        receiving = self._receiving
        self._received += len(data)
        if not receiving.keep:
            return len(data)
        complete = self._received >= self.item.size
        self._parts.append(data)
        self._pending += len(data)
        if not self.small:
            if complete or self._pending >= WRITE_BATCH or len(self._parts) >= 256:
                parts, size = self._parts, self._pending
                self._parts, self._pending = [], 0
                receiving.spool.submit(functools.partial(self._store, parts), size)
            if complete:
                receiving.spool.submit(self._close, 0)
                receiving.spool.submit(self._opened_stream, 0)
            return len(data)
        if complete:
            whole = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts, self._pending = [], 0
            if receiving.held + len(whole) > HELD_MAX:
                # Too much in memory already: decrypted now, then written by the spool.
                self.opened = open_received(
                    self.item, self.path, io.BytesIO(whole), receiving.keys, receiving.analyzer
                )
                receiving.spool.submit(functools.partial(self._write_whole, whole), len(whole))
            else:
                # Held, and decrypted from memory: the spool writes the file meanwhile
                # (creating ten thousand files is no work for the verifying thread).
                self.data = whole
                receiving.held += len(whole)
                receiving.waiting.append(self)
                receiving.spool.submit(functools.partial(self._write_whole, whole), len(whole))
        return len(data)

    def _write_whole(self, data: bytes) -> None:
        self._create()
        try:
            write_all(cast(int, self._fd), data)
        finally:
            self._close()

    def _store(self, parts: list[bytes]) -> None:
        """Write a batch of a large envelope, then decrypt it from memory (spool thread)."""
        self._append(parts)
        stream = cast(ContentsStream, self._stream)
        for part in parts:
            stream.write(part)

    def _opened_stream(self) -> None:
        stream, self._stream = cast(ContentsStream, self._stream), None
        self.opened = opened_from(self.item, self.path, stream.finish(), self._receiving.analyzer)

    def commit(self) -> None:
        # The files are made durable all at once before they get their names (publish.py).
        self._parts = []

    def abort(self) -> None:
        """Remove the file, once the spool has stopped (it might still create it)."""
        self._receiving.spool.cancel()
        self._parts = []
        self.data = None
        self._close()
        if self.published:
            return  # renamed: no unlink of a name that is gone (ten thousand lookups)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def decrypt(self) -> Opened:
        """Decrypt a small envelope held in memory: once."""
        keys, analyzer = self._receiving.keys, self._receiving.analyzer
        data, self.data = self.data, None
        if data is None:
            raise StationError(f"item {self.item.id}: its envelope is no longer in memory")
        return open_received(self.item, self.path, io.BytesIO(data), keys, analyzer)
