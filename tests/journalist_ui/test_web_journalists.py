"""Several journalists on one station in the web UI: each unlocks with their own passphrase,
read marks are per journalist, a reply shows its author to the others, the ledger names who
viewed what. Flask's test client against a real store filled by a real import."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.test import TestResponse

from crypto import open_bytes
from journalist_ui import keys, ledger, station
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Item, LedgerRecord, Read, Source
from journalist_ui.unlock import unlock
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    make_home,
    message,
    pin,
    server_key,
    write_bundle,
)
from tests.journalist_ui.webkit import Clock, WebClient, make_app
from tests.support.cli import MEMLIMIT, PASSPHRASE

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
BOB = "bob's very own passphrase"


def body(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def unread_of(page: str, designation: str) -> str:
    """The unread count in one source's row of the source list."""
    for row in re.findall(r"<tr[^>]*>.*?</tr>", page, re.S):
        if f">{designation}</a>" in row:
            found: list[str] = re.findall(r'<td class="num">(?:<strong>)?(\d+)', row)
            return found[-1]
    raise AssertionError(f"no row for {designation}")


def who(page: str) -> str:
    match = re.search(r'<span class="who">([^<]*)</span>', page)
    assert match is not None, "no journalist named on the page"
    return html.unescape(match.group(1))


@pytest.fixture
def station_home(tmp_path: Path) -> tuple[Path, FakeSource, int]:
    """alice and bob (added with `keys add-journalist`), two messages sealed to both."""
    home = make_home(tmp_path / "home")
    answers = {"journalist bob's keys": BOB}

    def ask(what: str) -> str:
        return answers.get(what, PASSPHRASE)

    keys.add_journalist(home, "bob", ask, ask, now=NOW, memlimit=MEMLIMIT)
    assert station.load_station(home).journalists == ("alice", "bob")
    server = server_key()
    pin(home, server)
    source = FakeSource()
    entries = [
        Entry("1", source, "message", message(home, "first: the minutes")),
        Entry("2", source, "message", message(home, "second: the accounts")),
    ]
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    unlocked = unlock(home, "alice", PASSPHRASE)
    try:
        result = import_bundle(unlocked, bundle, today=date(2026, 11, 24), now=NOW)
        with unlocked.store.session() as session:
            pk = session.scalars(select(Source.id)).one()
    finally:
        unlocked.lock()
    assert result.imported == 2
    return home, source, pk


def test_two_journalists_each_with_their_own_passphrase_reads_and_replies(station_home):
    home, source, pk = station_home
    app = make_app(home, Clock(NOW))
    alice, bob = WebClient(app), WebClient(app)
    # Each passphrase opens only its own journalist's keys.
    refused = bob.unlock("bob", PASSPHRASE)
    assert refused.status_code == 403
    assert "wrong passphrase" in body(refused)
    assert alice.unlock("alice", PASSPHRASE).status_code == 302
    assert bob.unlock("bob", BOB).status_code == 302
    assert who(body(alice.get("/"))) == "alice"
    assert who(body(bob.get("/"))) == "bob"
    designation = _designation(alice, pk)

    # Read state is per journalist: alice reading the conversation leaves bob's unread.
    assert unread_of(body(alice.get("/")), designation) == "2"
    page = body(alice.get(f"/sources/{pk}"))
    assert "first: the minutes" in page
    assert "second: the accounts" in page
    assert unread_of(body(alice.get("/")), designation) == "0"
    assert unread_of(body(bob.get("/")), designation) == "2"

    # Alice replies; bob sees it as hers, and his own reply as his.
    done = alice.post(f"/sources/{pk}/reply", {"text": "alice writes back"}, follow_redirects=True)
    assert "Reply sealed and queued" in body(done)
    page = body(bob.get(f"/sources/{pk}"))
    assert 'Reply by <span translate="no">alice</span>' in page
    assert "alice writes back" in page
    assert unread_of(body(bob.get("/")), designation) == "0"
    bob.post(f"/sources/{pk}/reply", {"text": "bob adds a question"})
    page = body(alice.get(f"/sources/{pk}"))
    assert page.index('Reply by <span translate="no">alice</span>') < page.index(
        'Reply by <span translate="no">bob</span>'
    )
    assert "bob adds a question" in page

    # Bob marks one message unread again: only for him.
    with alice.unlocked().store.session() as session:
        first = session.scalars(select(Item.id).where(Item.server_id == "1")).one()
    bob.post(f"/items/{first}/read", {"read": "0"})
    assert unread_of(body(bob.get("/")), designation) == "1"
    assert unread_of(body(alice.get("/")), designation) == "0"

    with alice.unlocked().store.session() as session:
        replies = session.execute(
            select(Item.author, Item.envelope_name).where(Item.direction == "out").order_by(Item.id)
        ).all()
        reads = {(j, i) for j, i in session.execute(select(Read.journalist, Read.item_id))}
        views = session.execute(
            select(LedgerRecord.journalist).where(LedgerRecord.event == "view")
        ).scalars()
        viewers = sorted(set(views))
        report = ledger.verify(session, alice.unlocked().layout.ledger_head)
    assert [author for author, _ in replies] == ["alice", "bob"]
    assert ("alice", first) in reads
    assert ("bob", first) not in reads
    assert viewers == ["alice", "bob"]
    assert report.ok, report.problem
    # Each reply is sealed to the source too: it can read both.
    envelopes = home / "store" / "envelopes"
    texts = [open_bytes((envelopes / name).read_bytes(), [source.reply.secret])[1]
             for _, name in replies]  # fmt: skip
    assert texts == [b"alice writes back", b"bob adds a question"]

    # Locking one session leaves the other open.
    alice.post("/lock")
    assert alice.get("/").status_code in (302, 303)
    assert bob.get("/").status_code == 200


def _designation(client: WebClient, pk: int) -> str:
    with client.unlocked().store.session() as session:
        return session.scalars(select(Source.designation).where(Source.id == pk)).one()
