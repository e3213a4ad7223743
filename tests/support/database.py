"""Which database the server tests run on: SQLite (the default) or PostgreSQL.

``POSTERN_TEST_DATABASE=postgresql`` runs them on the session's PostgreSQL cluster
(tests/support/postgres.py): each data directory a test makes gets a fresh database of its
own, the first time a helper asks for it (:meth:`ServerDatabases.url_for`), and every one is
dropped when the test ends. Unset (or ``sqlite``), nothing changes: the server uses the SQLite
file in the data directory and ``url_for`` returns None.

The helpers that make or run a server pass the URL on: ``make_data_dir`` and
``init_data_dir`` (tests/support/server.py) to ``dropbox init``, ``DropboxServer`` as
``POSTERN_DATABASE_URL``, the in-process apps' settings (:func:`settings_for`), and the
``database_url`` fixture to tests that use the engine themselves. ``make test`` runs the
tests that touch the server's database a second time this way (the Makefile's ``test``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from config import ServerSettings
from tests.support.postgres import LazyCluster

BACKEND_ENV: Final = "POSTERN_TEST_DATABASE"
BACKENDS: Final = ("sqlite", "postgresql")


def backend(env: Mapping[str, str] = os.environ) -> str:
    """The backend the server tests run on (``POSTERN_TEST_DATABASE``)."""
    name = env.get(BACKEND_ENV) or "sqlite"
    if name not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


class ServerDatabases:
    """The PostgreSQL databases of the data directories the tests make."""

    def __init__(self) -> None:
        self._cluster: LazyCluster | None = None
        self._urls: dict[Path, str] = {}
        #: Those made during the current test (None: between tests, for a fixture of a
        #: broader scope, whose databases last until the cluster stops).
        self._test: list[str] | None = None

    def use(self, cluster: LazyCluster | None) -> None:
        """Give data directories PostgreSQL databases from ``cluster`` (None: SQLite)."""
        self._cluster = cluster
        self._urls = {}

    @property
    def postgresql(self) -> bool:
        return self._cluster is not None

    def url_for(self, data_dir: Path) -> str | None:
        """The database URL of ``data_dir`` (a new database the first time), or None when
        the tests run on SQLite (the data directory's own file)."""
        if self._cluster is None:
            return None
        key = data_dir.absolute()
        if key not in self._urls:
            self._urls[key] = self._cluster.get().create_database()
            if self._test is not None:
                self._test.append(self._urls[key])
        return self._urls[key]

    def env_for(self, data_dir: Path) -> dict[str, str]:
        """``POSTERN_DATABASE_URL`` for a server process of ``data_dir`` (empty on SQLite)."""
        url = self.url_for(data_dir)
        return {} if url is None else {"POSTERN_DATABASE_URL": url}

    def begin_test(self) -> None:
        self._test = []

    def end_test(self) -> None:
        """Drop the databases made during the test (ending their sessions)."""
        made, self._test = self._test or [], None
        if made and self._cluster is not None:
            cluster = self._cluster.get()
            for url in made:
                cluster.drop_database(url)
            self._urls = {key: url for key, url in self._urls.items() if url not in made}


DATABASES = ServerDatabases()


def settings_for(data_dir: Path, **settings: Any) -> ServerSettings:
    """Server settings for an in-process app of ``data_dir``, on the tests' backend."""
    settings.setdefault("database_url", DATABASES.url_for(data_dir))
    return ServerSettings(data_dir=data_dir, **settings)


def server_url(data_dir: Path) -> str:
    """The URL of ``data_dir``'s server database on the tests' backend."""
    from dropbox import db

    return DATABASES.url_for(data_dir) or db.sqlite_url(data_dir)


def tool_env(data_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The environment for a ``dropbox`` command on ``data_dir``: ``env`` (None: this
    process's) with ``POSTERN_DATABASE_URL`` on PostgreSQL; None when nothing changes."""
    base = os.environ if env is None else env
    if "POSTERN_DATABASE_URL" in base:
        return None if env is None else dict(env)  # the test chose the database itself
    extra = DATABASES.env_for(data_dir)
    if not extra:
        return None if env is None else dict(env)
    return {**base, **extra}


def query(data_dir: Path, statement: str) -> list[tuple[Any, ...]]:
    """The rows of one SQL statement on ``data_dir``'s server database (any backend)."""
    import sqlalchemy as sa

    from dropbox import db

    engine = db.make_engine(server_url(data_dir), connections=1)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(statement))]
    finally:
        engine.dispose()


def execute(data_dir: Path, statement: str) -> None:
    """Run one SQL statement that changes ``data_dir``'s server database, and commit it."""
    import sqlalchemy as sa

    from dropbox import db

    engine = db.make_engine(server_url(data_dir), connections=1)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()
