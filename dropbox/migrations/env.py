"""Alembic's entry point, run only by :func:`dropbox.db.upgrade`, never imported otherwise.

The connection comes in the configuration's attributes: migrations always run inside the
transaction the caller opened, on the database the caller chose. There is no alembic.ini and
no logging configuration here (the server configures its own logging).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from dropbox import database_blobs  # noqa: F401 - its tables are part of the schema
from dropbox.db import Base
from dropbox.uploads import database_parts  # noqa: F401 - its table too


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: later revisions use batch operations, which
        # become plain ALTER statements on other databases.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run the migrations with dropbox.db.upgrade(engine)")
_run(_connection)
