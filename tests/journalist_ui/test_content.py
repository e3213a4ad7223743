"""Decrypt on demand: messages as text, files streamed; views recorded in the ledger."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from crypto import KeyKind, Kind, PrivateKey, seal_bytes
from journalist_ui.content import open_file, read_message
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Item, LedgerRecord
from journalist_ui.unlock import Unlocked
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    file,
    message,
    open_home,
    write_bundle,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CONTENT = os.urandom(300_000)


@pytest.fixture
def items(home, server, tmp_path):
    key = server
    source = FakeSource()
    other = PrivateKey.generate(KeyKind.ENCRYPTION, "other")
    entries = [
        Entry("1", source, "message", message(home, "caf\u00e9 at noon")),
        Entry("2", source, "file", file(home, CONTENT, "scan.png", "image/png")),
        Entry("3", source, "message", seal_bytes(b"x", [other.public.key], Kind.MESSAGE)),
    ]
    unlocked = open_home(home)
    import_bundle(
        unlocked, write_bundle(tmp_path / "b", key, entries), today=date(2026, 11, 24), now=NOW
    )
    with unlocked.store.session() as session:
        ids = {i.server_id: i.id for i in session.scalars(select(Item))}
    try:
        yield unlocked, ids
    finally:
        unlocked.lock()


def views(unlocked: Unlocked) -> list[str | None]:
    with unlocked.store.session() as session:
        return [
            r.item_ref
            for r in session.scalars(select(LedgerRecord).where(LedgerRecord.event == "view"))
        ]


def test_a_message_is_decrypted_and_the_view_recorded(items):
    unlocked, ids = items
    assert read_message(unlocked, ids["1"], now=NOW) == "caf\u00e9 at noon"
    assert views(unlocked) == [str(ids["1"])]
    assert read_message(unlocked, ids["1"], log_view=False) == "caf\u00e9 at noon"
    assert views(unlocked) == [str(ids["1"])]


def test_a_file_streams_without_touching_the_disk(items, tmp_path):
    unlocked, ids = items
    before = {p: p.stat().st_size for p in unlocked.layout.home.rglob("*") if p.is_file()}
    plain = open_file(unlocked, ids["2"], now=NOW)
    assert (plain.filename, plain.media_type, plain.size) == ("scan.png", "image/png", 300_000)
    assert b"".join(plain.chunks()) == CONTENT
    after = {p for p in unlocked.layout.home.rglob("*") if p.is_file()}
    assert after == set(before)
    assert views(unlocked) == [str(ids["2"])]


def test_a_damaged_envelope_is_reported(items):
    unlocked, ids = items
    plain = open_file(unlocked, ids["2"], log_view=False)
    with unlocked.store.session() as session:
        name = session.get(Item, ids["2"]).envelope_name
    path = unlocked.layout.envelopes / name
    data = bytearray(path.read_bytes())
    data[5000] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StationError, match="no longer decrypts"):
        b"".join(plain.chunks())


def test_wrong_kinds_and_undecryptable_items_are_refused(items):
    unlocked, ids = items
    with pytest.raises(StationError, match="not a message"):
        read_message(unlocked, ids["2"])
    with pytest.raises(StationError, match="not a file"):
        open_file(unlocked, ids["1"])
    with pytest.raises(StationError, match="cannot be decrypted with this station's keys"):
        read_message(unlocked, ids["3"])
    with pytest.raises(StationError, match="no item 4242"):
        read_message(unlocked, 4242)
    assert views(unlocked) == []
