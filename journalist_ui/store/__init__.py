"""The station's encrypted store: an SQLCipher database opened with a raw 32-byte key.

``open_store(path, key)`` opens (or creates) the database, checks that the key opens it,
and runs the Alembic migrations up to the newest schema. The key never goes into a URL, a
file or a log: it is given to SQLCipher as ``PRAGMA key = "x'<64 hex>'"`` on each new
connection. Foreign keys are enforced and ``secure_delete`` is on, so deleted rows are
overwritten in the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import sqlcipher3.dbapi2 as sqlcipher
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from journalist_ui.errors import StationError
from journalist_ui.store.search_index import (
    index_items,
    index_messages,
    index_note,
    unindex_item,
    unindex_notes,
)

KEY_LEN = 32
#: How long a connection waits for another one's write lock, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


class Store:
    """An open station database: an engine and a way to run one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def _connector(path: Path, key: bytes) -> Callable[[], DBAPIConnection]:
    pragma_key = f"PRAGMA key = \"x'{key.hex()}'\""

    def connect() -> DBAPIConnection:
        connection = sqlcipher.connect(str(path), check_same_thread=False)
        try:
            # A wrong key is reported as StationError; SQLCipher need not print it too.
            connection.execute("PRAGMA cipher_log_level = NONE")
            connection.execute(pragma_key)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Fails here, with "file is not a database", when the key is wrong.
            connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA secure_delete = ON")
            # Readers (the web interface) do not wait for a writer, nor it for them.
            connection.execute("PRAGMA journal_mode = WAL").fetchall()
        except BaseException:
            connection.close()
            raise
        return connection  # type: ignore[no-any-return]

    return connect


def _alembic_config() -> Config:
    config = Config()
    location = resources.files("journalist_ui.store") / "migrations"
    config.set_main_option("script_location", str(location))
    return config


def open_store(path: Path, key: bytes) -> Store:
    """Open the database at path with key (creating it, 0600, if missing) and migrate it."""
    if len(key) != KEY_LEN:
        raise StationError(f"a station database key is {KEY_LEN} bytes")
    if not path.exists():
        # An empty file is an empty database; creating it here gives it mode 0600
        # (SQLite gives its journal files the database file's mode).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    engine = create_engine(f"sqlite:///{path}", creator=_connector(path, key), module=sqlcipher)

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        # Take the write lock at the start of every transaction: two writers never both
        # read, then fail to upgrade their lock half-way.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(
        dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
    ) -> None:
        # SQLAlchemy, not the driver, starts transactions (with BEGIN IMMEDIATE above).
        setattr(dbapi_connection, "isolation_level", None)  # noqa: B010

    try:
        with engine.begin() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.execute(text("SELECT 1"))
    except DatabaseError as exc:
        engine.dispose()
        if "not a database" in str(exc.orig):
            raise StationError(
                f"cannot open the station database {path}: wrong key, or the file is damaged"
            ) from None
        raise StationError(f"cannot open the station database {path}: {exc.orig}") from None
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)


__all__ = [
    "KEY_LEN",
    "Store",
    "index_items",
    "index_messages",
    "index_note",
    "open_store",
    "unindex_item",
    "unindex_notes",
]
