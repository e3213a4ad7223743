"""The import's single pass: small envelopes decrypted from memory, large ones written by the
spool thread and decrypted from their files; its failures and a kill during the publish step
leave nothing behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from journalist_ui import importer, ledger
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Import, Item, LedgerRecord
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    file,
    message,
    open_home,
    write_bundle,
)
from tests.support.cli import REPO_ROOT

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.fixture
def small_limits(monkeypatch):
    """Limits small enough that a test bundle takes every path: large envelopes written in
    several batches by the spool, small ones held in memory until the budget is spent."""
    monkeypatch.setattr(importer, "IN_MEMORY_MAX", 8192)
    monkeypatch.setattr(importer, "WRITE_BATCH", 50_000)
    monkeypatch.setattr(importer, "HELD_MAX", 3 * 2048)
    monkeypatch.setattr(importer, "SPOOL_BACKLOG", 10_000)


@pytest.fixture(params=[False, True], ids=["wait", "decrypt-while-waiting"])
def while_waiting(request, monkeypatch):
    monkeypatch.setattr(importer, "DECRYPT_WHILE_WAITING", request.param)
    return request.param


def mixed_entries(home) -> tuple[list[Entry], dict[str, bytes]]:
    source = FakeSource()
    contents = {str(n): os.urandom(30_000 + 7_000 * n) for n in range(1, 4)}
    entries = [Entry(key, source, "file", file(home, value)) for key, value in contents.items()]
    for n in range(4, 12):
        text = f"message number {n}"
        contents[str(n)] = text.encode()
        entries.append(Entry(str(n), source, "message", message(home, text)))
    return entries, contents


def test_every_path_stores_the_same_bytes_and_hashes(
    home, server, tmp_path, small_limits, while_waiting, monkeypatch
):
    entries, contents = mixed_entries(home)
    # Messages first (held in memory), then files: with the spool held up on its first
    # write, the files fill its backlog and the calling thread decrypts held messages.
    entries = entries[3:] + entries[:3]
    decrypted_early = []
    early = threading.Event()
    real_decrypt, real_append = importer._Receiving.decrypt_one, importer._SpoolSink._append

    def counting(self):
        busy = real_decrypt(self)
        decrypted_early.append(busy)
        if busy:
            early.set()
        return busy

    def held_up(self, parts):
        if while_waiting:
            early.wait(timeout=60)
        real_append(self, parts)

    monkeypatch.setattr(importer._Receiving, "decrypt_one", counting)
    monkeypatch.setattr(importer._SpoolSink, "_append", held_up)
    assert any(len(e.envelope) > importer.IN_MEMORY_MAX for e in entries)
    assert sum(len(e.envelope) for e in entries if e.kind == "message") > importer.HELD_MAX
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    unlocked = open_home(home)
    try:
        result = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert (result.imported, result.undecryptable) == (11, 0)
        with unlocked.store.session() as session:
            items = {i.server_id: i for i in session.scalars(select(Item))}
            assert ledger.verify(session, unlocked.layout.ledger_head).ok
        for entry in entries:
            item = items[entry.id]
            stored = unlocked.layout.envelopes / item.envelope_name
            assert stored.read_bytes() == entry.envelope
            assert stored.stat().st_mode & 0o777 == 0o600
            assert item.plaintext_sha256 == hashlib.sha256(contents[entry.id]).hexdigest()
            assert item.plaintext_size == len(contents[entry.id])
        assert sorted(p.name for p in unlocked.layout.envelopes.iterdir()) == sorted(
            i.envelope_name for i in items.values()
        )
        assert not (unlocked.layout.store / importer.PUBLISHING).exists()
        assert any(decrypted_early) is while_waiting
    finally:
        unlocked.lock()


def test_a_write_failing_in_the_spool_thread_leaves_nothing(
    home, server, tmp_path, small_limits, monkeypatch
):
    entries, _ = mixed_entries(home)
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    calls = []

    def failing(self, parts):
        calls.append(len(parts))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importer._SpoolSink, "_append", failing)
    unlocked = open_home(home)
    try:
        with pytest.raises(OSError, match="No space left"):
            import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert calls  # the failure happened in the spool, not before
        assert list(unlocked.layout.envelopes.iterdir()) == []
        with unlocked.store.session() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == 0
            assert session.scalar(select(func.count()).select_from(LedgerRecord)) == 0
        monkeypatch.undo()
        assert import_bundle(unlocked, bundle, today=TODAY, now=NOW).imported == 11
    finally:
        unlocked.lock()


def test_a_bundle_already_imported_writes_no_file(home, server, tmp_path, monkeypatch):
    entries, _ = mixed_entries(home)
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    unlocked = open_home(home)
    try:
        import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        before = sorted(p.name for p in unlocked.layout.envelopes.iterdir())
        created = []
        real = importer._SpoolSink._create

        def counting(self):
            created.append(self.item.id)
            real(self)

        monkeypatch.setattr(importer._SpoolSink, "_create", counting)
        again = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert (again.imported, again.already_present) == (0, 11)
        assert created == []
        assert sorted(p.name for p in unlocked.layout.envelopes.iterdir()) == before
        # A different bundle with an item already present does write (and then drops) it.
        other = write_bundle(tmp_path / "other.bundle", server, entries[:2])
        assert import_bundle(unlocked, other, today=TODAY, now=NOW).already_present == 2
        assert len(created) == 2
        assert sorted(p.name for p in unlocked.layout.envelopes.iterdir()) == before
    finally:
        unlocked.lock()


KILLER = """
import os, signal, sys
from datetime import date
from pathlib import Path
from journalist_ui import importer
from tests.journalist_ui.storekit import open_home

renamed = []
real = os.rename

def rename_then_die(src, dst):
    real(src, dst)
    renamed.append(dst)
    if len(renamed) == 3:
        os.kill(os.getpid(), signal.SIGKILL)

importer.os.rename = rename_then_die
unlocked = open_home(Path(sys.argv[1]))
importer.import_bundle(unlocked, Path(sys.argv[2]), today=date(2026, 11, 24))
"""


@pytest.mark.timeout(120)
def test_a_kill_during_the_publish_step_is_undone_by_the_next_import(home, server, tmp_path):
    entries, _ = mixed_entries(home)
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLER), str(home), str(bundle)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    envelopes = home / "store" / "envelopes"
    published = [p.name for p in envelopes.iterdir() if not p.name.startswith(".")]
    assert len(published) == 3  # killed with three files under their final names
    marker = home / "store" / importer.PUBLISHING
    assert set(published) <= set(marker.read_text().split())
    assert not (home / "ledger.head").exists()

    unlocked = open_home(home)
    try:
        with unlocked.store.session() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == 0
            assert session.scalar(select(func.count()).select_from(Import)) == 0
        result = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert result.imported == 11
        with unlocked.store.session() as session:
            names = set(session.scalars(select(Item.envelope_name)))
            assert ledger.verify(session, unlocked.layout.ledger_head).ok
        assert {p.name for p in envelopes.iterdir()} == names
        assert not set(published) & names
        assert not marker.exists()
    finally:
        unlocked.lock()


def test_a_publish_marker_left_after_a_commit_removes_nothing(home, server, tmp_path):
    entries, _ = mixed_entries(home)
    unlocked = open_home(home)
    try:
        import_bundle(
            unlocked, write_bundle(tmp_path / "a", server, entries[:5]), today=TODAY, now=NOW
        )
        with unlocked.store.session() as session:
            names = set(session.scalars(select(Item.envelope_name)))
        # As if the station died between the commit and the marker's removal, plus a name
        # of garbage and one no item has (an orphan of the interrupted publish).
        orphan = unlocked.layout.envelopes / ("ab" * 16)
        orphan.write_bytes(b"orphan")
        marker = unlocked.layout.store / importer.PUBLISHING
        marker.write_text("\n".join([*sorted(names), "../../escape", orphan.name]) + "\n")
        import_bundle(
            unlocked, write_bundle(tmp_path / "b", server, entries[5:]), today=TODAY, now=NOW
        )
        assert not orphan.exists()
        assert not marker.exists()
        with unlocked.store.session() as session:
            all_names = set(session.scalars(select(Item.envelope_name)))
        assert names < all_names
        assert {p.name for p in unlocked.layout.envelopes.iterdir()} == all_names
    finally:
        unlocked.lock()
