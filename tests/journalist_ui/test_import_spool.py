"""The import's single pass: small envelopes decrypted from memory, large ones written by the
spool thread and decrypted as they stream, never read back (journalist_ui/importer/spool.py);
its failures leave nothing behind."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text

from crypto import KeyKind, Kind, PrivateKey, RecipientKeys, open_envelope, seal_bytes
from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.importer import contents, import_bundle, publish, spool
from journalist_ui.store.models import Item, LedgerRecord
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    file,
    message,
    open_home,
    write_bundle,
)

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.fixture
def small_limits(monkeypatch):
    """Limits small enough that a test bundle takes every path: large envelopes written in
    several batches by the spool, small ones held in memory until the budget is spent."""
    monkeypatch.setattr(spool, "IN_MEMORY_MAX", 8192)
    monkeypatch.setattr(spool, "WRITE_BATCH", 50_000)
    monkeypatch.setattr(spool, "HELD_MAX", 3 * 2048)
    monkeypatch.setattr(spool, "SPOOL_BACKLOG", 10_000)


@pytest.fixture(params=[False, True], ids=["wait", "decrypt-while-waiting"])
def while_waiting(request, monkeypatch):
    monkeypatch.setattr(spool, "DECRYPT_WHILE_WAITING", request.param)
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
    real_decrypt, real_append = spool.Receiving.decrypt_one, spool.SpoolSink._append

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

    monkeypatch.setattr(spool.Receiving, "decrypt_one", counting)
    monkeypatch.setattr(spool.SpoolSink, "_append", held_up)
    assert any(len(e.envelope) > spool.IN_MEMORY_MAX for e in entries)
    assert sum(len(e.envelope) for e in entries if e.kind == "message") > spool.HELD_MAX
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
        assert not (unlocked.layout.store / publish.PUBLISHING).exists()
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

    monkeypatch.setattr(spool.SpoolSink, "_append", failing)
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
        real = spool.SpoolSink._create

        def counting(self):
            created.append(self.item.id)
            real(self)

        monkeypatch.setattr(spool.SpoolSink, "_create", counting)
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


def test_large_envelopes_are_opened_as_they_stream_as_read_contents_would(
    home, server, tmp_path, small_limits, monkeypatch
):
    """Large envelopes are decrypted by the spool from memory as they stream (never read
    back from their files): what it learns is what read_contents learns from the stored
    file, for a large message (indexed), a file, one for another key and one that is no
    envelope."""
    source = FakeSource()
    stranger = PrivateKey.generate(KeyKind.ENCRYPTION, "someone else")
    FILE = Kind.FILE  # noqa: N806 - short, for the line below
    words = " ".join(f"harbour{n}" for n in range(3000))
    corrupt = bytearray(file(home, os.urandom(40_000)))
    corrupt[5000] ^= 1  # inside a chunk: its tag fails
    entries = [
        Entry("1", source, "message", message(home, words)),
        Entry("2", source, "file", file(home, os.urandom(30_000) + bytes(70_000), "z.bin")),
        Entry("3", source, "file", seal_bytes(os.urandom(20_000), [stranger.public.key], FILE)),
        Entry("4", source, "file", os.urandom(len(corrupt))),
        Entry("5", source, "file", bytes(corrupt)),
        Entry("6", source, "message", message(home, "a small one")),
    ]
    assert all(len(e.envelope) > spool.IN_MEMORY_MAX for e in entries[:5])
    opened_whole = []
    real_open = open_envelope

    def counting(src, keys):
        opened_whole.append(type(src).__name__)
        return real_open(src, keys)

    monkeypatch.setattr("journalist_ui.importer.contents.open_envelope", counting)
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    unlocked = open_home(home)
    try:
        result = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert (result.imported, result.undecryptable) == (6, 3)
        assert opened_whole == ["BytesIO"]  # only the small message, from memory
        monkeypatch.undo()
        with unlocked.store.session() as session:
            items = {i.server_id: i for i in session.scalars(select(Item))}
            hits = session.execute(
                text("SELECT item_id FROM message_fts WHERE message_fts MATCH 'harbour2999'")
            ).all()
        assert [h[0] for h in hits] == [items["1"].id]
        keys = RecipientKeys(unlocked.secrets)
        for entry in entries:
            item = items[entry.id]
            with (unlocked.layout.envelopes / item.envelope_name).open("rb") as stored:
                expected = contents.read_contents(stored, keys, entry.kind)
            got = (item.key_ids, item.decryptable, item.kind, item.filename, item.media_type,
                   item.plaintext_size, item.plaintext_sha256)  # fmt: skip
            assert got == (
                expected.key_ids, expected.decryptable, expected.kind, expected.filename,
                expected.media_type, expected.plaintext_size, expected.plaintext_sha256,
            )  # fmt: skip
        assert items["3"].key_ids == stranger.key_id.hex()
        assert (items["4"].key_ids, items["5"].decryptable) == ("", False)
    finally:
        unlocked.lock()


def test_a_large_envelope_that_decrypts_but_fails_its_hash_refuses_the_bundle(
    home, server, tmp_path, small_limits
):
    """A large envelope is decrypted before its SHA-256 is checked: when the check fails,
    nothing learnt from it (nor anything else of the bundle) is kept."""
    source = FakeSource()
    listed = Entry("1", source, "message", message(home, "listed " * 3000))
    sent = message(home, "ersatz " * 3000)  # as long, sealed to the journalist all the same
    assert len(sent) == len(listed.envelope) > spool.IN_MEMORY_MAX
    bundle = write_bundle(tmp_path / "in.bundle", server, [listed], envelopes=[sent])
    unlocked = open_home(home)
    try:
        with pytest.raises(StationError, match="SHA-256"):
            import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert list(unlocked.layout.envelopes.iterdir()) == []
        with unlocked.store.session() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == 0
            assert session.execute(text("SELECT count(*) FROM message_fts")).scalar() == 0
    finally:
        unlocked.lock()
