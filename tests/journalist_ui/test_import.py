"""Importing inbound bundles: what is stored, idempotency, atomicity, refusals."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text

from crypto import KeyKind, Kind, PrivateKey, seal_bytes
from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Import, Item, LedgerRecord, Source
from journalist_ui.unlock import Unlocked
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    file,
    message,
    open_home,
    server_key,
    write_bundle,
)

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def counts(unlocked: Unlocked) -> dict[str, int | None]:
    with unlocked.store.session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Source, Item, Import, LedgerRecord)
        }


def test_import_stores_envelopes_and_what_they_hold(home, server, tmp_path):
    alpha, beta = FakeSource(), FakeSource()
    secret_file = os.urandom(200_000)
    stranger = PrivateKey.generate(KeyKind.ENCRYPTION, "someone else")
    entries = [
        Entry("1", alpha, "message", message(home, "the minutes of the meeting")),
        Entry("2", alpha, "file", file(home, secret_file, "minutes.pdf")),
        Entry("3", beta, "message", seal_bytes(b"lost", [stranger.public.key], Kind.MESSAGE)),
    ]
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    seen = []
    unlocked = open_home(home)
    try:
        result = import_bundle(
            unlocked, bundle, today=TODAY, now=NOW, progress=lambda a, b: seen.append((a, b))
        )
        assert (result.imported, result.already_present, result.sources_new) == (3, 0, 2)
        assert result.undecryptable == 1
        assert seen
        assert seen[-1][0] == seen[-1][1]
        with unlocked.store.session() as session:
            items = {i.server_id: i for i in session.scalars(select(Item))}
            sources = session.scalars(select(Source)).all()
            hits = session.execute(
                text("SELECT item_id FROM message_fts WHERE message_fts MATCH 'minutes'")
            ).all()
            report = ledger.verify(session, unlocked.layout.ledger_head)
            records = session.scalars(select(LedgerRecord)).all()
        assert {s.source_id for s in sources} == {alpha.source_id.hex(), beta.source_id.hex()}
        assert len({s.designation for s in sources}) == 2
        assert items["1"].kind == "message"
        assert items["1"].decryptable
        assert [h[0] for h in hits] == [items["1"].id]
        assert items["2"].filename == "minutes.pdf"
        assert items["2"].media_type == "application/pdf"
        assert items["2"].plaintext_size == len(secret_file)
        assert items["3"].decryptable is False
        assert items["3"].plaintext_sha256 is None
        assert items["3"].key_ids == stranger.key_id.hex()
        assert items["1"].key_ids == unlocked.encryption_keys[0].key_id.hex()
        for entry in entries:
            stored = unlocked.layout.envelopes / items[entry.id].envelope_name
            assert stored.read_bytes() == entry.envelope
            assert stored.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in unlocked.layout.envelopes.iterdir()) == sorted(
            i.envelope_name for i in items.values()
        )
        assert report.ok
        assert report.count == 3
        assert [r.event for r in records] == ["import"] * 3
        assert records[0].hour == "2026-11-24T10"
    finally:
        unlocked.lock()
    # No plaintext at rest outside the encrypted database.
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"minutes of the meeting" not in data, path
            assert secret_file[:4096] not in data, path


def test_a_second_import_adds_nothing(home, server, tmp_path):
    source = FakeSource()
    entries = [Entry("7", source, "message", message(home, "once"))]
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    unlocked = open_home(home)
    try:
        import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        before = counts(unlocked)
        files = sorted(unlocked.layout.envelopes.iterdir())
        again = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert (again.imported, again.already_present) == (0, 1)
        assert counts(unlocked) == before
        assert sorted(unlocked.layout.envelopes.iterdir()) == files
        # Another bundle repeating the same item (not yet acknowledged) skips it.
        more = [*entries, Entry("8", source, "message", message(home, "twice"))]
        second = write_bundle(tmp_path / "second.bundle", server, more, made=date(2026, 11, 22))
        result = import_bundle(unlocked, second, today=TODAY, now=NOW)
        assert (result.imported, result.already_present, result.sources_new) == (1, 1, 0)
    finally:
        unlocked.lock()


def test_an_unpinned_server_is_refused(home, tmp_path):
    bundle = write_bundle(tmp_path / "in.bundle", server_key(), [])
    unlocked = open_home(home)
    try:
        with pytest.raises(StationError, match="no server key is pinned"):
            import_bundle(unlocked, bundle, today=TODAY, now=NOW)
    finally:
        unlocked.lock()


def test_a_failure_while_recording_leaves_nothing(home, server, tmp_path, monkeypatch):
    entries = [
        Entry(str(n), FakeSource(), "message", message(home, f"message {n}")) for n in range(3)
    ]
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    unlocked = open_home(home)
    try:
        before = counts(unlocked)

        def failing(self: ledger.Appender) -> None:
            raise OSError("disk gone")

        monkeypatch.setattr(ledger.Appender, "flush", failing)
        with pytest.raises(OSError, match="disk gone"):
            import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        monkeypatch.undo()
        assert counts(unlocked) == before
        assert list(unlocked.layout.envelopes.iterdir()) == []
        assert not unlocked.layout.ledger_head.exists()
        # Nothing blocks a later, successful import of the same bundle.
        assert import_bundle(unlocked, bundle, today=TODAY, now=NOW).imported == 3
    finally:
        unlocked.lock()


def test_temporaries_of_a_killed_import_are_swept(home, server, tmp_path):
    unlocked = open_home(home)
    try:
        leftover = unlocked.layout.envelopes / ".import-0123.tmp"
        leftover.write_bytes(b"half an envelope")
        bundle = write_bundle(tmp_path / "in.bundle", server, [])
        import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert not leftover.exists()
    finally:
        unlocked.lock()


def test_an_envelope_that_is_not_one_is_kept_as_undecryptable(home, server, tmp_path):
    real = message(home, "a real one")
    garbage = os.urandom(len(real))  # a valid envelope length, but no envelope
    entries = [Entry("1", FakeSource(), "message", garbage)]
    unlocked = open_home(home)
    try:
        result = import_bundle(
            unlocked, write_bundle(tmp_path / "b", server, entries), today=TODAY, now=NOW
        )
        assert (result.imported, result.undecryptable) == (1, 1)
        with unlocked.store.session() as session:
            item = session.scalars(select(Item)).one()
        assert (item.decryptable, item.key_ids) == (False, "")
        assert (unlocked.layout.envelopes / item.envelope_name).read_bytes() == garbage
    finally:
        unlocked.lock()
