"""The server's database: tables, engine and migrations.

Least metadata (DESIGN.md section 2): no IP addresses, no user agents, no codenames and no time
finer than a day. What a seized database shows is that some sources exist, how many
submissions and items each sent on which days, the ciphertext sizes, the replies waiting,
which items the journalists acknowledged (until they are purged) and the random ids of the
outbound bundles applied.

The schema is created and changed only by the Alembic migrations in ``dropbox/migrations``,
run from code (:func:`upgrade`) by ``dropbox init`` and ``dropbox migrate``, never by the apps,
which refuse a database at an older revision (:func:`require_current`). The SQL is portable:
SQLite (the default) and PostgreSQL (``POSTERN_DATABASE_URL``) run the same tables; the
engine adapter in dropbox/database/ sets each backend's connection options, never the schema.

Row ids (``id`` columns) are internal; a source's journalist-facing identifier is
``sources.source_id`` (docs/format.md section 5.2). To keep the two apart, the foreign keys
that point at a source row are called ``source_row_id``.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dropbox.database.engine import (
    DATABASE_FILE,
    database_url,
    is_busy,
    make_engine,
    make_sessionmaker,
    sqlite_url,
)
from dropbox.database.schema import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    require_current,
    upgrade,
)

#: Constraint names fixed by convention, so that later migrations can name them on any database.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ItemKind(StrEnum):
    """What a submission item's envelope holds (told by the browser or the no-JS form)."""

    MESSAGE = "message"
    FILE = "file"


class Source(Base):
    """A source account: found by the lookup id derived from the codename, nothing else."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: HKDF output of the codename's Argon2id master (docs/format.md section 5.2).
    lookup_id: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    #: The opaque identifier journalists see; not computable from lookup_id.
    source_id: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)
    #: The source's X25519 reply public key: a recipient of every reply.
    reply_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_day: Mapped[date] = mapped_column(Date)


class Submission(Base):
    """One submission: an ordered group of envelopes sent together."""

    __tablename__ = "submissions"
    __table_args__ = (Index(None, "source_row_id", "completion_key", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_row_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), index=True
    )
    received_day: Mapped[date] = mapped_column(Date)
    #: The script path's idempotency key (docs/format.md 8.4), as a keyed hash scoped to the
    #: source row: it tells only "this source's key", so that a retried completion finds its
    #: submission instead of making a second one. NULL for the plain form.
    completion_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)


class Item(Base):
    """One envelope of a submission, stored as a blob."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("submission_id", "position"),
        CheckConstraint("kind IN ('message', 'file')", name="kind"),
        CheckConstraint("size >= 0", name="size"),
        # Item ids go to the station and into the sync API's cursor: once the station has
        # an item 1, no other envelope may ever be item 1, even after the row is purged.
        # SQLite reuses the largest rowid after a delete unless the table is AUTOINCREMENT;
        # PostgreSQL's sequences never go back.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(7))
    blob_id: Mapped[str] = mapped_column(String(64), index=True)
    #: The ciphertext size in bytes (the envelope's length; padded, docs/format.md 3.5).
    size: Mapped[int] = mapped_column(BigInteger)
    #: A journalist's outbound bundle acknowledged it (docs/format.md 11.2): it is no longer
    #: listed for transfer, and it is purged per the retention setting (``purge_after_ack``).
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Reply(Base):
    """A reply from the journalists, sealed on the station, waiting for the source."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_row_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), index=True
    )
    blob_id: Mapped[str] = mapped_column(String(64), index=True)
    created_day: Mapped[date] = mapped_column(Date)


class AppliedBundle(Base):
    """An outbound bundle applied once (docs/format.md 11.2), so that a second push of it
    changes nothing. Only its random id is kept: no day, no signer."""

    __tablename__ = "applied_bundles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_id: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)


class UploadRow(Base):
    """An incomplete tus upload's state (docs/format.md 8.3); its bytes are the part data.

    Days only, as everywhere: ``created_day`` and ``expires_day`` (expired from 00:00 UTC of
    that day). ``owner`` is the opaque owner string the app chose (the source's row id);
    ``key_hash`` the SHA-256 of the upload's capability; ``part`` the random name of its part
    data, which tells nothing once the row is gone. Rows are deleted like every other row,
    overwritten by ``secure_delete``.
    """

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[str] = mapped_column(String(32), unique=True)
    owner: Mapped[str] = mapped_column(String(256), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    created_day: Mapped[date] = mapped_column(Date)
    expires_day: Mapped[date] = mapped_column(Date, index=True)
    part: Mapped[str] = mapped_column(String(32), unique=True)


# -- server state shared by the app processes (dropbox/web/sessions.py, throttle.py, sync/auth.py)


class SessionRecord(Base):
    """A source's web session, sealed under a key that only the session cookie gives.

    Nothing in clear says which source it is or when it was used, beyond its last day.
    """

    __tablename__ = "source_sessions"

    #: A keyed BLAKE2b of the cookie's secret: finds the row, and is useless without the cookie.
    id: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    #: The session's content (docs/format.md 8.1), sealed with a key derived from the cookie.
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: The day (UTC) on which the session ends at the latest: stale rows are deleted by it.
    day: Mapped[date] = mapped_column(Date, index=True)
    #: Whether a source is logged in: a flood of new sessions evicts anonymous ones first.
    logged_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class DerivationCount(Base):
    """How many Argon2id derivations of a kind started in one minute of the clock.

    Only the current and the previous minute are kept: a count ties to no source.
    """

    __tablename__ = "derivation_counts"

    #: ``login`` or ``codename``.
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: Minutes since 1970-01-01 UTC.
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)


class SyncNonce(Base):
    """A nonce a transfer client used: the primary key refuses its second use (a replay)."""

    __tablename__ = "sync_nonces"

    client_id: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    nonce_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    #: The day (UTC) after which the nonce may be forgotten (its request is stale by then).
    expires_day: Mapped[date] = mapped_column(Date, index=True)


# -- engine, sessions and migrations: dropbox/database/ (re-exported here for callers) ---------

__all__ = [
    "DATABASE_FILE",
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "database_url",
    "head_revision",
    "is_busy",
    "make_engine",
    "make_sessionmaker",
    "require_current",
    "sqlite_url",
    "upgrade",
]
