"""The database engine adapter (dropbox/database/engine.py): which URL, and each backend's
connection options and pool."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from config import ServerSettings
from dropbox import db, gunicorn_settings
from dropbox.database import engine as adapter
from dropbox.errors import DropboxError

DATA_DIR = Path("/srv/postern")


def test_the_default_is_the_sqlite_file_in_the_data_directory():
    assert db.database_url(ServerSettings(data_dir=DATA_DIR)) == (
        "sqlite+pysqlite:////srv/postern/db.sqlite"
    )


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("postgresql://postern:pw@db.internal/postern", "postgresql+psycopg://postern:pw@db.internal/postern"),
        ("postgresql+psycopg://postern@/postern?host=/run/postgresql", "postgresql+psycopg://postern@/postern?host=/run/postgresql"),
        ("sqlite:////var/lib/other.sqlite", "sqlite:////var/lib/other.sqlite"),
    ],
)  # fmt: skip
def test_postern_database_url_is_used_with_psycopg_for_postgresql(setting, url):
    assert db.database_url(ServerSettings(data_dir=DATA_DIR, database_url=setting)) == url


def test_each_app_thread_can_hold_a_connection():
    """The pool never makes a gunicorn thread wait for another thread's connection."""
    assert max(gunicorn_settings.THREADS, gunicorn_settings.API_THREADS) <= adapter.MAX_CONNECTIONS
    assert adapter.POOL_TIMEOUT < gunicorn_settings.GRACEFUL_TIMEOUT
    engine = db.make_engine("sqlite+pysqlite:////nonexistent/db.sqlite")
    pool = engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.size() + pool._max_overflow == gunicorn_settings.THREADS
    assert pool.size() == adapter.POOL_SIZE
    engine.dispose()


def test_sqlite_connections_check_foreign_keys_and_overwrite_deletions(tmp_path):
    engine = db.make_engine(db.sqlite_url(tmp_path))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    finally:
        engine.dispose()


def test_postgresql_connections_have_timeouts_and_a_name_without_identifiers(postgres_url):
    engine = db.make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            show = {
                name: connection.exec_driver_sql(f"SHOW {name}").scalar()
                for name in (
                    "statement_timeout", "idle_in_transaction_session_timeout", "application_name",
                )
            }  # fmt: skip
    finally:
        engine.dispose()
    assert show == {
        "statement_timeout": "30s",
        "idle_in_transaction_session_timeout": "1min",
        "application_name": "postern-dropbox",
    }


def test_a_migration_is_not_cut_by_the_statement_timeout(postgres_url):
    engine = db.make_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SET LOCAL statement_timeout = '1ms'")
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                connection.exec_driver_sql("SELECT pg_sleep(0.2)")
        assert db.upgrade(engine).after == db.head_revision()
    finally:
        engine.dispose()


def test_another_database_is_refused():
    with pytest.raises(DropboxError, match="SQLite or PostgreSQL, not 'mysql'"):
        db.make_engine("mysql://u@h/d")


def sqlite_lock_error(tmp_path: Path) -> BaseException:
    """The error SQLite really raises when another connection holds the write lock."""
    import sqlite3

    path = tmp_path / "locked.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as error:
        return error
    finally:
        other.close()
        holder.close()
    raise AssertionError("the second connection was not refused")


def test_a_busy_database_is_told_from_other_failures(tmp_path: Path) -> None:
    """A lock held past the timeout, a statement timeout, no free connection: busy (503, try
    again); a full disk, a constraint, anything else: not."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    locked = sqlite_lock_error(tmp_path)
    assert db.is_busy(locked)
    assert db.is_busy(OperationalError("INSERT INTO sources", {}, locked))
    busy = [
        psycopg.errors.LockNotAvailable("lock"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.SerializationFailure("serialize"),
        psycopg.errors.DeadlockDetected("deadlock"),
        psycopg.errors.TooManyConnections("too many"),
        sa.exc.TimeoutError("QueuePool limit reached"),
    ]
    for error in busy:
        assert db.is_busy(error), error
        assert db.is_busy(OperationalError("SELECT 1", {}, error)), error
    chained = DropboxError("a use case failed")
    chained.__context__ = OperationalError("UPDATE sessions", {}, locked)
    assert db.is_busy(chained)
    for other in (
        psycopg.errors.DiskFull("full"),
        psycopg.errors.UniqueViolation("taken"),
        ValueError("not a database error"),
        OSError(28, "No space left on device"),
    ):
        assert not db.is_busy(other), other
