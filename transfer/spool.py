"""The pull's spool: hashes and syncs the bundle file behind the thread that writes it.

The receiving thread writes each envelope into the partial bundle itself (with
:mod:`transfer.download`); the threads here read the new bytes back while they are still in
the page cache and compare each envelope's SHA-256 with the signed manifest, so that the
check costs no time on the network's side.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from crypto.bundle import InboundItem
from transfer.errors import TransferError

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher

#: Bytes the pull's hashing thread waits for before it reads them back and hashes them ...
HASH_STEP: Final = 4 * 1024 * 1024
#: ... in reads of this size, small enough for the processor's cache.
HASH_READ: Final = 256 * 1024
#: Threads that hash: one envelope at a time each, so more help when hashing falls behind.
HASH_THREADS: Final = max(2, min(4, os.cpu_count() or 2))
#: Bytes written between two background ``fdatasync`` calls.
SYNC_EVERY: Final = 64 * 1024 * 1024


def hash_range(fd: int, hasher: Hasher, start: int, end: int, buffer: bytearray) -> int:
    """Add the file's bytes from ``start`` to ``end`` to ``hasher``, read through ``buffer``;
    return where the reading stopped (``end``, or the end of a shorter file)."""
    view = memoryview(buffer)
    while start < end:
        count = os.preadv(fd, [view[: min(len(view), end - start)]], start)
        if not count:
            break
        hasher.update(view[:count])
        start += count
    return start


class Spool:
    """Hashes and syncs what the receiving thread wrote into the bundle file, off that thread.

    The receiving thread writes each envelope into the file itself (with
    :mod:`transfer.download`), marks where it starts and ends (:meth:`begin`, :meth:`end`)
    and reports progress (:meth:`wrote`). Background threads read the new bytes back while
    they are still in the page cache, hash them and compare each envelope's digest with the
    manifest's; the receiving thread goes on with the next envelope meanwhile and learns of
    a mismatch from :meth:`mismatch` or :meth:`settle`. An envelope is hashed by one thread
    at a time, in order, but when hashing falls behind, other threads take the envelopes
    after it, so that every processor helps. Every ``SYNC_EVERY`` bytes another thread calls
    ``fdatasync``, so that the final ``fsync`` does not have the whole bundle to flush at
    once. A failure in a background thread is raised in the caller at its next call.
    """

    def __init__(self, fd: int, hashers: int = HASH_THREADS) -> None:
        self._fd = fd
        self._lock = threading.Condition()
        self._segments: list[Segment] = []  # not yet checked
        self._current: Segment | None = None  # the one being written (between begin and end)
        self._written = 0  # file offset up to which the receiving thread has written
        self._mismatch: Segment | None = None
        self._closing = False
        self._unsynced = 0
        self._error: BaseException | None = None
        self._sync_wanted = threading.Event()
        self._threads = [
            threading.Thread(target=self._hash_loop, name=f"pull-hasher-{n}", daemon=True)
            for n in range(max(1, hashers))
        ]
        self._threads.append(threading.Thread(target=self._sync_loop, name="pull-syncer"))
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    # -- the caller's side --

    def begin(self, item: InboundItem, base: int, hasher: Hasher, position: int) -> None:
        """The envelope of ``item``, which starts at ``base`` in the file, is written from
        ``position`` on; ``hasher`` has hashed its bytes before ``position``.

        The receiving thread alone decides where each envelope lies: every segment carries
        its own range, so the order in which the threads finish hashing them matters not.
        """
        with self._lock:
            self._check()
            if self._current is not None:
                raise AssertionError("an envelope begins before the one before it ended")
            segment = Segment(item, base, hasher, position)
            self._current = segment
            self._written = position
            self._segments.append(segment)

    def wrote(self, position: int) -> None:
        """The current envelope is written up to ``position`` (a file offset)."""
        with self._lock:
            self._check()
            self._unsynced += position - self._written
            self._written = position
            current = self._current
            if current is not None and position - current.hashed >= HASH_STEP:
                self._lock.notify_all()
        if self._unsynced >= SYNC_EVERY:
            self._unsynced = 0
            self._sync_wanted.set()

    def end(self) -> None:
        """The current envelope is written whole (up to the last :meth:`wrote` position)."""
        with self._lock:
            if self._current is None:
                raise AssertionError("no envelope is being written")
            self._current.end = self._written
            self._current = None
            self._lock.notify_all()

    def mismatch(self) -> Segment | None:
        """The first envelope found not to match the manifest so far, without waiting."""
        with self._lock:
            self._check()
            return self._mismatch

    def settle(self) -> Segment | None:
        """Wait until every envelope written is hashed; return the first that did not match
        the manifest, and forget it (so that a fetch once more can be checked afresh)."""
        with self._lock:
            while self._segments and self._error is None:
                self._lock.wait()
            self._check()
            bad, self._mismatch = self._mismatch, None
            return bad

    def close(self) -> None:
        """Stop the threads; raise what failed in them."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._lock.notify_all()
        self._sync_wanted.set()
        for thread in self._threads:
            thread.join()
        self._check()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the threads --

    def _next_piece(self) -> tuple[Segment, int] | None:
        """Under the lock: wait for bytes to hash; return a segment, now busy, and where to
        hash it to, or None when the thread is to stop. Segments hashed whole are checked
        and dropped here."""
        while True:
            if self._closing or self._error is not None:
                return None
            for segment in list(self._segments):
                if segment.busy:
                    continue
                if segment.end is not None and segment.hashed >= segment.end:
                    self._segments.remove(segment)
                    bad = segment.hasher.digest() != segment.item.sha256
                    if bad and (self._mismatch is None or segment.base < self._mismatch.base):
                        self._mismatch = segment
                    self._lock.notify_all()
                    continue
                # Only the current segment has no end yet: it is hashed up to what is written.
                stop = self._written if segment.end is None else segment.end
                if stop - segment.hashed >= HASH_STEP or (
                    segment.end is not None and stop > segment.hashed
                ):
                    segment.busy = True
                    return segment, stop
            self._lock.wait()

    def _hash_loop(self) -> None:
        buffer = bytearray(HASH_READ)
        while True:
            with self._lock:
                piece = self._next_piece()
            if piece is None:
                return
            segment, stop = piece
            try:
                reached = hash_range(self._fd, segment.hasher, segment.hashed, stop, buffer)
                if reached != stop:
                    raise TransferError("the partial bundle file became shorter while written")
            except (OSError, TransferError) as exc:
                with self._lock:
                    self._error = self._error or exc
                    self._lock.notify_all()
                return
            with self._lock:
                segment.hashed = stop
                segment.busy = False
                self._lock.notify_all()

    def _sync_loop(self) -> None:
        while True:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            if self._closing:
                return
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                with self._lock:
                    self._error = self._error or exc
                    self._lock.notify_all()


@dataclass(eq=False)
class Segment:
    """In the spool: one envelope, hashed as it is written into the bundle file."""

    item: InboundItem
    base: int  # where the envelope starts in the file
    hasher: Hasher
    hashed: int  # the file offset up to which ``hasher`` has hashed it
    end: int | None = None  # where it ends, once it is written whole
    busy: bool = False  # a thread is hashing it
