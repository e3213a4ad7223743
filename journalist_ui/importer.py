"""Importing an inbound bundle (docs/format.md sections 10 and 12) into the station store.

The bundle is verified against the pinned server key while its envelopes stream into
temporary files in HOME/store/envelopes/ (crypto.bundle.read_inbound_bundle with one sink per
envelope). Only when the whole bundle verified is each new envelope decrypted, once, to learn
what it holds: the text of messages goes into the encrypted database (FTS5), files only leave
their plaintext SHA-256, size, name and media type. Then one database transaction records the
import, its sources, items and ledger events; the temporary files get their final names just
before it commits, and are removed if anything fails. A bundle already imported adds nothing;
items already present (same id, same envelope) are skipped; an envelope the journalist's keys
cannot open is kept and marked undecryptable, never dropped (another journalist's keys may
open it later: journalist_ui/reopen.py).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import fcntl
import functools
import hashlib
import hmac
import io
import json
import os
import queue
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy import func, insert, select
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
from journalist_ui.store import index_messages
from journalist_ui.store.designations import designation_for
from journalist_ui.store.models import Import, Item, LedgerRecord, Outgoing, Source
from journalist_ui.unlock import Unlocked

#: Longest message text indexed for search (the whole message is always decrypted on demand).
MAX_INDEXED_TEXT = 4 * 1024 * 1024
#: Free space kept on the store's file system beyond what an import writes.
FREE_SPACE_MARGIN = 64 * 1024 * 1024
TEMP_PREFIX = ".import-"
#: In HOME/store/: the final names an import is giving its envelope files, written before the
#: first rename and removed once its transaction committed (see _recover_publish).
PUBLISHING = "import.publishing"
_FINAL_NAME = re.compile(r"[0-9a-f]{32}")
#: Envelopes up to this size are gathered in memory and decrypted from there; larger ones
#: are decrypted from their file.
IN_MEMORY_MAX = 1024 * 1024
#: Small envelopes held in memory until the bundle has verified, at most (bytes).
HELD_MAX = 64 * 1024 * 1024
#: A large envelope goes to the spool thread in writes of this many bytes.
WRITE_BATCH = 8 * 1024 * 1024
#: Bytes handed to the writer thread and not yet written, at most (bounds the memory used).
SPOOL_BACKLOG = 32 * 1024 * 1024
#: Large envelopes are written (and then decrypted) by a second thread.
SPOOL_THREAD = True
#: ... which also decrypts them, once written (its SHA-256 runs beside the calling thread).
SPOOL_DECRYPTS = True
#: The calling thread decrypts held small envelopes while the spool's backlog is full,
#: rather than wait (bench/station.py --profile: ~2 s of waiting filled when the machine
#: was quiet; no better, nor clearly worse, when other work held both cores).
DECRYPT_WHILE_WAITING = True
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

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


class _Spool:
    """A thread that writes the envelope files (and opens the large envelopes from them)
    while the calling thread reads, verifies and decrypts the bundle: file writes and SHA-256
    release the GIL, so the two cores share the work. Jobs run in the order given; after a
    failure or :meth:`cancel` the remaining jobs are skipped."""

    def __init__(self, threaded: bool, idle: Callable[[], bool] | None = None) -> None:
        self._idle = idle
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], int] | None] = queue.SimpleQueue()
        self._room = threading.Condition()
        self._backlog = 0
        self._error: BaseException | None = None
        self._cancelled = False
        self._threaded = threaded
        self._thread = threading.Thread(target=self._run, name="postern-import-spool")
        if threaded:
            self._thread.start()

    def _run(self) -> None:
        while True:
            entry = self._jobs.get()
            if entry is None:
                return
            job, size = entry
            try:
                if self._error is None and not self._cancelled:
                    job()
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                self._error = exc
            finally:
                with self._room:
                    self._backlog -= size
                    self._room.notify_all()

    def submit(self, job: Callable[[], None], size: int) -> None:
        """Queue a job holding ``size`` bytes. While SPOOL_BACKLOG bytes are queued, call
        ``idle`` (work of the calling thread, which returns False when it has none) or wait."""
        idle = self._idle
        self.check()
        if not self._threaded:
            job()
            return
        if not self._thread.is_alive():
            raise OSError("the import's writer thread has stopped")
        with self._room:
            while self._backlog > SPOOL_BACKLOG and self._error is None:
                if idle is not None:
                    self._room.release()
                    try:
                        busy = idle()
                    finally:
                        self._room.acquire()
                    if busy:
                        continue
                self._room.wait()
            self._backlog += size
        self._jobs.put((job, size))

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        """Run every queued job, stop the thread and raise the first failure, if any."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self.check()

    def cancel(self) -> None:
        """Skip what is still queued and wait until the thread has stopped (idempotent)."""
        self._cancelled = True
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()


class _Receiving:
    """What the sinks of one import share."""

    def __init__(self, directory: Path, secrets_: list[bytes]) -> None:
        self.directory = directory
        self.secrets = secrets_
        self.spool = _Spool(SPOOL_THREAD, self.decrypt_one if DECRYPT_WHILE_WAITING else None)
        #: False once the bundle is known to be imported already: sinks then keep nothing.
        self.keep = True
        self.sinks: list[_SpoolSink] = []
        #: Bytes of small envelopes held in memory until they are decrypted.
        self.held = 0
        #: Small envelopes held and not decrypted yet, oldest first.
        self.waiting: collections.deque[_SpoolSink] = collections.deque()
        self.names = _Names()

    def decrypt_one(self) -> bool:
        """Decrypt the oldest small envelope held (while the spool has work queued, instead
        of waiting for it); False if none is left."""
        if not self.waiting:
            return False
        sink = self.waiting.popleft()
        if sink.opened is None and sink.data is not None:
            self.held -= len(sink.data)
            sink.opened = sink.decrypt(self.secrets)
        return True


class _Names:
    """Random file names (32 lowercase hex digits, 128 bits from the system's CSPRNG), drawn
    1024 at a time: one getrandom call, not one per file, in the thread that verifies."""

    def __init__(self) -> None:
        self._pool: list[str] = []

    def take(self) -> str:
        if not self._pool:
            block = os.urandom(16 * 1024).hex()
            self._pool = [block[at : at + 32] for at in range(0, len(block), 32)]
        return self._pool.pop()


class _SpoolSink:
    """One envelope on its way into HOME/store/envelopes/, under a temporary name.

    An envelope of up to IN_MEMORY_MAX bytes is written to its file in one piece and kept in
    memory (HELD_MAX bytes of them at most) to be decrypted from there, whenever the calling
    thread would otherwise wait for the spool, or else once the bundle has verified (the
    results count only if it does); a larger one is
    handed to the spool in batches of WRITE_BATCH bytes and decrypted from its file once
    written. Either way each envelope is decrypted once and its file holds exactly the
    bundle's bytes.
    """

    def __init__(self, receiving: _Receiving, item: InboundItem) -> None:
        self.item = item
        self.path = receiving.directory / f"{TEMP_PREFIX}{receiving.names.take()}.tmp"
        #: The whole envelope, for a small one until it is decrypted.
        self.data: bytes | None = None
        #: What decrypting it taught, if that happened on the way (by the spool for a large
        #: envelope, while waiting for the spool for a small one).
        self.opened: _Opened | None = None
        self._receiving = receiving
        self._received = 0
        self._parts: list[bytes] = []
        self._pending = 0
        self._fd: int | None = None
        self.small = item.size <= IN_MEMORY_MAX
        if receiving.keep and not self.small:
            receiving.spool.submit(self._create, 0)

    def _create(self) -> None:
        self._fd = os.open(self.path, _CREATE_FLAGS, 0o600)

    def _append(self, parts: list[bytes]) -> None:
        fd = cast(int, self._fd)
        done = os.writev(fd, parts)
        if done < sum(len(part) for part in parts):
            _write_all(fd, memoryview(b"".join(parts))[done:])

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def write(self, data: bytes, /) -> object:
        receiving = self._receiving
        self._received += len(data)
        if not receiving.keep:
            return len(data)
        complete = self._received >= self.item.size
        self._parts.append(data)
        self._pending += len(data)
        if not self.small:
            if complete or self._pending >= WRITE_BATCH or len(self._parts) >= 256:
                parts, size = self._parts, self._pending
                self._parts, self._pending = [], 0
                receiving.spool.submit(functools.partial(self._append, parts), size)
            if complete:
                receiving.spool.submit(self._close, 0)
                if SPOOL_DECRYPTS:
                    receiving.spool.submit(self._decrypt_written, 0)
            return len(data)
        if complete:
            whole = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts, self._pending = [], 0
            self._create()
            try:
                _write_all(cast(int, self._fd), whole)
            finally:
                self._close()
            self.data = whole
            receiving.held += len(whole)
            if receiving.held > HELD_MAX:
                # Too much in memory: written, dropped, decrypted from the file later.
                receiving.held -= len(whole)
                self.data = None
            else:
                receiving.waiting.append(self)
        return len(data)

    def _decrypt_written(self) -> None:
        self.opened = self.decrypt(self._receiving.secrets)

    def commit(self) -> None:
        # The files are made durable all at once before they get their names (_record).
        self._parts = []

    def abort(self) -> None:
        """Remove the file, once the spool has stopped (it might still create it)."""
        self._receiving.spool.cancel()
        self._parts = []
        self.data = None
        self._close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def decrypt(self, secrets_: list[bytes]) -> _Opened:
        """Decrypt the envelope (from memory if held, else from its file): once."""
        if self.data is not None:
            data, self.data = self.data, None
            return _decrypt(self.item, self.path, io.BytesIO(data), secrets_)
        with self.path.open("rb") as src:
            return _decrypt(self.item, self.path, src, secrets_)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
    #: Given in _record, from the import's _Names.
    final_name: str = ""


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


def _recover_publish(unlocked: Unlocked) -> None:
    """Undo the publish step of an import killed before its commit (only under the lock).

    Its files already had their final names but no row names them: each name listed in
    PUBLISHING that no item of the store names is removed. A name an item does name stays.
    """
    layout = unlocked.layout
    marker = layout.store / PUBLISHING
    try:
        listed = marker.read_text(encoding="ascii").split()
    except FileNotFoundError:
        return
    names = [name for name in listed if _FINAL_NAME.fullmatch(name)]
    known: set[str] = set()
    with unlocked.store.session() as session:
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            known.update(
                session.scalars(select(Item.envelope_name).where(Item.envelope_name.in_(chunk)))
            )
    for name in names:
        if name not in known:
            with contextlib.suppress(FileNotFoundError):
                (layout.envelopes / name).unlink()
    fs.fsync_dir(layout.envelopes)
    marker.unlink()
    fs.fsync_dir(layout.store)


def import_bundle(
    unlocked: Unlocked,
    bundle: Path,
    *,
    today: date,
    progress: Progress | None = None,
    now: datetime | None = None,
    phases: Callable[[str], None] | None = None,
) -> ImportResult:
    """Verify and import one inbound bundle; see the module docstring.

    ``phases``, if given, is called with the name of each phase as it ends: "receive" (read
    and verify the bundle, write the small envelopes), "decrypt" (the small ones, from
    memory), "spool" (waiting for the spool thread), "large" (what the spool left to decrypt),
    "sync", "record" (the database rows) and "commit": the benchmark's breakdown.
    """
    moment = datetime.now(UTC) if now is None else now
    mark = phases if phases is not None else (lambda _phase: None)
    layout = unlocked.layout
    server_key = load_server_key(layout)
    if not layout.envelopes.is_dir():
        fs.make_private_dir(layout.envelopes)
    with _import_lock(layout):
        _sweep_temporaries(layout.envelopes)
        _recover_publish(unlocked)
        receiving = _Receiving(layout.envelopes, unlocked.secrets)
        try:
            manifest, bundle_sha256, size = _receive(
                bundle, server_key, unlocked, receiving, progress
            )
            mark("receive")
            decrypting = None if progress is None else _second_half(progress, size)
            result = _record(
                unlocked, manifest, bundle_sha256, receiving, today, moment, mark, decrypting
            )
            if progress is not None:
                progress(2 * size, 2 * size)
            return result
        finally:
            receiving.spool.cancel()
            for sink in receiving.sinks:
                sink.abort()  # every file still under a temporary name goes


def _second_half(progress: Progress, size: int) -> Callable[[int], None]:
    """Progress of the decryption pass: the second half of the bar."""
    return lambda done: progress(size + min(done, size), 2 * size)


def _receive(
    bundle: Path,
    server_key: PublicKey,
    unlocked: Unlocked,
    receiving: _Receiving,
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

        envelopes = receiving.directory

        def open_sink(item: InboundItem) -> _SpoolSink:
            if reader.in_prefix:
                # Signature and manifest are behind us: the bundle's identity is known.
                reader.in_prefix = False
                with unlocked.store.session() as session:
                    digest = reader.prefix.hexdigest()
                    if session.scalar(select(Import.id).where(Import.bundle_sha256 == digest)):
                        receiving.keep = False  # verified all the same, but nothing is kept
                # The rest of the file bounds what the envelopes need on disk.
                free = shutil.disk_usage(envelopes).free
                if receiving.keep and total - reader.position + FREE_SPACE_MARGIN > free:
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
            sink = _SpoolSink(receiving, item)
            receiving.sinks.append(sink)
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


def _decrypt(item: InboundItem, temp: Path, src: BinaryIO, secrets_: list[bytes]) -> _Opened:
    """Open the envelope in src (its bytes as in the bundle; its file is ``temp``)."""
    return _Opened(item, temp, **dataclasses.asdict(read_contents(src, secrets_, item.kind)))


@dataclass(frozen=True)
class Contents:
    """What an envelope tells those who open it (all None when none of the keys could)."""

    key_ids: str  # the recipients' key ids its header names, hex, sorted, comma-separated
    decryptable: bool
    kind: str
    filename: str | None = None
    media_type: str | None = None
    plaintext_size: int | None = None
    plaintext_sha256: str | None = None
    body: str | None = None  # a message's text, for search


def read_contents(src: BinaryIO, secrets_: list[bytes], kind: str) -> Contents:
    """Open the envelope in ``src`` with ``secrets_`` and hash (and, for a message, keep the
    text of) its content. An envelope none of the keys opens gives ``decryptable`` False,
    the key ids its header names (if it has a header) and ``kind`` as given."""
    try:
        opened = open_envelope(src, secrets_)
        metadata = opened.metadata
        digest = _Digest(keep_text=metadata.kind is Kind.MESSAGE)
        opened.write_to(cast(BinaryIO, digest))
    except (DecryptionError, FormatError):
        src.seek(0)
        try:
            header = read_header(src)
        except FormatError:
            return Contents("", False, kind)
        return Contents(",".join(sorted(k.hex() for k in header.key_ids)), False, kind)
    key_ids = ",".join(sorted(k.hex() for k in opened.header.key_ids))
    kind = {Kind.MESSAGE: "message", Kind.FILE: "file"}.get(metadata.kind, kind)
    return Contents(
        key_ids,
        True,
        kind,
        filename=(safe_filename(metadata.filename) or None) if kind == "file" else None,
        media_type=metadata.media_type or None,
        plaintext_size=digest.size,
        plaintext_sha256=digest.sha256.hexdigest(),
        body=None if digest.text is None else bytes(digest.text).decode("utf-8", "replace"),
    )


def _sync_file_system(directory: Path) -> None:
    """Make every file written on the file system of ``directory`` durable: syncfs(2), which
    waits for that file system only; os.sync where the C library has no syncfs."""
    libc = ctypes.CDLL(None, use_errno=True)
    syncfs = getattr(libc, "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs of {directory} failed: {os.strerror(code)}")
    finally:
        os.close(fd)


def _record(
    unlocked: Unlocked,
    manifest: InboundManifest,
    bundle_sha256: str,
    receiving: _Receiving,
    today: date,
    now: datetime,
    mark: Callable[[str], None],
    progress: Callable[[int], None] | None,
) -> ImportResult:
    layout = unlocked.layout
    by_id = {sink.item.id: sink for sink in receiving.sinks}
    # A short read transaction: what is new?
    with unlocked.store.session() as session:
        if session.scalar(select(Import.id).where(Import.bundle_sha256 == bundle_sha256)):
            return ImportResult(0, len(manifest.items), 0, bundle_sha256)
        present = _already_present(session, manifest)
    if not receiving.keep:  # nothing was kept: the bundle was imported when it was read
        raise StationError("the store changed during the import: import again")
    new = [by_id[item.id] for item in manifest.items if item.id not in present]
    opened_by_id: dict[str, _Opened] = {}
    done = 0

    def decrypt(sink: _SpoolSink) -> None:
        nonlocal done
        already = sink.opened
        opened_by_id[sink.item.id] = sink.decrypt(unlocked.secrets) if already is None else already
        done += sink.item.size
        if progress is not None:
            progress(done)

    # The small envelopes (from memory) while the spool still writes the large ones, then
    # the large ones from their files.
    for sink in new:
        if sink.small:
            decrypt(sink)
    mark("decrypt")
    receiving.spool.finish()
    mark("spool")
    for sink in new:
        if not sink.small:
            decrypt(sink)
    opened = [opened_by_id[sink.item.id] for sink in new]
    for entry in opened:
        entry.final_name = receiving.names.take()
    mark("large")
    # Every new envelope file durable at once, rather than an fsync per file.
    _sync_file_system(layout.envelopes)
    mark("sync")

    renamed: list[Path] = []
    marker = layout.store / PUBLISHING
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
            mark("record")
            envelopes = layout.envelopes
            if opened:
                # Durable before the first rename: a kill from here on is undone on the
                # next import (_recover_publish).
                fs.atomic_write(
                    marker, "".join(f"{entry.final_name}\n" for entry in opened).encode()
                )
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
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()
        raise
    mark("commit")
    # Committed: the names are the store's now (a marker left by a crash here is harmless:
    # every name it lists is an item's).
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
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
    """The manifest's items already in the store; refuse an id whose content differs.

    An item that ``journalist keys rewrap`` re-sealed is stored under another SHA-256 than
    it arrived with; it is the same item when a ``rewrap`` ledger event of it names the
    received hash as an earlier state (section 13.4).
    """
    present = set()
    ids = [item.id for item in manifest.items]
    known: dict[str, tuple[int, str, str]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Item.server_id, Item.id, Item.envelope_sha256, Source.source_id)
            .join(Source, Source.id == Item.source_pk)
            .where(Item.server_id.in_(ids[start : start + 500]))
        ).all()
        for server_id, local_id, envelope_sha256, source_id in rows:
            known[str(server_id)] = (local_id, envelope_sha256, source_id)
    for item in manifest.items:
        if item.id not in known:
            continue
        local_id, envelope_sha256, source_id = known[item.id]
        received = item.sha256.hex()
        same = hmac.compare_digest(envelope_sha256, received) or received in _rewrapped_from(
            session, local_id
        )
        if not same or source_id != item.source_id.hex():
            raise StationError(
                f"item {item.id} of this bundle differs from the item {item.id} already "
                "imported (another envelope or source): the bundle is refused"
            )
        present.add(item.id)
    return frozenset(present)


def _rewrapped_from(session: Session, local_id: int) -> set[str]:
    """The envelope hashes an item had before each rewrap of it (its ledger says)."""
    before = set()
    details = session.scalars(
        select(LedgerRecord.detail).where(
            LedgerRecord.event == "rewrap", LedgerRecord.item_ref == str(local_id)
        )
    )
    for detail in details:
        try:
            value = json.loads(detail).get("envelope_before")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str):
            before.add(value)
    return before


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
    fts_rows: list[tuple[int, str]] = []
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
            fts_rows.append((item_pk, entry.body))
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
    index_messages(session, fts_rows)
    appender.flush()
    session.flush()
    return _Written(
        len(opened),
        len(new_sources),
        record.undecryptable,
        tuple(cast(int, row["id"]) for row in item_rows),
    )


__all__ = ["ImportResult", "import_bundle"]
