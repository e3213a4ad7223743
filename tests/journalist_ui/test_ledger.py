"""The evidence ledger: chaining, tampering detected, the head file, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.store.models import LedgerRecord
from journalist_ui.unlock import Unlocked
from tests.journalist_ui.storekit import make_home, open_home

NOW = datetime(2026, 11, 24, 13, 45, tzinfo=UTC)


@pytest.fixture
def unlocked(tmp_path):
    home = make_home(tmp_path / "home")
    opened = open_home(home)
    with opened.store.session() as session:
        for n in range(5):
            ledger.record(
                session,
                event="view" if n % 2 else "import",
                journalist="alice",
                item_ref=str(n + 1),
                sha256=f"{n:064x}",
                detail={"source": "amber otter", "size": n},
                now=NOW + timedelta(hours=n),
            )
    ledger.update_head(opened.store, opened.layout.ledger_head)
    try:
        yield opened
    finally:
        opened.lock()


def verify(unlocked: Unlocked) -> ledger.LedgerReport:
    with unlocked.store.session() as session:
        return ledger.verify(session, unlocked.layout.ledger_head)


def tamper(unlocked: Unlocked, sql: str) -> None:
    with unlocked.store.session() as session:
        session.execute(text(sql))


def test_an_intact_ledger_verifies(unlocked):
    report = verify(unlocked)
    assert (report.ok, report.count, report.first_bad_seq, report.problem) == (True, 5, None, None)
    head = json.loads(unlocked.layout.ledger_head.read_text())
    assert head["seq"] == 5
    with unlocked.store.session() as session:
        rows = session.execute(text("SELECT seq, prev_hash, hash, hour FROM ledger")).all()
    assert rows[0][1] == ledger.GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 5))
    assert rows[0][3] == "2026-11-24T13"


def test_an_edited_record_is_detected(unlocked):
    tamper(unlocked, "UPDATE ledger SET detail = replace(detail, '2', '9') WHERE seq = 3")
    report = verify(unlocked)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "changed" in (report.problem or "")


def test_an_edited_record_with_a_recomputed_hash_breaks_the_next_link(unlocked):
    with unlocked.store.session() as session:
        row = session.get(LedgerRecord, 2)
        assert row is not None
        row.journalist = "mallory"
        row.hash = ledger._hash_of(row)
    report = verify(unlocked)
    assert not report.ok
    assert report.first_bad_seq == 3


def test_a_deleted_record_is_detected(unlocked):
    tamper(unlocked, "DELETE FROM ledger WHERE seq = 2")
    report = verify(unlocked)
    assert not report.ok
    assert report.first_bad_seq == 2
    assert "missing" in (report.problem or "")


def test_reordered_records_are_detected(unlocked):
    tamper(unlocked, "UPDATE ledger SET seq = 100 WHERE seq = 2")
    tamper(unlocked, "UPDATE ledger SET seq = 2 WHERE seq = 3")
    tamper(unlocked, "UPDATE ledger SET seq = 3 WHERE seq = 100")
    report = verify(unlocked)
    assert not report.ok
    assert report.first_bad_seq == 2


def test_a_cut_off_tail_is_detected_by_the_head(unlocked):
    tamper(unlocked, "DELETE FROM ledger WHERE seq >= 4")
    report = verify(unlocked)
    assert not report.ok
    assert report.first_bad_seq == 4
    assert "cut off" in (report.problem or "")


def test_a_rewritten_ledger_does_not_match_the_head(unlocked):
    tamper(unlocked, "DELETE FROM ledger")
    with unlocked.store.session() as session:
        for _n in range(5):
            ledger.record(
                session, event="import", journalist="mallory", item_ref=None, sha256=None,
                detail={}, now=NOW,
            )  # fmt: skip
    report = verify(unlocked)
    assert not report.ok
    assert "rewritten" in (report.problem or "")


def test_a_missing_or_damaged_head_is_reported(unlocked):
    unlocked.layout.ledger_head.write_text("nonsense")
    with pytest.raises(StationError, match="not a ledger head"):
        verify(unlocked)
    unlocked.layout.ledger_head.unlink()
    report = verify(unlocked)
    assert not report.ok
    assert "missing" in (report.problem or "")


def test_a_head_behind_after_a_crash_is_a_note_not_a_failure(unlocked):
    with unlocked.store.session() as session:
        ledger.record(
            session, event="view", journalist="alice", item_ref="1", sha256=None, detail={},
            now=NOW,
        )  # fmt: skip
    report = verify(unlocked)
    assert report.ok
    assert "record 5 of 6" in (report.note or "")


def test_the_report_is_readable(unlocked):
    with unlocked.store.session() as session:
        text_ = ledger.report(session)
    assert "Records: 5." in text_
    assert "#3  2026-11-24T15:00Z  import  by alice" in text_
    assert "source: amber otter" in text_
    assert f"sha256:  {2:064x}" in text_


def test_details_are_short_strings_and_integers(unlocked):
    with unlocked.store.session() as session, pytest.raises(TypeError):
        ledger.record(
            session, event="view", journalist="alice", item_ref=None, sha256=None,
            detail={"flag": True}, now=NOW,
        )  # fmt: skip
