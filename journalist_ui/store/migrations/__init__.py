"""Alembic migrations of the station database (run by journalist_ui.store.open_store)."""
