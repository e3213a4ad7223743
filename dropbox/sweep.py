"""Reclaiming orphan blobs: ciphertext that no database row names and no request is writing.

A blob is committed before the row that names it (dropbox/storage.py), so a crash between
the two, or a clean-up that failed, leaves an *orphan*: a blob nothing will ever list, send
or purge. :func:`sweep` removes them, and the temporary files of writers that died.

Correct by construction, not by timing: a blob is held by its writer (an ``flock`` on its
file, in whatever process writes it) from before it has its name until after its row is
committed, and :meth:`dropbox.storage.LocalBlobStore.reclaim` decides about one candidate
and removes it under the store's commit lock, re-reading the database there. So a blob is
removed only if, at one moment during which no writer can commit, no writer held it and no
row named it. There is no age threshold: a fresh orphan goes as surely as an old one, and a
slow upload is never touched however long it takes.

The in-flight check is the one interface :class:`Reclaimable` (today: flocks on one machine's
file system, which covers every process there, ``dropbox purge`` included). A server spread
over several machines would back it with the database instead: a table of held blob ids,
inserted with the commit and deleted with the release, and ``reclaim`` as one transaction.

:class:`Sweeper` runs the sweep in a background thread owned by the app's services, started
and stopped explicitly; the app also sweeps once before it serves. The same thread runs the
server's daily jobs (``daily``, every :data:`DAILY_INTERVAL`): the upload expiry, the blur of
file times (dropbox/filetimes.py) and the report of held-back request log records
(dropbox/request_log.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Protocol

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from dropbox.db import Item, Reply
from dropbox.errors import DropboxError

_log = logging.getLogger(__name__)

#: How often the app's background sweep runs. Orphans come only from crashes (reclaimed at
#: the next start) and from clean-ups that failed, so this need not be frequent.
SWEEP_INTERVAL: Final = timedelta(hours=1)
#: How often the daily jobs run (the first time one interval after the thread starts; the app
#: runs them once when it starts).
DAILY_INTERVAL: Final = timedelta(days=1)


class Reclaimable(Protocol):
    """What the sweep needs of a blob store (dropbox.storage.LocalBlobStore)."""

    def ids(self) -> Iterator[str]: ...

    def size(self, blob_id: str) -> int: ...

    def reclaim(self, blob_id: str, still_named: Callable[[str], bool]) -> bool:
        """Remove the blob unless it is in flight or ``still_named``, atomically with
        respect to writers committing; True if it was removed."""
        ...

    def remove_stale_temporaries(self) -> int: ...


@dataclass(frozen=True)
class SweepResult:
    """What a sweep removed: orphan blobs, their bytes, and stale temporary files."""

    blobs: int
    bytes: int
    temporaries: int


def named_blob_ids(db: Session) -> set[str]:
    """Every blob id an item or a reply names."""
    return set(db.scalars(union(select(Item.blob_id), select(Reply.blob_id))))


def blob_named(db: Session, blob_id: str) -> bool:
    for model in (Item, Reply):
        if db.scalars(select(model.id).where(model.blob_id == blob_id).limit(1)).first():
            return True
    return False


def sweep(db: sessionmaker[Session], blobs: Reclaimable) -> SweepResult:
    """Remove every orphan blob and every temporary file no live writer holds."""
    temporaries = blobs.remove_stale_temporaries()
    on_disk = set(blobs.ids())
    with db() as session:
        candidates = sorted(on_disk - named_blob_ids(session))

    def still_named(blob_id: str) -> bool:
        with db() as session:  # a fresh read, under the store's commit lock
            return blob_named(session, blob_id)

    count = size = 0
    for blob_id in candidates:
        try:
            length = blobs.size(blob_id)
        except DropboxError:
            continue  # gone meanwhile
        if blobs.reclaim(blob_id, still_named):
            count += 1
            size += length
    if count or temporaries:
        _log.warning(
            "reclaimed %d orphan blob(s) (%d bytes) and %d stale temporary file(s)",
            count,
            size,
            temporaries,
        )
    return SweepResult(blobs=count, bytes=size, temporaries=temporaries)


class Sweeper:
    """Runs :func:`sweep` every ``interval`` in a daemon thread, from :meth:`start` to
    :meth:`stop`. A failed sweep is logged (its type only) and tried again next time."""

    def __init__(
        self,
        db: sessionmaker[Session],
        blobs: Reclaimable,
        interval: timedelta = SWEEP_INTERVAL,
        *,
        daily: Sequence[Callable[[], object]] = (),
        daily_interval: timedelta = DAILY_INTERVAL,
    ) -> None:
        if interval <= timedelta(0) or daily_interval <= timedelta(0):
            raise ValueError("the sweep interval must be positive")
        self._db = db
        self._blobs = blobs
        self._interval = interval.total_seconds()
        self._daily = tuple(daily)
        self._daily_interval = daily_interval.total_seconds()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> SweepResult | None:
        try:
            result = sweep(self._db, self._blobs)
        except Exception as error:  # noqa: BLE001 - the thread must survive a bad round
            _log.error("the orphan sweep failed: %s", type(error).__name__)
            return None
        return result

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the sweeper runs already")
        self._thread = threading.Thread(target=self._loop, name="postern-sweep", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_daily(self) -> None:
        """Run each daily job; one that fails is logged (its type only), the others still run."""
        for job in self._daily:
            try:
                job()
            except Exception as error:  # noqa: BLE001 - the thread must survive a bad day
                _log.error("a daily job failed: %s", type(error).__name__)

    def _loop(self) -> None:
        next_daily = time.monotonic() + self._daily_interval
        while not self._stopping.wait(min(self._interval, self._daily_interval)):
            self.run_once()
            if time.monotonic() >= next_daily:
                next_daily += self._daily_interval
                self.run_daily()
