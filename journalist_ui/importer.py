"""Importing an inbound bundle (docs/format.md sections 10 and 12) into the station store.

The bundle is verified against the pinned server key while its envelopes stream into
temporary files in HOME/store/envelopes/ (crypto.bundle.read_inbound_bundle with one sink per
envelope). Only when the whole bundle verified is each new envelope decrypted, once, to learn
what it holds: the text of messages goes into the encrypted database (FTS5), files only leave
their plaintext SHA-256, size, name and media type. Then one database transaction records the
import, its sources, items and ledger events; the temporary files get their final names just
before it commits, and are removed if anything fails. A bundle already imported adds nothing;
items already present (same id, same envelope) are skipped; an envelope the journalist's keys
cannot open is kept and marked undecryptable, never dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from crypto import (
    DecryptionError,
    FormatError,
    Kind,
    PublicKey,
    SignatureError,
    UnsupportedVersion,
    open_envelope,
    read_header,
)
from crypto.bundle import InboundItem, InboundManifest, open_bundle_file, read_inbound_bundle
from journalist_ui import fs, ledger
from journalist_ui.errors import StationError
from journalist_ui.filenames import safe_filename
from journalist_ui.station import Layout, load_server_key
from journalist_ui.store.designations import designation_for
from journalist_ui.store.models import Import, Item, Outgoing, Source
from journalist_ui.unlock import Unlocked

#: Longest message text indexed for search (the whole message is always decrypted on demand).
MAX_INDEXED_TEXT = 4 * 1024 * 1024
#: Free space kept on the store's file system beyond what an import writes.
FREE_SPACE_MARGIN = 64 * 1024 * 1024
TEMP_PREFIX = ".import-"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportResult:
    imported: int
    already_present: int
    sources_new: int
    bundle_sha256: str
    #: Envelopes none of the journalist's keys could open (imported, marked undecryptable).
    undecryptable: int = 0
    #: Local ids of the items this import added.
    item_ids: tuple[int, ...] = field(default=(), repr=False)


class _Reader:
    """The bundle file, counting bytes and hashing them up to the end of the signature."""

    def __init__(self, raw: BinaryIO, total: int, progress: Progress | None) -> None:
        self._raw = raw
        self.total = total
        self.position = 0
        self.prefix = hashlib.sha256()
        self.in_prefix = True
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self.in_prefix:
            self.prefix.update(data)
        self.position += len(data)
        if self._progress is not None and data:
            self._progress(self.position, 2 * self.total)
        return data


class _TempSink:
    """One envelope on its way into HOME/store/envelopes/, under a temporary name."""

    def __init__(self, directory: Path, item: InboundItem) -> None:
        self.item = item
        self.path = directory / f"{TEMP_PREFIX}{secrets.token_hex(16)}.tmp"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")

    def write(self, data: bytes, /) -> object:
        if self._file is None:
            raise OSError("write to a closed envelope sink")
        return self._file.write(data)

    def commit(self) -> None:
        # Made durable all at once (os.sync) before the files get their names.
        if self._file is not None:
            self._file.close()
            self._file = None

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass
class _Opened:
    """What decrypting one new envelope taught us."""

    item: InboundItem
    temp: Path
    key_ids: str
    decryptable: bool
    kind: str
    filename: str | None = None
    media_type: str | None = None
    plaintext_size: int | None = None
    plaintext_sha256: str | None = None
    body: str | None = None
    final_name: str = field(default_factory=lambda: secrets.token_hex(16))


@contextlib.contextmanager
def _import_lock(layout: Layout) -> Iterator[None]:
    path = layout.store / "import.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StationError("another import is running on this station: wait for it") from None
        yield
    finally:
        os.close(fd)


def _sweep_temporaries(directory: Path) -> None:
    """Remove what an import that was killed left (only ever run under the import lock)."""
    for leftover in directory.glob(f"{TEMP_PREFIX}*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def import_bundle(
    unlocked: Unlocked,
    bundle: Path,
    *,
    today: date,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Verify and import one inbound bundle; see the module docstring."""
    moment = datetime.now(UTC) if now is None else now
    layout = unlocked.layout
    server_key = load_server_key(layout)
    if not layout.envelopes.is_dir():
        fs.make_private_dir(layout.envelopes)
    with _import_lock(layout):
        _sweep_temporaries(layout.envelopes)
        sinks: list[_TempSink] = []
        try:
            manifest, bundle_sha256, size = _receive(bundle, server_key, layout, sinks, progress)
            decrypting = None if progress is None else _second_half(progress, size)
            result = _record(unlocked, manifest, bundle_sha256, sinks, today, moment, decrypting)
            if progress is not None:
                progress(2 * size, 2 * size)
            return result
        finally:
            for sink in sinks:
                sink.abort()  # every file still under a temporary name goes


def _second_half(progress: Progress, size: int) -> Callable[[int], None]:
    """Progress of the decryption pass: the second half of the bar."""
    return lambda done: progress(size + min(done, size), 2 * size)


def _receive(
    bundle: Path,
    server_key: PublicKey,
    layout: Layout,
    sinks: list[_TempSink],
    progress: Progress | None,
) -> tuple[InboundManifest, str, int]:
    try:
        raw = open_bundle_file(bundle)
    except FormatError as exc:
        raise StationError(f"refused {bundle}: {exc}") from None
    except FileNotFoundError:
        raise StationError(f"no such bundle file: {bundle}") from None
    with raw:
        total = os.fstat(raw.fileno()).st_size
        reader = _Reader(raw, total, progress)

        envelopes = layout.envelopes

        def open_sink(item: InboundItem) -> _TempSink:
            if reader.in_prefix:
                # The rest of the file bounds what the envelopes need on disk.
                reader.in_prefix = False
                free = shutil.disk_usage(envelopes).free
                if total - reader.position + FREE_SPACE_MARGIN > free:
                    raise StationError(
                        f"not enough free space in {envelopes} for the "
                        f"{total - reader.position} bytes of envelopes in {bundle}"
                    )
            remaining = total - reader.position
            if item.size > remaining:
                raise FormatError(
                    f"item {item.id} claims {item.size} bytes but only {remaining} bytes "
                    "remain in the bundle"
                )
            sink = _TempSink(envelopes, item)
            sinks.append(sink)
            return sink

        try:
            manifest = read_inbound_bundle(cast(BinaryIO, reader), server_key.key, open_sink)
        except SignatureError:
            raise StationError(
                f"refused {bundle}: it is not signed by the pinned server key "
                f"(fingerprint {server_key.fingerprint})"
            ) from None
        except UnsupportedVersion as exc:
            raise StationError(f"refused {bundle}: {exc}") from None
        except FormatError as exc:
            raise StationError(f"refused {bundle}: not a valid inbound bundle: {exc}") from None
    return manifest, reader.prefix.hexdigest(), total


class _Digest:
    """Where decrypted content goes during an import: hashed and counted, never stored;
    the text of a message (up to MAX_INDEXED_TEXT bytes) is kept for the search index."""

    def __init__(self, keep_text: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.text = bytearray() if keep_text else None

    def write(self, data: bytes | memoryview) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self.text is not None and len(self.text) < MAX_INDEXED_TEXT:
            self.text += data[: MAX_INDEXED_TEXT - len(self.text)]
        return len(data)


def _decrypt(item: InboundItem, temp: Path, secrets_: list[bytes]) -> _Opened:
    with temp.open("rb") as src:
        try:
            opened = open_envelope(src, secrets_)
            metadata = opened.metadata
            digest = _Digest(keep_text=metadata.kind is Kind.MESSAGE)
            opened.write_to(cast(BinaryIO, digest))
        except (DecryptionError, FormatError):
            # Kept all the same, with the key ids its header names (if it has one).
            src.seek(0)
            try:
                header = read_header(src)
            except FormatError:
                return _Opened(item, temp, "", False, item.kind)
            key_ids = ",".join(sorted(k.hex() for k in header.key_ids))
            return _Opened(item, temp, key_ids, False, item.kind)
    key_ids = ",".join(sorted(k.hex() for k in opened.header.key_ids))
    kind = {Kind.MESSAGE: "message", Kind.FILE: "file"}.get(metadata.kind, item.kind)
    return _Opened(
        item,
        temp,
        key_ids,
        True,
        kind,
        filename=(safe_filename(metadata.filename) or None) if kind == "file" else None,
        media_type=metadata.media_type or None,
        plaintext_size=digest.size,
        plaintext_sha256=digest.sha256.hexdigest(),
        body=None if digest.text is None else bytes(digest.text).decode("utf-8", "replace"),
    )


def _record(
    unlocked: Unlocked,
    manifest: InboundManifest,
    bundle_sha256: str,
    sinks: list[_TempSink],
    today: date,
    now: datetime,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    layout = unlocked.layout
    by_id = {sink.item.id: sink for sink in sinks}
    # A short read transaction: what is new?
    with unlocked.store.session() as session:
        if session.scalar(select(Import.id).where(Import.bundle_sha256 == bundle_sha256)):
            return ImportResult(0, len(manifest.items), 0, bundle_sha256)
        present = _already_present(session, manifest)
    new_items = [item for item in manifest.items if item.id not in present]

    opened: list[_Opened] = []
    done = 0
    for item in new_items:
        opened.append(_decrypt(item, by_id[item.id].path, unlocked.secrets))
        done += item.size
        if progress is not None:
            progress(done)

    renamed: list[Path] = []
    try:
        with unlocked.store.session() as session:
            if _already_present(session, manifest) != present:
                raise StationError("the store changed during the import: import again")
            result = _write(session, unlocked, manifest, bundle_sha256, opened, today, now)
            # Items the server sent again are acknowledged again: the bundle that
            # acknowledged them first may never have reached the server.
            if present:
                session.execute(
                    insert(Outgoing),
                    [
                        {"kind": "ack", "server_id": server_id, "created_day": today}
                        for server_id in sorted(present, key=int)
                    ],
                )
            # One sync for every new envelope file, rather than an fsync per file.
            os.sync()
            envelopes = layout.envelopes
            for entry in opened:
                final = envelopes / entry.final_name
                os.rename(entry.temp, final)
                renamed.append(final)
            fs.fsync_dir(layout.envelopes)
            # The session commits as the block ends; the files already have their names.
    except BaseException:
        for path in renamed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    # Committed: from here on nothing may remove the files.
    ledger.update_head(unlocked.store, layout.ledger_head)
    return ImportResult(
        result.imported,
        len(manifest.items) - result.imported,
        result.sources_new,
        bundle_sha256,
        result.undecryptable,
        result.item_ids,
    )


def _already_present(session: Session, manifest: InboundManifest) -> frozenset[str]:
    """The manifest's items already in the store; refuse an id whose content differs."""
    present = set()
    ids = [item.id for item in manifest.items]
    known: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Item.server_id, Item.envelope_sha256, Source.source_id)
            .join(Source, Source.id == Item.source_pk)
            .where(Item.server_id.in_(ids[start : start + 500]))
        ).all()
        for server_id, envelope_sha256, source_id in rows:
            known[str(server_id)] = (envelope_sha256, source_id)
    for item in manifest.items:
        if item.id not in known:
            continue
        envelope_sha256, source_id = known[item.id]
        same = hmac.compare_digest(envelope_sha256, item.sha256.hex())
        if not same or source_id != item.source_id.hex():
            raise StationError(
                f"item {item.id} of this bundle differs from the item {item.id} already "
                "imported (another envelope or source): the bundle is refused"
            )
        present.add(item.id)
    return frozenset(present)


@dataclass(frozen=True)
class _Written:
    imported: int
    sources_new: int
    undecryptable: int
    item_ids: tuple[int, ...]


def _write(
    session: Session,
    unlocked: Unlocked,
    manifest: InboundManifest,
    bundle_sha256: str,
    opened: list[_Opened],
    today: date,
    now: datetime,
) -> _Written:
    """Insert everything in bulk: ids are assigned here, under the transaction's write lock
    (BEGIN IMMEDIATE), so rows need no flush one by one."""
    record = Import(
        bundle_sha256=bundle_sha256,
        made=manifest.made,
        server_key=manifest.server_key.hex(),
        keyring_serial=manifest.keyring_serial,
        items=len(opened),
        day=today,
        undecryptable=sum(1 for entry in opened if not entry.decryptable),
    )
    session.add(record)
    session.flush()
    wanted = sorted({entry.item.source_id.hex() for entry in opened})
    sources: dict[str, Source] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for found in session.scalars(select(Source).where(Source.source_id.in_(chunk))):
            sources[found.source_id] = found
    taken: set[str] | None = None
    next_source = (session.scalar(select(func.max(Source.id))) or 0) + 1
    next_item = (session.scalar(select(func.max(Item.id))) or 0) + 1
    new_sources: dict[str, dict[str, object]] = {}
    item_rows: list[dict[str, object]] = []
    fts_rows: list[dict[str, object]] = []
    appender = ledger.Appender(session)
    for entry in opened:
        item = entry.item
        source_hex = item.source_id.hex()
        existing = sources.get(source_hex)
        if existing is not None:
            if existing.reply_public_key != item.reply_public_key:
                raise StationError(
                    f"item {item.id} names source {existing.designation} with another reply "
                    "key than before: the bundle is refused"
                )
            existing.first_day = min(existing.first_day, item.day)
            existing.last_day = max(existing.last_day, item.day)
            existing.deleted = False
            source_pk, designation = existing.id, existing.designation
        elif source_hex in new_sources:
            row = new_sources[source_hex]
            if row["reply_public_key"] != item.reply_public_key:
                raise StationError(
                    f"item {item.id} names source {row['designation']} with another reply "
                    "key than another item of the bundle: the bundle is refused"
                )
            row["first_day"] = min(cast(date, row["first_day"]), item.day)
            row["last_day"] = max(cast(date, row["last_day"]), item.day)
            source_pk, designation = cast(int, row["id"]), cast(str, row["designation"])
        else:
            if taken is None:
                taken = set(session.scalars(select(Source.designation)))
            designation = designation_for(source_hex, taken)
            taken.add(designation)
            source_pk = next_source
            next_source += 1
            new_sources[source_hex] = {
                "id": source_pk,
                "source_id": source_hex,
                "reply_public_key": item.reply_public_key,
                "designation": designation,
                "status": "new",
                "starred": False,
                "assigned_to": None,
                "first_day": item.day,
                "last_day": item.day,
                "deleted": False,
            }
        item_pk = next_item
        next_item += 1
        item_rows.append(
            {
                "id": item_pk,
                "source_pk": source_pk,
                "server_id": item.id,
                "direction": "in",
                "kind": entry.kind,
                "day": item.day,
                "envelope_name": entry.final_name,
                "envelope_size": item.size,
                "envelope_sha256": item.sha256.hex(),
                "filename": entry.filename,
                "media_type": entry.media_type,
                "plaintext_size": entry.plaintext_size,
                "plaintext_sha256": entry.plaintext_sha256,
                "key_ids": entry.key_ids,
                "import_id": record.id,
                "author": None,
                "decryptable": entry.decryptable,
            }
        )
        if entry.body is not None:
            fts_rows.append({"id": item_pk, "body": entry.body})
        detail: dict[str, str | int] = {
            "bundle": bundle_sha256,
            "server_id": item.id,
            "source": designation,
            "kind": entry.kind,
            "envelope_size": item.size,
        }
        if entry.decryptable:
            detail["plaintext_sha256"] = entry.plaintext_sha256 or ""
            detail["plaintext_size"] = entry.plaintext_size or 0
            if entry.filename:
                detail["filename"] = entry.filename
        else:
            detail["undecryptable"] = 1
        appender.add(
            event="import",
            journalist=unlocked.journalist,
            item_ref=str(item_pk),
            sha256=item.sha256.hex(),
            detail=detail,
            now=now,
        )
    if not opened:
        appender.add(
            event="import",
            journalist=unlocked.journalist,
            item_ref=None,
            sha256=None,
            detail={"bundle": bundle_sha256, "items": 0},
            now=now,
        )
    if new_sources:
        session.execute(insert(Source), list(new_sources.values()))
    if item_rows:
        session.execute(insert(Item), item_rows)
    if fts_rows:
        session.execute(
            text("INSERT INTO message_fts (item_id, body) VALUES (:id, :body)"), fts_rows
        )
    appender.flush()
    session.flush()
    return _Written(
        len(opened),
        len(new_sources),
        record.undecryptable,
        tuple(cast(int, row["id"]) for row in item_rows),
    )


__all__ = ["ImportResult", "import_bundle"]
