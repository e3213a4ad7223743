"""Items imported by a journalist who could not open them, opened by one who can
(journalist_ui/reopen.py): a real store, real envelopes, a real import, the web UI's unlock
page and the command line."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from crypto import Kind, seal_bytes
from crypto.keys import x25519_public
from journalist_ui import content, keys, ledger
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.reopen import reopen_items
from journalist_ui.store.models import Item, LedgerRecord
from journalist_ui.triage import search
from journalist_ui.unlock import unlock
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    make_home,
    pin,
    recipients,
    server_key,
    write_bundle,
)
from tests.journalist_ui.webkit import Clock, WebClient, make_app
from tests.support.cli import BIN, MEMLIMIT, PASSPHRASE

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
BOB = "bob's very own passphrase"
REPORT = b"%PDF-1.7 the quarterly accounts, as they really were"


@pytest.fixture
def station_home(tmp_path: Path) -> Path:
    """alice and bob; alice imports two items sealed to bob only, one sealed to the station's
    keyring (both of them) and one sealed to a key nobody here holds."""
    home = make_home(tmp_path / "home")

    def ask(what: str) -> str:
        return BOB if what == "journalist bob's keys" else PASSPHRASE

    keys.add_journalist(home, "bob", ask, ask, now=NOW, memlimit=MEMLIMIT)
    bob = unlock(home, "bob", BOB)
    bob_key = bob.encryption_keys[0].public.key
    bob.lock()
    stranger = hashlib.sha256(b"a key nobody on this station holds").digest()
    source = FakeSource()
    entries = [
        Entry("1", source, "message", seal_bytes(b"for bob: the minutes", [bob_key], Kind.MESSAGE)),
        Entry(
            "2",
            source,
            "file",
            seal_bytes(REPORT, [bob_key], Kind.FILE, "accounts.pdf", "application/pdf"),
        ),
        Entry("3", source, "message", seal_bytes(b"for everyone", recipients(home), Kind.MESSAGE)),
        Entry(
            "4",
            source,
            "message",
            seal_bytes(b"for nobody here", [x25519_public(stranger)], Kind.MESSAGE),
        ),
    ]
    server = server_key()
    pin(home, server)
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    alice = unlock(home, "alice", PASSPHRASE)
    try:
        result = import_bundle(alice, bundle, today=date(2026, 11, 24), now=NOW)
    finally:
        alice.lock()
    assert (result.imported, result.undecryptable) == (4, 3)
    return home


def _items(home: Path) -> dict[str, Item]:
    unlocked = unlock(home, "alice", PASSPHRASE)
    try:
        with unlocked.store.session() as session:
            rows = session.scalars(select(Item)).all()
            session.expunge_all()
    finally:
        unlocked.lock()
    return {str(item.server_id): item for item in rows}


def test_the_journalist_who_holds_the_key_opens_them(station_home: Path) -> None:
    home = station_home
    alice = unlock(home, "alice", PASSPHRASE)
    try:
        assert reopen_items(alice, now=NOW) == 0  # none of them is sealed to alice
    finally:
        alice.lock()
    assert {sid for sid, item in _items(home).items() if not item.decryptable} == {"1", "2", "4"}

    bob = unlock(home, "bob", BOB)
    try:
        with bob.store.session() as session:
            ids = {i.server_id: i.id for i in session.scalars(select(Item))}
        with pytest.raises(StationError, match="cannot be decrypted with this station's keys"):
            content.read_message(bob, ids["1"], log_view=False)
        assert reopen_items(bob, now=NOW) == 2
        assert reopen_items(bob, now=NOW) == 0  # done once
        assert content.read_message(bob, ids["1"], log_view=False) == "for bob: the minutes"
        with bob.store.session() as session:
            hits = search(session, "minutes")
            records = session.scalars(
                select(LedgerRecord)
                .where(LedgerRecord.event == "reopen")
                .order_by(LedgerRecord.seq)
            ).all()
            report = ledger.verify(session, bob.layout.ledger_head)
    finally:
        bob.lock()
    assert [hit.item_id for hit in hits] == [ids["1"]]
    assert [(r.journalist, r.item_ref) for r in records] == [
        ("bob", str(ids["1"])),
        ("bob", str(ids["2"])),
    ]
    assert records[1].sha256 == hashlib.sha256(REPORT).hexdigest()
    assert report.ok, report.problem

    items = _items(home)
    file = items["2"]
    assert (file.decryptable, file.kind, file.filename, file.media_type) == (
        True,
        "file",
        "accounts.pdf",
        "application/pdf",
    )
    assert (file.plaintext_size, file.plaintext_sha256) == (
        len(REPORT),
        hashlib.sha256(REPORT).hexdigest(),
    )
    assert not items["4"].decryptable  # sealed to nobody here: stays as it was
    assert items["4"].plaintext_sha256 is None

    # Alice now sees them listed, and is told why she cannot read them (not "damaged").
    alice = unlock(home, "alice", PASSPHRASE)
    try:
        with pytest.raises(StationError, match=r"is not sealed to your keys .*keys rewrap"):
            content.read_message(alice, ids["1"], log_view=False)
        with pytest.raises(StationError, match="is not sealed to your keys"):
            content.open_file(alice, ids["2"], log_view=False)
    finally:
        alice.lock()


def test_unlocking_in_the_web_ui_reopens_them_and_says_so(station_home: Path) -> None:
    app = make_app(station_home, Clock(NOW))
    bob = WebClient(app)
    bob.get("/unlock")
    page = bob.post("/unlock", {"journalist": "bob", "passphrase": BOB}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "2 items that could not be decrypted when they were imported open with your keys" in (
        text
    )
    assert sum(not item.decryptable for item in _items(station_home).values()) == 1


@pytest.mark.slow
def test_every_command_that_unlocks_reopens_them(station_home: Path) -> None:
    done = subprocess.run(
        [str(BIN / "journalist"), "ledger", "verify", "--home", str(station_home),
         "--journalist", "bob", "--passphrase-fd", "0"],
        input=BOB + "\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 item(s) that could not be decrypted when they were imported" in done.stderr
    assert sum(not item.decryptable for item in _items(station_home).values()) == 1
