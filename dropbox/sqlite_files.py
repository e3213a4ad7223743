"""The SQLite database's files, as a seized disk would show them: no old row, no fine time.

``secure_delete`` overwrites a deleted row in the database file, but SQLite's rollback
journal holds a copy of every page before it changes, the deleted row included. In the
default mode (DELETE) that journal is written and unlinked at every write transaction, so
its blocks, rows and all, go to the file system's free space; TRUNCATE does the same, and
WAL keeps old frames in its file and, truncated, in free blocks. Measured on the raw image
(tests/seizure): each of them leaves rows of deleted sources behind.

So (docs/operations.md, "The database's journal"):

- ``journal_mode=PERSIST`` keeps one journal file for good, with no size limit: SQLite
  zeroes its header at each commit, its blocks are never freed, and it stays crash safe
  (a hot journal is rolled back as in every rollback mode);
- after every connection that changed something goes back to the pool, :func:`_scrub`
  takes the write lock (``BEGIN IMMEDIATE``: no other writer can use the journal then),
  overwrites the whole journal with zeros, syncs it and lets go. A crash while it zeroes
  is harmless: the header was zero already, so the journal is not hot;
- ``temp_store=MEMORY``: statement journals and temporary tables stay out of files;
- the database file, the journal and their directory get the day as their times
  (:mod:`dropbox.filetimes`) after every write.

The cost is one more lock and one more fsync per write transaction: bench/source.py
measures it (the figures are in docs/operations.md).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Final, cast

from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from dropbox.filetimes import overwrite, settle

_log = logging.getLogger(__name__)

JOURNAL_SUFFIX: Final = "-journal"
_CHANGES_KEY: Final = "postern_total_changes"


def install(engine: Engine, database: Path) -> None:
    """Make the SQLite ``engine`` on ``database`` leave no old row and no fine time behind."""
    journal = database.with_name(database.name + JOURNAL_SUFFIX)

    def on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode = PERSIST")
            cursor.execute("PRAGMA journal_size_limit = -1")
            cursor.execute("PRAGMA temp_store = MEMORY")
        finally:
            cursor.close()
        record.info[_CHANGES_KEY] = _total_changes(dbapi_connection)

    def on_checkin(dbapi_connection: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is None:
            return
        changes = _total_changes(dbapi_connection)
        if changes == record.info.get(_CHANGES_KEY):
            return
        try:
            _scrub(dbapi_connection, database, journal)
        except (sqlite3.Error, OSError) as error:
            # The write itself is committed: the request must not fail for this. The next
            # checkin of this connection tries again (its count stays behind).
            _log.error("the database journal could not be zeroed: %s", type(error).__name__)
            return
        record.info[_CHANGES_KEY] = changes

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "checkin", on_checkin)


def _total_changes(dbapi_connection: DBAPIConnection) -> int:
    # The pool hands out pysqlite's own connections: total_changes counts every row changed.
    return cast(sqlite3.Connection, dbapi_connection).total_changes


def _scrub(dbapi_connection: DBAPIConnection, database: Path, journal: Path) -> None:
    """Zero the journal under the write lock, then settle the database's file times."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
        try:
            try:
                fd = os.open(journal, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                pass
            else:
                try:
                    overwrite(fd)
                finally:
                    os.close(fd)
        finally:
            dbapi_connection.rollback()
    finally:
        cursor.close()
    for path in (database, journal, database.parent):
        settle(path)
