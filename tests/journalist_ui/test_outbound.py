"""Replies, deletions, acknowledgements and the signed outbound bundle."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from crypto import Algorithm, Kind, key_id, open_bytes
from crypto.bundle import (
    Deletion,
    OutboundManifest,
    OutboundReply,
    open_bundle_file,
    read_outbound_bundle,
)
from journalist_ui import ledger
from journalist_ui.content import read_message
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.outbound import export_outbound, queue_deletion, queue_reply
from journalist_ui.store.models import Item, LedgerRecord, Outgoing, Source
from journalist_ui.unlock import Unlocked
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    file,
    make_home,
    message,
    open_home,
    pin,
    server_key,
    write_bundle,
)

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


class Sink:
    def __init__(self, into: list[tuple[OutboundReply, bytes]], reply: OutboundReply) -> None:
        self.into, self.reply, self.buffer = into, reply, io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)

    def commit(self) -> None:
        self.into.append((self.reply, self.buffer.getvalue()))

    def abort(self) -> None:
        self.buffer = io.BytesIO()


def read_outbound(
    path: Path, unlocked: Unlocked
) -> tuple[OutboundManifest, list[tuple[OutboundReply, bytes]]]:
    public = unlocked.signing_key.public.key
    envelopes: list[tuple[OutboundReply, bytes]] = []
    with open_bundle_file(path) as handle:
        manifest = read_outbound_bundle(
            handle,
            {key_id(Algorithm.ED25519, public): public},
            lambda reply: Sink(envelopes, reply),
        )
    return manifest, envelopes


@pytest.fixture
def station(home, server, tmp_path):
    key = server
    alpha, beta = FakeSource(), FakeSource()
    entries = [
        Entry("10", alpha, "message", message(home, "hello from alpha")),
        Entry("11", alpha, "file", file(home, b"%PDF alpha", "a.pdf")),
        Entry("12", beta, "message", message(home, "hello from beta")),
    ]
    bundle = write_bundle(tmp_path / "in.bundle", key, entries)
    unlocked = open_home(home)
    import_bundle(unlocked, bundle, today=TODAY, now=NOW)
    try:
        yield unlocked, alpha, beta
    finally:
        unlocked.lock()


def source_pk(unlocked: Unlocked, fake: FakeSource) -> int:
    with unlocked.store.session() as session:
        pk = session.scalar(select(Source.id).where(Source.source_id == fake.source_id.hex()))
    assert pk is not None
    return pk


def test_reply_and_acknowledgements_go_out_once(station, tmp_path):
    unlocked, alpha, _beta = station
    reply = queue_reply(unlocked, source_pk(unlocked, alpha), "Thank you, we read it.", today=TODAY)
    assert read_message(unlocked, reply.id, log_view=False) == "Thank you, we read it."
    stored = (unlocked.layout.envelopes / reply.envelope_name).read_bytes()
    assert b"Thank you" not in stored
    result = export_outbound(unlocked, tmp_path / "usb", today=TODAY, now=NOW)
    assert result is not None
    assert result.path.name == f"outbound-{result.bundle_id}.bundle"
    assert (result.replies, result.deletions, result.acknowledged) == (1, 0, 3)
    manifest, envelopes = read_outbound(result.path, unlocked)
    assert sorted(manifest.acknowledged) == ["10", "11", "12"]
    assert manifest.signed_by == unlocked.signing_key.key_id
    ((entry, envelope),) = envelopes
    assert entry.source_id == alpha.source_id
    # The source opens it with its reply key; the team with its own.
    metadata, content = open_bytes(envelope, [alpha.reply.secret])
    assert (metadata.kind, content) == (Kind.REPLY, b"Thank you, we read it.")
    assert open_bytes(envelope, unlocked.secrets)[1] == content
    # Nothing is pending any more.
    assert export_outbound(unlocked, tmp_path / "usb", today=TODAY) is None
    with unlocked.store.session() as session:
        assert ledger.verify(session, unlocked.layout.ledger_head).ok
        events = [r.event for r in session.scalars(select(LedgerRecord))]
    assert events[-2:] == ["reply", "outbound"]


def test_deleting_an_item_removes_it_and_queues_the_server_deletion(station, tmp_path):
    unlocked, alpha, _ = station
    with unlocked.store.session() as session:
        item = session.scalars(select(Item).where(Item.server_id == "10")).one()
    path = unlocked.layout.envelopes / item.envelope_name
    queue_deletion(
        unlocked, scope="item", source_pk=source_pk(unlocked, alpha), item_id=item.id, today=TODAY
    )
    assert not path.exists()
    with unlocked.store.session() as session:
        assert session.get(Item, item.id) is None
        hits = session.execute(
            text("SELECT count(*) FROM message_fts WHERE message_fts MATCH 'alpha'")
        ).scalar()
        assert hits == 0
        last = session.scalars(select(LedgerRecord).order_by(LedgerRecord.seq.desc())).first()
    assert last is not None
    assert last.event == "delete"
    with pytest.raises(StationError, match=f"no item {item.id}"):
        read_message(unlocked, item.id)
    result = export_outbound(unlocked, tmp_path / "usb", today=TODAY)
    assert result is not None
    manifest, _ = read_outbound(result.path, unlocked)
    assert manifest.deletions == (Deletion("item", id="10"),)
    assert sorted(manifest.acknowledged) == ["11", "12"]


def test_deleting_a_source_removes_all_of_it(station, tmp_path):
    unlocked, alpha, _ = station
    pk = source_pk(unlocked, alpha)
    queue_reply(unlocked, pk, "a reply never sent", today=TODAY)
    before = set(unlocked.layout.envelopes.iterdir())
    queue_deletion(unlocked, scope="source", source_pk=pk, today=TODAY)
    assert len(before - set(unlocked.layout.envelopes.iterdir())) == 3
    with unlocked.store.session() as session:
        assert session.scalars(select(Item).where(Item.source_pk == pk)).all() == []
        assert session.get(Source, pk).deleted
        pending = session.scalars(select(Outgoing).where(Outgoing.bundle_id.is_(None))).all()
    assert [(o.kind, o.scope) for o in pending] == [("deletion", "source")]
    with pytest.raises(StationError, match="no source"):
        queue_reply(unlocked, pk, "too late", today=TODAY)
    result = export_outbound(unlocked, tmp_path / "usb", today=TODAY)
    assert result is not None
    manifest, envelopes = read_outbound(result.path, unlocked)
    assert manifest.deletions == (Deletion("source", source_id=alpha.source_id),)
    assert envelopes == []


def test_bad_requests_are_refused(station):
    unlocked, alpha, _ = station
    pk = source_pk(unlocked, alpha)
    with pytest.raises(StationError, match="needs some text"):
        queue_reply(unlocked, pk, "   ", today=TODAY)
    with pytest.raises(StationError, match="no source 999"):
        queue_reply(unlocked, 999, "hello", today=TODAY)
    with pytest.raises(StationError, match="names an item"):
        queue_deletion(unlocked, scope="item", source_pk=pk, today=TODAY)
    with pytest.raises(StationError, match="has no item 999"):
        queue_deletion(unlocked, scope="item", source_pk=pk, item_id=999, today=TODAY)


def test_items_a_later_bundle_repeats_are_acknowledged_again(tmp_path):
    home = make_home(tmp_path / "home")
    key = server_key()
    pin(home, key)
    source = FakeSource()
    first = Entry("20", source, "message", message(home, "first"))
    unlocked = open_home(home)
    try:
        import_bundle(unlocked, write_bundle(tmp_path / "a", key, [first]), today=TODAY, now=NOW)
        result = export_outbound(unlocked, tmp_path / "usb", today=TODAY)
        assert result is not None
        assert result.acknowledged == 1
        # That bundle never reached the server, which sends item 20 again with a new one.
        second = Entry("21", source, "message", message(home, "second"))
        again = write_bundle(tmp_path / "b", key, [first, second], made=date(2026, 11, 22))
        imported = import_bundle(unlocked, again, today=TODAY, now=NOW)
        assert (imported.imported, imported.already_present) == (1, 1)
        result = export_outbound(unlocked, tmp_path / "usb", today=TODAY)
        assert result is not None
        manifest, _ = read_outbound(result.path, unlocked)
        assert sorted(manifest.acknowledged) == ["20", "21"]
        assert export_outbound(unlocked, tmp_path / "usb", today=TODAY) is None
    finally:
        unlocked.lock()


def test_a_failed_export_leaves_no_bundle_and_everything_pending(station, tmp_path, monkeypatch):
    unlocked, alpha, _ = station
    queue_reply(unlocked, source_pk(unlocked, alpha), "pending", today=TODAY)
    real = ledger.record

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ledger, "record", failing)
    with pytest.raises(OSError, match="disk full"):
        export_outbound(unlocked, tmp_path / "usb", today=TODAY)
    monkeypatch.setattr(ledger, "record", real)
    assert list((tmp_path / "usb").iterdir()) == []
    result = export_outbound(unlocked, tmp_path / "usb", today=TODAY)
    assert result is not None
    assert (result.replies, result.acknowledged) == (1, 3)
