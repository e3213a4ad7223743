"""The station database schema (docs/format.md section 13), SQLAlchemy 2 typed declarative.

The schema is created and changed only by the Alembic migrations in
``journalist_ui/store/migrations/versions``; a test checks that the migrations produce exactly
these tables. Besides the mapped tables, the migrations create the FTS5 virtual tables of
the search index (journalist_ui.store.search_index): ``message_fts(item_id UNINDEXED, body)``
(decrypted text of incoming messages and outgoing replies; rowid = item id),
``item_terms(terms)`` and ``note_terms(terms)`` (search terms of item texts and file names,
and of notes; rowid = item or note id), reached with raw SQL only.

Columns added beyond the shared station design: ``Item.decryptable`` (False for an envelope
none of the station's keys could open: imported all the same, its ciphertext kept;
``plaintext_size``, ``plaintext_sha256``, ``filename`` and ``media_type`` are then None,
until a journalist whose key opens it unlocks: journalist_ui/reopen.py),
``Import.undecryptable`` (how many such items the import brought), ``Outgoing.source_id``
(the server's source id, hex, so that a deletion queued for a source that is already gone
locally still names it).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Statuses a new station starts with, in order (the list is configurable: table statuses).
DEFAULT_STATUSES = ("new", "in review", "verified", "published", "closed")


class Base(DeclarativeBase):
    pass


class Source(Base):
    __tablename__ = "sources"
    #: The source list's default order (newest activity first), read off the index.
    __table_args__ = (Index("ix_sources_activity", "deleted", "last_day", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The server's opaque per-source id: 32 lowercase hex digits.
    source_id: Mapped[str] = mapped_column(String(32), unique=True)
    #: The source's X25519 reply public key (format section 5.2).
    reply_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: A human name such as "amber otter" (journalist_ui.store.designations).
    designation: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(64), default="new")
    starred: Mapped[bool] = mapped_column(Boolean, default=False)
    assigned_to: Mapped[str | None] = mapped_column(String(32), default=None)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_pk: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    #: The server's item id (decimal); None for outgoing replies.
    server_id: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    kind: Mapped[str] = mapped_column(String(8))  # "message" | "file" | "reply"
    #: Day of receipt (incoming, from the server's manifest) or of writing (replies).
    day: Mapped[date] = mapped_column(Date)
    #: The file under HOME/store/envelopes/: 32 random hex digits chosen by the station.
    envelope_name: Mapped[str] = mapped_column(String(32), unique=True)
    envelope_size: Mapped[int] = mapped_column(Integer)
    envelope_sha256: Mapped[str] = mapped_column(String(64))
    #: From the decrypted metadata record, made safe for display (files only).
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    media_type: Mapped[str | None] = mapped_column(String(127), default=None)
    #: None when the envelope could not be decrypted.
    plaintext_size: Mapped[int | None] = mapped_column(Integer, default=None)
    plaintext_sha256: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    #: Comma-separated hex key ids the envelope is sealed to (from its header).
    key_ids: Mapped[str] = mapped_column(Text)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"), default=None)
    #: The journalist who wrote an outgoing reply.
    author: Mapped[str | None] = mapped_column(String(32), default=None)
    #: False when none of the station's keys opened the envelope (kept, never dropped).
    decryptable: Mapped[bool] = mapped_column(Boolean, default=True)


class Read(Base):
    __tablename__ = "reads"

    journalist: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_pk: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    author: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)


class Import(Base):
    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    #: The bundle manifest's ``made`` day.
    made: Mapped[date] = mapped_column(Date)
    #: The server signing public key that signed the bundle (hex).
    server_key: Mapped[str] = mapped_column(String(64))
    keyring_serial: Mapped[int] = mapped_column(Integer)
    #: Items this import added (items already present are not counted).
    items: Mapped[int] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)
    #: The outbound bundle that acknowledged this import's items; None = not yet.
    acknowledged_bundle_id: Mapped[str | None] = mapped_column(String(32), default=None)
    undecryptable: Mapped[int] = mapped_column(Integer, default=0)


class Outgoing(Base):
    __tablename__ = "outgoing"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "reply" | "deletion" | "ack"
    source_pk: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), default=None)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"), default=None)
    #: Deletion scope: "item" | "source_data" | "source"; None for other kinds.
    scope: Mapped[str | None] = mapped_column(String(16), default=None)
    #: The server item id an item deletion names.
    server_id: Mapped[str | None] = mapped_column(String(20), default=None)
    created_day: Mapped[date] = mapped_column(Date)
    #: The outbound bundle that carried it (hex); None = still pending.
    bundle_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    #: The server's source id (hex) for replies and source deletions.
    source_id: Mapped[str | None] = mapped_column(String(32), default=None)


class Status(Base):
    __tablename__ = "statuses"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class LedgerRecord(Base):
    """One event of the evidence ledger (journalist_ui.ledger; format section 13.4)."""

    __tablename__ = "ledger"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: Coarse UTC time: "YYYY-MM-DDTHH".
    hour: Mapped[str] = mapped_column(String(13))
    event: Mapped[str] = mapped_column(String(32))
    journalist: Mapped[str] = mapped_column(String(32))
    item_ref: Mapped[str | None] = mapped_column(String(32), default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Short canonical JSON object; never message content.
    detail: Mapped[str] = mapped_column(Text)


class Preference(Base):
    """A journalist's choices in the station UI (migration 0002): the interface language."""

    __tablename__ = "preferences"

    journalist: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: An interface language code of journalist_ui.web.language.LANGUAGES.
    language: Mapped[str] = mapped_column(String(8))


class Tally(Base):
    """Counts kept by triggers (migration 0004), so that the header's unread count reads two
    rows instead of counting a million: ``in`` is the number of incoming items, and
    ``read:<journalist>`` the number of incoming items that journalist has read; and the
    source list's total, ``sources``, the sources not deleted (migration 0005). A row is
    written by the triggers only."""

    __tablename__ = "tallies"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


__all__ = [
    "DEFAULT_STATUSES",
    "Base",
    "Import",
    "Item",
    "LedgerRecord",
    "Note",
    "Outgoing",
    "Preference",
    "Read",
    "Source",
    "Status",
    "Tally",
]
