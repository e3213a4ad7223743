"""An import onto a station disk that fills up, on a real small ext4 (loop-mounted), where
the large envelopes are written with O_DIRECT (journalist_ui/importer/direct_write.py).

A bundle larger than the free space is refused before anything is written. When the disk
fills during the import anyway (another writer took the space after the check), the import
fails with the disk's error and leaves nothing: no rows, no ledger record, no file. Each
round frees the space and imports again, which must then store exactly the bundle's bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crypto import Kind, Sealer
from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Item, LedgerRecord
from tests.journalist_ui.storekit import (
    NOW,
    Entry,
    FakeSource,
    make_home,
    message,
    open_home,
    pin,
    recipients,
    server_key,
    write_bundle,
)
from tests.support.loopfs import fill, loop_mounted

MIB = 1024 * 1024
TODAY = date(2026, 11, 24)
ROUNDS = 2


def big_file(home: Path, size: int, seed: int) -> tuple[bytes, bytes]:
    """A file envelope of ``size`` bytes of content (not a multiple of any block); the
    content's SHA-256."""
    sealer = Sealer(recipients(home), Kind.FILE, f"clip-{seed}.mp4", "video/mp4")
    content = hashlib.shake_256(seed.to_bytes(4, "big")).digest(size)
    envelope = sealer.header + sealer.update(content) + b"".join(sealer.finish())
    return envelope, hashlib.sha256(content).digest()


_REAL_DISK_USAGE = shutil.disk_usage


def plenty_free(path: str | os.PathLike[str]) -> object:
    """shutil.disk_usage, but a terabyte free: the import's check before it writes passes."""
    return _REAL_DISK_USAGE(path)._replace(free=1 << 40)


def nothing_imported(home: Path) -> None:
    envelopes = home / "store" / "envelopes"
    assert sorted(p.name for p in envelopes.iterdir()) == []
    unlocked = open_home(home)
    try:
        with unlocked.store.session() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == 0
            assert session.scalar(select(func.count()).select_from(LedgerRecord)) == 0
    finally:
        unlocked.lock()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_disk_that_fills_during_an_import_keeps_nothing_and_the_next_import_works(
    tmp_path, monkeypatch
):
    key = server_key()
    # The bundle, off the small disk, sealed to the keys every storekit home holds.
    keys_home = make_home(tmp_path / "keys")
    source = FakeSource()
    files = [big_file(keys_home, 9 * MIB + 12_345 * n, n) for n in range(1, 4)]
    entries = [Entry(str(n), source, "file", env) for n, (env, _) in enumerate(files, 1)]
    entries.append(Entry("4", source, "message", message(keys_home, "the minister knew")))
    bundle = write_bundle(tmp_path / "in.bundle", key, entries)
    with loop_mounted(tmp_path, 160 * MIB) as disk:
        filler = disk / "filler"
        for round_ in range(ROUNDS):
            home = make_home(disk / f"home-{round_}")
            pin(home, key)
            # Room for a third of the envelopes (the check keeps a margin of 64 MiB beyond
            # them, receive.FREE_SPACE_MARGIN): the check before the import refuses.
            fill(filler)
            os.truncate(filler, filler.stat().st_size - 12 * MIB)
            unlocked = open_home(home)
            try:
                with pytest.raises(StationError, match="not enough free space"):
                    import_bundle(unlocked, bundle, today=TODAY, now=NOW)
            finally:
                unlocked.lock()
            nothing_imported(home)

            # The same space, but the check is told there is plenty (the disk filled after
            # it): the direct writes themselves meet the full disk.
            monkeypatch.setattr(shutil, "disk_usage", plenty_free)
            unlocked = open_home(home)
            try:
                with pytest.raises(OSError, match="No space left on device") as failed:
                    import_bundle(unlocked, bundle, today=TODAY, now=NOW)
                assert failed.value.errno == errno.ENOSPC
            finally:
                unlocked.lock()
                monkeypatch.undo()
            nothing_imported(home)

            # Space again: everything arrives, byte for byte.
            filler.unlink()
            unlocked = open_home(home)
            try:
                result = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
                assert (result.imported, result.undecryptable) == (4, 0)
                with unlocked.store.session() as session:
                    items = {i.server_id: i for i in session.scalars(select(Item))}
                    assert ledger.verify(session, unlocked.layout.ledger_head).ok
                for entry, (_, plaintext_sha256) in zip(entries, files, strict=False):
                    item = items[entry.id]
                    stored = unlocked.layout.envelopes / item.envelope_name
                    assert stored.read_bytes() == entry.envelope
                    assert item.plaintext_sha256 == plaintext_sha256.hex()
            finally:
                unlocked.lock()
            shutil.rmtree(home)  # the space it took is the next round's
