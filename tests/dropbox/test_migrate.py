"""`dropbox migrate`: the schema is migrated once, by the command, under a lock; the servers
and the other commands refuse a database at an older schema."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from alembic import command

from dropbox import db
from dropbox.app import create_app
from dropbox.errors import DropboxError
from dropbox.sync.app import create_sync_app
from tests.support.cli import DROPBOX, assert_one_line_error, run_tool
from tests.support.database import server_url, settings_for
from tests.support.server import clean_environment, make_data_dir
from tests.support.team import Team

HEAD = "0008"


def downgrade(url: str, revision: str) -> None:
    engine = db.make_engine(url, connections=1)
    try:
        with engine.begin() as connection:
            command.downgrade(db.alembic_config(connection), revision)
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    engine = db.make_engine(url, connections=1)
    try:
        return db.current_revision(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request, tmp_path) -> tuple[Path, str, dict[str, str]]:
    """A data directory on each backend, whatever POSTERN_TEST_DATABASE says: its path, its
    database URL and the environment that points ``dropbox`` at that database."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        make_data_dir(data_dir, Team(), keyring_serial=None)
        return data_dir, db.sqlite_url(data_dir), clean_environment()
    url = request.getfixturevalue("postgres_url")
    from dropbox.instance.create import init_instance

    init_instance(data_dir, Team().root.public.key, database_url=url)
    return data_dir, url, {**clean_environment(), "POSTERN_DATABASE_URL": url}


def test_four_migrations_at_once_all_succeed_and_leave_one_schema(backend_url):
    data_dir, url, env = backend_url
    downgrade(url, "base")
    assert revision(url) is None
    argv = [str(DROPBOX), "migrate", "--data-dir", str(data_dir)]
    migrations = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        for _ in range(4)
    ]
    results = [(process.wait(timeout=120), *process.communicate()) for process in migrations]
    assert [status for status, _, _ in results] == [0, 0, 0, 0], results
    outputs = sorted(out for _, out, _ in results)
    # One of them migrated; the others waited for it, then found nothing to do.
    assert outputs == [
        f"Migrated the database from schema none to {HEAD}.\n",
        *[f"The database is at the newest schema ({HEAD}): nothing to do.\n"] * 3,
    ], results
    assert revision(url) == HEAD
    engine = db.make_engine(url, connections=1)
    try:
        with engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert versions.all() == [(HEAD,)]
    finally:
        engine.dispose()


def test_migrate_brings_an_old_schema_up_and_says_so(tmp_path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    downgrade(server_url(data_dir), "0003")
    done = run_tool(DROPBOX, "migrate", "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Migrated the database from schema 0003 to {HEAD}.\n"
    assert revision(server_url(data_dir)) == HEAD


def test_migrate_refuses_a_directory_that_is_not_an_instance(tmp_path):
    done = run_tool(DROPBOX, "migrate", "--data-dir", tmp_path / "nothing")
    assert_one_line_error(done, 1, "not an initialized")
    assert not (tmp_path / "nothing").exists()


def test_serve_refuses_an_old_schema_naming_dropbox_migrate(tmp_path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    downgrade(server_url(data_dir), "0003")
    done = run_tool(DROPBOX, "serve", "--data-dir", data_dir, "--port", "1", "--api-port", "2")
    assert_one_line_error(done, 1, "schema revision 0003", "dropbox migrate")
    # Nothing was migrated behind the operator's back.
    assert revision(server_url(data_dir)) == "0003"


def test_purge_refuses_an_old_schema_naming_dropbox_migrate(tmp_path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    downgrade(server_url(data_dir), "base")
    done = run_tool(DROPBOX, "purge", "--data-dir", data_dir)
    assert_one_line_error(done, 1, "no schema", "dropbox migrate")


@pytest.mark.parametrize("factory", [create_app, create_sync_app])
def test_the_apps_refuse_an_old_schema_instead_of_migrating(tmp_path, factory):
    data_dir = make_data_dir(tmp_path / "data", Team())
    downgrade(server_url(data_dir), "0003")
    with pytest.raises(DropboxError, match="run `dropbox migrate --data-dir DIR` first"):
        factory(settings_for(data_dir))
    assert revision(server_url(data_dir)) == "0003"


def test_a_schema_newer_than_the_server_is_refused(tmp_path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    engine = db.make_engine(server_url(data_dir), connections=1)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        with pytest.raises(DropboxError, match="'9999', which this server does not know"):
            db.require_current(engine)
    finally:
        engine.dispose()


def test_init_refuses_a_database_that_already_holds_a_schema(tmp_path, database_url):
    from dropbox.instance.create import init_instance

    team = Team()
    init_instance(tmp_path / "one", team.root.public.key, database_url=database_url)
    with pytest.raises(DropboxError, match="already holds a Postern schema"):
        init_instance(tmp_path / "two", team.root.public.key, database_url=database_url)


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    url = f"postgresql://postern:hunter2-secret@/postern?host={tmp_path / 'no-server'}"
    done = run_tool(
        DROPBOX, "migrate", "--data-dir", data_dir,
        env={**clean_environment(), "POSTERN_DATABASE_URL": url},
    )  # fmt: skip
    assert_one_line_error(done, 1, "cannot use the database")
    assert "hunter2" not in done.stdout + done.stderr
