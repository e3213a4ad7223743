"""``dropbox migrate``: bring the server's database to the newest schema, once, before the
apps start (they refuse an older one)."""

from __future__ import annotations

import argparse

from common.cli import EXIT_OK, say
from dropbox.cli.options import Commands, add_data_dir, settings_for
from dropbox.instance import load_instance


def add_commands(commands: Commands) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="bring the database to the newest schema (run before the servers start)",
        description=(
            "Run the database migrations that the installed server has and the database has "
            "not: the SQLite file in DIR, or the database POSTERN_DATABASE_URL names. The "
            "servers never migrate: they refuse a database at an older schema. Safe to run "
            "from several machines at once (the second waits for the first, then finds "
            "nothing to do), and again when there is nothing to do."
        ),
    )
    add_data_dir(migrate)
    migrate.set_defaults(handler=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    # Imported here: the other commands need no database.
    from dropbox import db

    settings = settings_for(args.data_dir)
    # A clear error for a directory that is not an instance, before touching any database.
    load_instance(settings.data_dir)
    engine = db.make_engine(db.database_url(settings), connections=1)
    try:
        result = db.upgrade(engine)
    finally:
        engine.dispose()
    if result.changed:
        say(f"Migrated the database from schema {result.before or 'none'} to {result.after}.")
    else:
        say(f"The database is at the newest schema ({result.after}): nothing to do.")
    return EXIT_OK
