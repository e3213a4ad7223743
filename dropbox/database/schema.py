"""The schema: migrated once by ``dropbox migrate``, checked by everything that uses it.

The apps never migrate: several workers (and, beyond one machine, several nodes) start at
once, and migrations run concurrently crash or interleave. ``dropbox migrate`` (and ``dropbox
init``) runs them under a lock, so that two at once are safe: the second waits, then finds the
schema at the newest revision and does nothing. On PostgreSQL the lock is a transaction-level
advisory lock (the whole upgrade is one transaction, DDL included); on SQLite it is an
exclusive ``flock`` on the database file's directory.

:func:`require_current` is what the apps, ``dropbox serve`` and ``dropbox purge`` call
instead: a database at an older revision (or with none) is refused with a one-line error
naming ``dropbox migrate``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import InterfaceError, OperationalError

from dropbox.errors import DropboxError

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent.parent / "migrations"
#: The advisory lock every ``dropbox migrate`` on a PostgreSQL database takes (any fixed
#: 64-bit number; these are the bytes of "postern" followed by 1).
MIGRATION_LOCK: Final = 0x706F737465726E01


@dataclass(frozen=True)
class Migrated:
    """What :func:`upgrade` did: the revision before and after (None: no schema)."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code, pointing at the package's migrations."""
    config = Config()
    # Config options go through configparser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    with unreachable_as_error(), engine.connect() as connection:
        return _revision(connection)


@contextlib.contextmanager
def unreachable_as_error() -> Iterator[None]:
    """A database that cannot be reached (or refuses the connection) as one line, without
    the URL: the driver's first line names the host or socket, never the password."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        first = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
        raise DropboxError(
            f"cannot use the database: {first[0] if first else type(exc).__name__}"
        ) from None


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    """An exclusive flock on the directory of the SQLite file: held by one migration at a
    time. Not on the file itself: closing any descriptor of a file drops the POSIX locks
    SQLite's own connections in this process hold on it."""
    database = engine.url.database
    if database in (None, "", ":memory:"):
        yield
        return
    fd = os.open(Path(database).resolve().parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def upgrade(engine: Engine) -> Migrated:
    """Bring the database to the newest schema (nothing to do when it is there already),
    safe to run from several processes at once."""
    if engine.dialect.name == "postgresql":
        with unreachable_as_error(), engine.begin() as connection:
            # A long migration must not be cut by the app's statement timeout, and waiting
            # for another migration is what the lock is for.
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            connection.execute(text("SET LOCAL lock_timeout = 0"))
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
            return _upgrade(connection)
    with unreachable_as_error(), _sqlite_lock(engine), engine.begin() as connection:
        return _upgrade(connection)


def _upgrade(connection: Connection) -> Migrated:
    before = _revision(connection)
    command.upgrade(alembic_config(connection), "head")
    return Migrated(before, _revision(connection))


def require_current(engine: Engine) -> None:
    """Refuse a database whose schema is not the newest (:class:`DropboxError`, one line
    naming ``dropbox migrate``); the apps and the commands that use the database call it."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        found = "has no schema yet"
    elif current in _known_revisions():
        found = f"is at schema revision {current}, this server needs {head}"
    else:
        raise DropboxError(
            f"the database is at schema revision {current!r}, which this server does not "
            f"know (it needs {head}): is the server older than the database?"
        )
    raise DropboxError(f"the database {found}: run `dropbox migrate --data-dir DIR` first")


def _known_revisions() -> set[str]:
    scripts = ScriptDirectory.from_config(alembic_config())
    return {script.revision for script in scripts.walk_revisions()}
