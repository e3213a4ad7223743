"""Alembic environment: migrations run only on the connection open_store hands over.

The station never builds a connection from a URL here (the database key never goes into a
URL or a config file): ``open_store`` puts its open connection in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from journalist_ui.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
