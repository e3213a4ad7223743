"""Decrypt on demand: the content of one stored item, never written to disk.

Messages and replies come back as text; files as a :class:`FilePlaintext` whose ``chunks()``
decrypts the stored envelope again as it is read (the caller streams it to the browser or
to an export). Each opening is recorded in the evidence ledger as a ``view`` event (pass
``log_view=False`` for reads that are not a person looking at the content).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from crypto import DecryptionError, FormatError, open_envelope
from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.store.models import Item, Source
from journalist_ui.unlock import Unlocked

#: Largest message shown as text; bigger ones are exported as files instead.
MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True)
class FilePlaintext:
    filename: str | None
    media_type: str | None
    size: int
    sha256: str
    _unlocked: Unlocked = field(repr=False)
    _item: Item = field(repr=False)

    def chunks(self) -> Iterator[bytes]:
        """Decrypt the envelope again, piece by piece; StationError if anything is off."""
        digest = hashlib.sha256()
        with _envelope_path(self._unlocked, self._item).open("rb") as src:
            try:
                opened = open_envelope(src, self._unlocked.secrets)
                for part in opened.iter_content():
                    digest.update(part)
                    yield part
            except (DecryptionError, FormatError):
                raise _unreadable(self._unlocked, self._item) from None
        if not hmac.compare_digest(digest.hexdigest(), self.sha256):
            raise _unreadable(self._unlocked, self._item)


def sealed_to(unlocked: Unlocked, key_ids: str | None) -> bool:
    """Whether an envelope sealed to ``key_ids`` (an item's comma-separated hex key ids)
    opens with the unlocked journalist's keys (an unknown list counts as yes: try it)."""
    mine = {key.key_id.hex() for key in unlocked.encryption_keys}
    named = {key_id for key_id in (key_ids or "").split(",") if key_id}
    return not named or bool(mine & named)


def _unreadable(unlocked: Unlocked, item: Item) -> StationError:
    """Why an envelope did not open: not sealed to this journalist's keys, or damaged."""
    if not sealed_to(unlocked, item.key_ids):
        return StationError(
            f"item {item.id} is not sealed to your keys (it is sealed to key ids "
            f"{item.key_ids}): a journalist whose key it names can read it, and "
            "`journalist keys rewrap` reseals it to every current journalist"
        )
    return StationError(f"the stored envelope of item {item.id} no longer decrypts: it is damaged")


def _envelope_path(unlocked: Unlocked, item: Item) -> Path:
    return unlocked.layout.envelopes / item.envelope_name


def _load(unlocked: Unlocked, item_id: int) -> tuple[Item, str]:
    with unlocked.store.session() as session:
        row = session.execute(
            select(Item, Source.designation)
            .join(Source, Source.id == Item.source_pk)
            .where(Item.id == item_id, Source.deleted.is_(False))
        ).first()
    if row is None:
        raise StationError(f"no item {item_id}")
    item, designation = row
    if not item.decryptable:
        raise StationError(
            f"item {item_id} cannot be decrypted with this station's keys "
            f"(it is sealed to key ids {item.key_ids})"
        )
    return item, designation


def _log_view(unlocked: Unlocked, item: Item, designation: str, now: datetime | None) -> None:
    with unlocked.store.session() as session:
        ledger.record(
            session,
            event="view",
            journalist=unlocked.journalist,
            item_ref=str(item.id),
            sha256=item.plaintext_sha256,
            detail={"kind": item.kind, "source": designation},
            now=datetime.now(UTC) if now is None else now,
        )
    ledger.update_head(unlocked.store, unlocked.layout.ledger_head)


def read_message(
    unlocked: Unlocked, item_id: int, *, log_view: bool = True, now: datetime | None = None
) -> str:
    """The decrypted text of a message or reply (invalid UTF-8 shown as U+FFFD)."""
    item, designation = _load(unlocked, item_id)
    if item.kind not in ("message", "reply"):
        raise StationError(f"item {item_id} is a {item.kind}, not a message")
    if (item.plaintext_size or 0) > MAX_MESSAGE:
        raise StationError(f"message {item_id} is too long to show: export it as a file")
    path = unlocked.layout.envelopes / item.envelope_name
    with path.open("rb") as src:
        try:
            content = open_envelope(src, unlocked.secrets).read_all()
        except (DecryptionError, FormatError):
            raise _unreadable(unlocked, item) from None
    if log_view:
        _log_view(unlocked, item, designation, now)
    return content.decode("utf-8", "replace")


def open_file(
    unlocked: Unlocked, item_id: int, *, log_view: bool = True, now: datetime | None = None
) -> FilePlaintext:
    """A file item, ready to stream; its key and header are verified before this returns."""
    item, designation = _load(unlocked, item_id)
    if item.kind != "file":
        raise StationError(f"item {item_id} is a {item.kind}, not a file")
    path = unlocked.layout.envelopes / item.envelope_name
    with path.open("rb") as src:
        try:
            open_envelope(src, unlocked.secrets)
        except (DecryptionError, FormatError):
            raise _unreadable(unlocked, item) from None
    if log_view:
        _log_view(unlocked, item, designation, now)
    return FilePlaintext(
        item.filename,
        item.media_type,
        item.plaintext_size or 0,
        item.plaintext_sha256 or "",
        unlocked,
        item,
    )


__all__ = ["MAX_MESSAGE", "FilePlaintext", "open_file", "read_message", "sealed_to"]
