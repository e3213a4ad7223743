"""Alembic migrations of the server's database; run by :func:`dropbox.db.upgrade`."""
