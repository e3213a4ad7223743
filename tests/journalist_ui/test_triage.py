"""Triage use cases against a real (SQLCipher) station store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from journalist_ui import triage
from journalist_ui.errors import StationError
from journalist_ui.outbound.deletions import queue_deletion
from journalist_ui.store.models import Read, Source
from tests.journalist_ui.storekit import make_home, open_home
from tests.journalist_ui.webkit import DAY, add_item, add_source

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def unlocked(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("triage") / "home")
    opened = open_home(home)
    with opened.store.session() as session:
        a = add_source(session, "amber otter", day=DAY - timedelta(days=3))
        b = add_source(session, "brisk heron", starred=True, status="verified")
        c = add_source(session, "calm lynx", assigned_to="alice")
        add_item(opened, session, a, "message", b"the mayor took the money")
        add_item(
            opened,
            session,
            a,
            "file",
            b"%PDF-1.7 ledger",
            filename="ledger.pdf",
            media_type="application/pdf",
        )
        add_item(opened, session, b, "message", b"same words twice", day=DAY)
        add_item(opened, session, c, "message", b"same words twice", day=DAY + timedelta(days=1))
        add_item(
            opened, session, c, "reply", b"thank you, we are reading", day=DAY + timedelta(days=2)
        )
    yield opened
    opened.lock()


def pks(session: Session, *names: str) -> list[int]:
    return [session.scalars(select(Source.id).where(Source.designation == n)).one() for n in names]


def test_source_list_counts_and_default_sort(unlocked):
    with unlocked.store.session() as session:
        page = triage.list_sources(session, "alice")
    assert page.total == 3
    assert [r.designation for r in page.rows] == ["calm lynx", "brisk heron", "amber otter"]
    amber = page.rows[2]
    assert (amber.messages, amber.files, amber.replies, amber.unread) == (1, 1, 0, 2)
    lynx = page.rows[0]
    assert (lynx.messages, lynx.replies, lynx.unread) == (1, 1, 1)
    assert lynx.last_day == DAY + timedelta(days=2)


def test_filters(unlocked):
    with unlocked.store.session() as session:

        def names(**kwargs: Any) -> list[str]:
            listing = triage.list_sources(session, "alice", filters=triage.SourceFilter(**kwargs))
            return sorted(r.designation for r in listing.rows)

        assert names(starred=True) == ["brisk heron"]
        assert names(status="verified") == ["brisk heron"]
        assert names(assigned_to="alice") == ["calm lynx"]
        assert names(assigned_to="") == ["amber otter", "brisk heron"]
        assert names(designation="HER") == ["brisk heron"]
        assert names(designation="%") == []
        assert names(unread=True) == ["amber otter", "brisk heron", "calm lynx"]


def test_sorts_and_pages(unlocked):
    with unlocked.store.session() as session:
        by_name = triage.list_sources(session, "alice", sort=triage.Sort.DESIGNATION)
        assert [r.designation for r in by_name.rows] == ["amber otter", "brisk heron", "calm lynx"]
        by_unread = triage.list_sources(session, "alice", sort=triage.Sort.UNREAD)
        assert by_unread.rows[0].designation == "amber otter"
        by_status = triage.list_sources(session, "alice", sort=triage.Sort.STATUS)
        assert by_status.rows[-1].designation == "brisk heron"  # verified comes after new
        second = triage.list_sources(
            session, "alice", sort=triage.Sort.DESIGNATION, page=2, page_size=2
        )
        assert [r.designation for r in second.rows] == ["calm lynx"]
        assert (second.total, second.pages) == (3, 2)


def test_read_state_is_per_journalist(unlocked):
    with unlocked.store.session() as session:
        (amber,) = pks(session, "amber otter")
        convo = triage.conversation(session, "alice", amber)
        ids = [i.id for i in convo.items]
        assert triage.mark_read(session, "alice", ids) == 2
        assert triage.mark_read(session, "alice", ids) == 0
        assert triage.get_source(session, "alice", amber).unread == 0
        assert triage.get_source(session, "bob", amber).unread == 2
        assert triage.mark_read(session, "alice", ids[:1], read=False) == 1
        assert triage.get_source(session, "alice", amber).unread == 1
        triage.mark_read(session, "alice", ids, read=False)
        assert session.scalar(select(Read).where(Read.journalist == "alice")) is None


def test_star_status_assign_and_errors(unlocked):
    with unlocked.store.session() as session:
        amber, heron = pks(session, "amber otter", "brisk heron")
        assert triage.set_starred(session, [amber, heron], True) == 2
        assert triage.set_status(session, [amber], "in review") == 1
        assert triage.assign(session, [amber], "alice", ["alice", "bob"]) == 1
        row = triage.get_source(session, "alice", amber)
        assert (row.starred, row.status, row.assigned_to) == (True, "in review", "alice")
        with pytest.raises(StationError, match="unknown status 'secret'"):
            triage.set_status(session, [amber], "secret")
        with pytest.raises(StationError, match="no journalist 'mallory'"):
            triage.assign(session, [amber], "mallory", ["alice"])
        with pytest.raises(StationError, match="no longer exist"):
            triage.set_starred(session, [amber, 99999], True)
        with pytest.raises(StationError, match="no source selected"):
            triage.set_starred(session, [], True)
        triage.bulk(session, "alice", [amber, heron], triage.BulkAction.UNSTAR)
        triage.bulk(session, "alice", [amber], triage.BulkAction.STATUS, "new")
        triage.bulk(session, "alice", [amber], triage.BulkAction.ASSIGN, "", ["alice"])
        row = triage.get_source(session, "alice", amber)
        assert (row.starred, row.status, row.assigned_to) == (False, "new", None)
        triage.set_starred(session, [heron], True)


def test_bulk_read_marks_every_item_of_the_sources(unlocked):
    with unlocked.store.session() as session:
        amber, lynx = pks(session, "amber otter", "calm lynx")
        triage.bulk(session, "alice", [amber, lynx], triage.BulkAction.READ)
        assert triage.get_source(session, "alice", amber).unread == 0
        assert triage.get_source(session, "alice", lynx).unread == 0
        triage.bulk(session, "alice", [amber, lynx], triage.BulkAction.UNREAD)
        assert triage.get_source(session, "alice", amber).unread == 2


def test_notes(unlocked):
    with unlocked.store.session() as session:
        (amber,) = pks(session, "amber otter")
        note = triage.add_note(session, amber, "alice", "  call back monday  ", date(2026, 11, 21))
        assert triage.conversation(session, "alice", amber).notes[-1].text == "call back monday"
        with pytest.raises(StationError, match="the note is empty"):
            triage.add_note(session, amber, "alice", "   ", DAY)
        with pytest.raises(StationError, match="at most"):
            triage.add_note(session, amber, "alice", "x" * (triage.MAX_NOTE_CHARS + 1), DAY)
        with pytest.raises(StationError, match="only the author"):
            triage.delete_note(session, note.id, "bob")
        triage.delete_note(session, note.id, "alice")
        assert triage.conversation(session, "alice", amber).notes == []


def test_conversation_shows_duplicates(unlocked):
    with unlocked.store.session() as session:
        heron, lynx = pks(session, "brisk heron", "calm lynx")
        convo = triage.conversation(session, "alice", lynx)
        kinds = [(i.kind, i.duplicates) for i in convo.items]
        assert kinds == [("message", 1), ("reply", 0)]
        groups = triage.duplicates(session)
        assert len(groups) == 1
        assert groups[0].sources == 2
        assert sorted(designation for _, _, designation, _, _ in groups[0].items) == [
            "brisk heron",
            "calm lynx",
        ]
        assert heron != lynx


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("mayor", '("mayor")'),
        ("Mayors money", '("mayor" OR "mayors") AND ("money")'),
        ('say "hi"', '("say") AND ("hi")'),
        # FTS5 syntax is words (quoted); a trailing * is a prefix search.
        ("NEAR(a b) OR x*", '("near") AND ("a") AND ("b") AND ("or") AND "x"*'),
    ],
)
def test_fts_query_quotes_every_word(typed, expected):
    assert triage.fts_query(typed) == expected


def test_fts_query_refuses_empty_and_long():
    with pytest.raises(StationError, match="type a word"):
        triage.fts_query("   ")
    with pytest.raises(StationError, match="at most 200"):
        triage.fts_query("a" * 201)


def test_search(unlocked):
    with unlocked.store.session() as session:
        hits = triage.search(session, "MAYOR money")
        assert [h.designation for h in hits] == ["amber otter"]
        assert triage.MATCH_START + "mayor" + triage.MATCH_END in hits[0].snippet
        assert len(triage.search(session, "same twice")) == 2
        assert [h.kind for h in triage.search(session, "reading")] == ["reply"]
        assert triage.search(session, "mayor bribe") == []
        # FTS5 syntax typed by a journalist is searched as words, never an error.
        assert triage.search(session, 'NEAR( " * OR AND :') == []


def test_deleted_sources_are_hidden(unlocked):
    with unlocked.store.session() as session:
        (heron,) = pks(session, "brisk heron")
        session.get(Source, heron).deleted = True
        session.flush()
        names = [r.designation for r in triage.list_sources(session, "alice").rows]
        assert "brisk heron" not in names
        assert [h.designation for h in triage.search(session, "same")] == ["calm lynx"]
        assert triage.duplicates(session) == []
        with pytest.raises(StationError):
            triage.get_source(session, "alice", heron)
        session.rollback()


def test_statuses_are_configurable(unlocked):
    with unlocked.store.session() as session:
        assert triage.statuses(session)[:2] == ["new", "in review"]
        assert triage.add_status(session, "  Needs   Lawyer ") == "needs lawyer"
        assert triage.statuses(session)[-1] == "needs lawyer"
        with pytest.raises(StationError, match="exists already"):
            triage.add_status(session, "needs lawyer")
        with pytest.raises(StationError, match="1 to 40 printable"):
            triage.add_status(session, "x" * 41)
        triage.move_status(session, "needs lawyer", -1)
        assert triage.statuses(session)[-2:] == ["needs lawyer", "closed"]
        (amber,) = pks(session, "amber otter")
        triage.set_status(session, [amber], "needs lawyer")
        with pytest.raises(StationError, match="1 source has the status 'needs lawyer'"):
            triage.remove_status(session, "needs lawyer")
        assert ("needs lawyer", 1) in triage.status_counts(session)
        triage.set_status(session, [amber], "new")
        triage.remove_status(session, "needs lawyer")
        assert "needs lawyer" not in triage.statuses(session)
        with pytest.raises(StationError, match="no status"):
            triage.remove_status(session, "needs lawyer")


def test_the_header_unread_count_stops_at_its_cap(unlocked):
    with unlocked.store.session() as session:
        total = triage.journalists_unread(session, "alice", cap=10**6)
        assert total >= 3
        assert triage.journalists_unread(session, "alice", cap=2) == 2
        assert triage.journalists_unread(session, "alice", cap=total + 5) == total


def _unread_by_scan(session: Session, journalist: str) -> int:
    """The header's count as it was: every incoming item without a read mark, counted."""
    return int(
        session.execute(
            text(
                "SELECT count(*) FROM items AS i JOIN sources AS s ON s.id = i.source_pk "
                "WHERE i.direction = 'in' AND s.deleted = 0 AND NOT EXISTS (SELECT 1 FROM "
                "reads AS r WHERE r.item_id = i.id AND r.journalist = :j)"
            ),
            {"j": journalist},
        ).scalar_one()
    )


def test_the_unread_count_follows_reads_marks_and_deletions(tmp_path):
    """The header's count comes from tallies kept by triggers; it matches a full count after
    each change: items in and out, read and unread marks (also of replies), deletions."""
    opened = open_home(make_home(tmp_path / "home"))
    try:

        def check() -> None:
            with opened.store.session() as session:
                for journalist in ("alice", "bob"):
                    expected = _unread_by_scan(session, journalist)
                    assert triage.journalists_unread(session, journalist) == expected
                listed = session.scalar(text("SELECT count(*) FROM sources WHERE deleted = 0"))
                assert triage.list_sources(session, "alice").total == listed

        with opened.store.session() as session:
            a = add_source(session, "amber otter")
            b = add_source(session, "brisk heron")
            first = add_item(opened, session, a, "message", b"one").id
            add_item(opened, session, a, "file", b"%PDF-1.7", filename="a.pdf")
            add_item(opened, session, a, "reply", b"thanks")
            add_item(opened, session, b, "message", b"two")
            source_a, source_b = a.id, b.id
        check()
        with opened.store.session() as session:
            assert triage.journalists_unread(session, "alice") == 3
            triage.mark_read(session, "alice", [first])
            triage.mark_source_read(session, "bob", [source_a], read=True)  # with the reply
        check()
        with opened.store.session() as session:
            assert triage.journalists_unread(session, "bob") == 1
            triage.mark_read(session, "alice", [first], read=False)
            triage.mark_read(session, "alice", [first])
            assert triage.journalists_unread(session, "alice", cap=1) == 1
        check()
        queue_deletion(opened, scope="source", source_pk=source_b, today=DAY, now=NOW)
        check()
        queue_deletion(opened, scope="item", source_pk=source_a, item_id=first, today=DAY, now=NOW)
        check()
        with opened.store.session() as session:
            assert triage.journalists_unread(session, "alice") == 1
            assert triage.journalists_unread(session, "bob") == 0
            assert triage.list_sources(session, "alice").total == 1
            # A source deleted and then heard from again (an import) is listed again.
            session.execute(text("UPDATE sources SET deleted = 0 WHERE id = :id"), {"id": source_b})
        check()
    finally:
        opened.lock()
