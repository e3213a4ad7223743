"""``dropbox purge``: purge every acknowledged item now."""

from __future__ import annotations

import argparse

from common.cli import EXIT_OK, say
from dropbox.cli.options import Commands, add_data_dir, settings_for
from dropbox.instance import load_instance


def add_commands(commands: Commands) -> None:
    purge = commands.add_parser(
        "purge",
        help="purge every acknowledged item now",
        description=(
            "Delete every item that a journalist's outbound bundle acknowledged, blob and row, "
            "with the submissions left empty. Needed only when POSTERN_PURGE_AFTER_ACK=0 keeps "
            "acknowledged items (by default they are purged as soon as they are acknowledged). "
            "Also reclaims orphan blobs (ciphertext no row names, left by a crash) and stale "
            "temporary files; safe while the server runs, which never loses a blob in flight."
        ),
    )
    add_data_dir(purge)
    purge.set_defaults(handler=_purge)


def _purge(args: argparse.Namespace) -> int:
    # Imported here: the other commands need no database.
    from dropbox import db
    from dropbox.services import open_blob_store
    from dropbox.sweep import sweep
    from dropbox.sync.retention import purge_acknowledged

    settings = settings_for(args.data_dir)
    instance = load_instance(settings.data_dir)
    engine = db.make_engine(db.database_url(settings))
    try:
        db.require_current(engine)
        sessions = db.make_sessionmaker(engine)
        blobs = open_blob_store(settings, instance, engine)
        with sessions() as session:
            result = purge_acknowledged(session, blobs)
        swept = sweep(sessions, blobs)
    finally:
        engine.dispose()
    say(
        f"Purged {result.items} acknowledged item{'' if result.items == 1 else 's'} "
        f"({result.bytes} bytes of ciphertext) and {result.submissions} "
        f"submission{'' if result.submissions == 1 else 's'} left empty."
    )
    if swept.blobs or swept.temporaries:
        say(
            f"Reclaimed {swept.blobs} orphan blob{'' if swept.blobs == 1 else 's'} "
            f"({swept.bytes} bytes) and {swept.temporaries} stale temporary "
            f"file{'' if swept.temporaries == 1 else 's'}."
        )
    return EXIT_OK
