"""What both server apps are built on: the settings, the clock, the instance, database and blobs.

:func:`open_services` reads the data directory's instance (failing with
:class:`dropbox.errors.DropboxError` if the directory is not initialized), opens the database
(``POSTERN_DATABASE_URL``, refused unless ``dropbox migrate`` brought it to the newest schema)
and the blob store. The source interface
(:class:`dropbox.web.context.Services`) and the sync API
(:class:`dropbox.sync.context.SyncServices`) each extend :class:`ServerServices` with their own
parts (``Services(**base.as_fields(), sessions=...)``) and hang the result off their app
object; nothing here is a module-level singleton.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config import ServerSettings
from dropbox import db
from dropbox.database_blobs import DATABASE, DatabaseBlobStore
from dropbox.instance import Instance, InstanceLoader
from dropbox.storage import LocalBlobStore, ReclaimableBlobStore
from dropbox.uploads import LocalParts, PartStore
from dropbox.uploads.database_parts import DatabaseParts


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServerServices:
    """The dependencies every server app has, made once when the app is created."""

    settings: ServerSettings
    #: The current time, UTC and aware (replaced in tests).
    clock: Callable[[], datetime]
    instances: InstanceLoader
    engine: Engine
    db: sessionmaker[Session]
    blobs: ReclaimableBlobStore

    def as_fields(self) -> dict[str, Any]:
        """These services as keyword arguments, to build an app's own services from them."""
        return {item.name: getattr(self, item.name) for item in fields(ServerServices)}

    def instance(self) -> Instance:
        """The current instance (read again when its files changed on disk)."""
        return self.instances.current()

    def today(self) -> date:
        """The day in UTC: the finest time the server records."""
        return self.clock().astimezone(UTC).date()


def open_services(settings: ServerSettings, clock: Callable[[], datetime]) -> ServerServices:
    """The services for ``settings.data_dir``.

    Fails with :class:`dropbox.errors.DropboxError` if the directory is not initialized or
    the database's schema is not the newest.
    """
    instances = InstanceLoader(settings.data_dir)
    instance = instances.current()
    engine = db.make_engine(db.database_url(settings))
    try:
        # The apps never migrate (dropbox migrate does, once, before they start).
        db.require_current(engine)
        blobs = open_blob_store(settings, instance, engine)
    except BaseException:
        engine.dispose()
        raise
    return ServerServices(
        settings=settings,
        clock=clock,
        instances=instances,
        engine=engine,
        db=db.make_sessionmaker(engine),
        blobs=blobs,
    )


def open_blob_store(
    settings: ServerSettings, instance: Instance, engine: Engine
) -> ReclaimableBlobStore:
    """The blob store ``POSTERN_BLOB_STORE`` names: files in the data directory (``local``),
    or the shared PostgreSQL database (``database``; :class:`DropboxError` on SQLite)."""
    if settings.blob_store == DATABASE:
        return DatabaseBlobStore(engine)
    return LocalBlobStore(instance.blobs_dir)


def open_part_store(settings: ServerSettings, instance: Instance, engine: Engine) -> PartStore:
    """Where incomplete uploads keep their bytes: with ``POSTERN_BLOB_STORE=database`` the
    same shared database as the blobs (any node resumes any upload), else files in the data
    directory. One setting for "shared storage", so that blobs and parts never disagree."""
    if settings.blob_store == DATABASE:
        return DatabaseParts(engine)
    return LocalParts(instance.uploads_dir)
