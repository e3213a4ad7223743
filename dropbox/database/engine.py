"""Which database the server uses, and its engine with each backend's connection options.

Every part of the server that opens the database asks :func:`database_url` for its URL: the
``POSTERN_DATABASE_URL`` setting, else the SQLite file in the data directory. The URL may hold
a password: nothing here logs, prints or puts it in an error message (SQLAlchemy masks it in
an engine's ``repr``), and engines are made with ``hide_parameters``, so that a database error
raised to a log never quotes a row's values (a lookup id, a blob id); on PostgreSQL the
server's DETAIL lines, which quote them too, are cut from the error's message.

SQLite connections get foreign keys and secure deletion; PostgreSQL connections get a
statement timeout, an idle-in-transaction timeout, a connect timeout and an application name
that says which program connected and nothing about whom it serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from config import ServerSettings
from dropbox import sqlite_files
from dropbox.errors import DropboxError, error_chain

DATABASE_FILE: Final = "db.sqlite"
#: The most connections one app's engine holds at once: one per gunicorn thread of the source
#: interface (``dropbox.gunicorn_settings.THREADS``: 1,024 for uploads streaming in and 64
#: for the rest; the sync API has fewer), so that a request never waits for a connection
#: another request of the same worker holds. A cap, not a reservation: connections beyond
#: POOL_SIZE are opened only while requests use them at once, and PostgreSQL's
#: max_connections bounds the sum over the nodes (docs/operations.md section 23.2).
MAX_CONNECTIONS: Final = 1_088
#: Connections kept open between requests; the rest are opened under load and closed after.
POOL_SIZE: Final = 4
#: Seconds a request waits for a connection before it fails (below gunicorn's graceful
#: timeout, dropbox.gunicorn_settings.GRACEFUL_TIMEOUT).
POOL_TIMEOUT: Final = 20
#: Seconds SQLite waits for another connection's write lock.
SQLITE_BUSY_TIMEOUT: Final = 30
#: PostgreSQL: seconds to reach the server, the longest a statement may run (no request
#: needs more; migrations lift it), and the longest a transaction may sit idle holding locks.
CONNECT_TIMEOUT: Final = 10
STATEMENT_TIMEOUT: Final = "30s"
IDLE_IN_TRANSACTION_TIMEOUT: Final = "60s"
#: What pg_stat_activity shows for the server's connections: the program, no identifier.
APPLICATION_NAME: Final = "postern-dropbox"


def sqlite_url(data_dir: Path) -> str:
    """The URL of the SQLite database in ``data_dir`` (the default)."""
    return f"sqlite+pysqlite:///{data_dir / DATABASE_FILE}"


def database_url(settings: ServerSettings) -> str:
    """The server's database URL: ``POSTERN_DATABASE_URL``, else the data directory's SQLite
    file. ``postgresql://`` means psycopg 3 (the driver the ``postgres`` extra installs)."""
    return resolve_url(settings.database_url, settings.data_dir)


def resolve_url(setting: str | None, data_dir: Path) -> str:
    """:func:`database_url` from the setting's value (None: not set) and the data directory."""
    if setting is None:
        return sqlite_url(data_dir)
    url = make_url(setting)
    if url.drivername != "postgresql":
        return setting
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_connection_options(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # SQLite leaves foreign keys unchecked unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys = ON")
        # Overwrite deleted rows with zeros, so a deleted reply or source leaves no trace in
        # the file's free pages.
        cursor.execute("PRAGMA secure_delete = ON")
    finally:
        cursor.close()


def _postgresql_connect_args() -> dict[str, Any]:
    options = (
        f"-c statement_timeout={STATEMENT_TIMEOUT} "
        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT}"
    )
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": APPLICATION_NAME,
        "options": options,
    }


def _first_line_only(context: ExceptionContext) -> None:
    """psycopg's message of a server error carries the server's DETAIL lines, and a unique
    violation's DETAIL quotes the key's values (a lookup id, a blob id): keep the first line
    in the driver's error and in SQLAlchemy's, so that no traceback or log shows the rest.
    Code that needs the details can still ask ``orig.diag``."""
    original = context.original_exception
    wrapped = context.sqlalchemy_exception
    text = str(original)
    first = text.split("\n", 1)[0].strip()
    if first == text.strip():
        return
    original.args = (first,)
    if wrapped is not None:
        kind = type(original)
        wrapped.args = (f"({kind.__module__}.{kind.__name__}) {first}",)


def make_engine(url: str, *, connections: int = MAX_CONNECTIONS) -> Engine:
    """An engine for ``url`` holding at most ``connections`` connections at once (at least
    one); SQLite connections get foreign keys and secure deletion, PostgreSQL connections
    their timeouts."""
    pool_size = max(1, min(POOL_SIZE, connections))
    pool: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max(0, connections - pool_size),
        "pool_timeout": POOL_TIMEOUT,
        # Error messages never quote a statement's parameters (a row's identifiers).
        "hide_parameters": True,
    }
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # One in-memory database per connection: only the default pool makes sense.
            engine = create_engine(url, hide_parameters=True)
        else:
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT}, **pool)
        event.listen(engine, "connect", _sqlite_connection_options)
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            # A database in a file leaves no old row and no fine time in its files.
            sqlite_files.install(engine, Path(database))
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(
            url, connect_args=_postgresql_connect_args(), pool_pre_ping=True, **pool
        )
        event.listen(engine, "handle_error", _first_line_only)
        return engine
    raise DropboxError(
        f"the server runs on SQLite or PostgreSQL, not {parsed.get_backend_name()!r}"
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: views render rows they have just written.
    return sessionmaker(engine, expire_on_commit=False)


#: SQLite's primary result codes for "another connection holds the lock" (SQLITE_BUSY,
#: after the busy timeout; SQLITE_LOCKED); extended codes keep them in their low byte.
_SQLITE_BUSY_CODES: Final = frozenset({5, 6})
#: PostgreSQL's SQLSTATEs that pass with time: serialization_failure, deadlock_detected,
#: lock_not_available, query_canceled (the statement timeout), too_many_connections.
_POSTGRES_BUSY_STATES: Final = frozenset({"40001", "40P01", "55P03", "57014", "53300"})


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` means the database was too busy to answer in time (a lock held past
    the timeout, no free connection): the request may succeed if sent again, so the server
    answers 503 with ``Retry-After``, never a 500."""
    return any(_means_busy(each) for each in error_chain(error))


def _means_busy(error: BaseException) -> bool:
    if isinstance(error, PoolTimeout):
        return True
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY_CODES:
        return True
    return getattr(error, "sqlstate", None) in _POSTGRES_BUSY_STATES
