"""Importing an inbound bundle (docs/format.md sections 10 and 12) into the station store.

The bundle is read once: it is verified against the pinned server key while its envelopes
stream into temporary files in HOME/store/envelopes/ (crypto.bundle.read_inbound_bundle with
one sink per envelope, which checks each envelope's SHA-256 as it streams) and each envelope
is decrypted once, from memory, on the way, to learn what it holds: the text of messages goes
into the encrypted database (FTS5), files only leave their plaintext SHA-256, size, name and
media type. What decrypting taught is used only once the whole bundle verified. Then one
database transaction records the import, its sources, items and ledger events; the temporary
files are made durable at once and get their final names just before it commits, and are
removed if anything fails. A bundle already imported adds nothing;
items already present (same id, same envelope) are skipped; an envelope the journalist's keys
cannot open is kept and marked undecryptable, never dropped (another journalist's keys may
open it later: journalist_ui/reopen.py).

The package's modules, in the order an import runs: :mod:`.receive` reads and verifies the
bundle, :mod:`.spool` writes the envelope files meanwhile (large ones on a second thread),
:mod:`.contents` opens each envelope once, :mod:`.record` writes the rows, ledger events
and search index, and :mod:`.publish` gives the files their final names as the transaction
commits (and undoes what an import that was killed left).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from crypto import RecipientKeys
from crypto.bundle import InboundManifest
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.importer.contents import Contents, Opened, read_contents
from journalist_ui.importer.publish import publish_envelopes, recover_publish, sweep_temporaries
from journalist_ui.importer.receive import Progress, receive_bundle
from journalist_ui.importer.record import already_present, bundle_imported, record_import
from journalist_ui.importer.spool import Receiving, SpoolSink
from journalist_ui.station import Layout, load_server_key
from journalist_ui.store.terms import Analyzer
from journalist_ui.unlock import Unlocked


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
    and verify the bundle while the spool writes the envelopes and decrypts the large ones;
    small ones are decrypted meanwhile when the spool is behind), "decrypt" (the small ones
    left, from memory), "spool" (waiting for the spool thread to finish), "record" (the
    database rows and ledger events), "index" (the search index) and "publish" (the files
    made durable and given their names, the commit): the benchmark's breakdown.
    """
    moment = datetime.now(UTC) if now is None else now
    mark = phases if phases is not None else (lambda _phase: None)
    layout = unlocked.layout
    server_key = load_server_key(layout)
    if not layout.envelopes.is_dir():
        fs.make_private_dir(layout.envelopes)
    with _import_lock(layout):
        sweep_temporaries(layout.envelopes)
        recover_publish(unlocked)
        receiving = Receiving(layout.envelopes, RecipientKeys(unlocked.secrets), Analyzer())
        try:
            manifest, bundle_sha256, size = receive_bundle(
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
            receiving.staging.close()


def _second_half(progress: Progress, size: int) -> Callable[[int], None]:
    """Progress of the decryption pass: the second half of the bar."""
    return lambda done: progress(size + min(done, size), 2 * size)


def _record(
    unlocked: Unlocked,
    manifest: InboundManifest,
    bundle_sha256: str,
    receiving: Receiving,
    today: date,
    now: datetime,
    mark: Callable[[str], None],
    progress: Callable[[int], None] | None,
) -> ImportResult:
    # A short read transaction: what is new?
    with unlocked.store.session() as session:
        if bundle_imported(session, bundle_sha256):
            return ImportResult(0, len(manifest.items), 0, bundle_sha256)
        present = already_present(session, manifest)
    if not receiving.keep:  # nothing was kept: the bundle was imported when it was read
        raise StationError("the store changed during the import: import again")
    opened = _decrypt_new(unlocked, manifest, present, receiving, mark, progress)
    result = publish_envelopes(
        unlocked,
        opened,
        lambda session: record_import(
            session, unlocked, manifest, bundle_sha256, present, opened, today, now, mark
        ),
        mark,
    )
    renamed = {entry.temp for entry in opened}
    for sink in receiving.sinks:
        sink.published = sink.path in renamed
    return ImportResult(
        result.imported,
        len(manifest.items) - result.imported,
        result.sources_new,
        bundle_sha256,
        result.undecryptable,
        result.item_ids,
    )


def _decrypt_new(
    unlocked: Unlocked,
    manifest: InboundManifest,
    present: frozenset[str],
    receiving: Receiving,
    mark: Callable[[str], None],
    progress: Callable[[int], None] | None,
) -> list[Opened]:
    """What every envelope not ``present`` yet holds (decrypted once: small ones here if not
    on the way, large ones by the spool as they streamed), and its final name."""
    by_id = {sink.item.id: sink for sink in receiving.sinks}
    new = [by_id[item.id] for item in manifest.items if item.id not in present]
    opened_by_id: dict[str, Opened] = {}
    done = 0

    def decrypt(sink: SpoolSink) -> None:
        nonlocal done
        already = sink.opened
        opened_by_id[sink.item.id] = sink.decrypt() if already is None else already
        done += sink.item.size
        if progress is not None:
            progress(done)

    # The small envelopes (from memory) while the spool still writes the large ones; the
    # spool decrypted each large one as it wrote it.
    for sink in new:
        if sink.small:
            decrypt(sink)
    mark("decrypt")
    receiving.spool.finish()
    for sink in new:
        if not sink.small:
            decrypt(sink)
    opened = [opened_by_id[sink.item.id] for sink in new]
    for entry in opened:
        entry.final_name = receiving.names.take()
    mark("spool")
    return opened


__all__ = ["Contents", "ImportResult", "Progress", "import_bundle", "read_contents"]
