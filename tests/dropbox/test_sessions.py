"""The session store (dropbox/web/sessions.py): sealed rows in the database, shared by every
process, that a seized database cannot open or tie to a source."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dropbox.db import SessionRecord
from dropbox.web.session_seal import cookie_keys
from dropbox.web.sessions import SessionStore, SourceSession
from dropbox.web.throttle import LoginAttempts, Throttled
from tests.dropbox.sitetools import START, FakeClock, migrated_database

REPLY_KEY = bytes(range(32))
ROW_ID = 48_151


@pytest.fixture
def database(tmp_path: Path) -> sessionmaker[Session]:
    return migrated_database(tmp_path / "db")


def logged_in(state: SourceSession) -> SourceSession:
    return state.logged_in_as(ROW_ID, acknowledged=True, reply_private=REPLY_KEY)


def rows(database: sessionmaker[Session]) -> list[SessionRecord]:
    with database() as session:
        return list(session.scalars(select(SessionRecord)))


def test_a_row_shows_nothing_of_its_session_in_clear(database: sessionmaker[Session]) -> None:
    store = SessionStore(database, FakeClock())
    cookie, state = store.create()
    store.update(cookie, lambda s: logged_in(s))
    (row,) = rows(database)
    clear = row.id + row.sealed
    for secret in (
        state.csrf_token.encode(),
        REPLY_KEY,
        REPLY_KEY.hex().encode(),
        b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",  # the key in base64
        str(ROW_ID).encode(),
        ROW_ID.to_bytes(4, "big"),
        ROW_ID.to_bytes(4, "little"),
        cookie.encode(),
        b"csrf",
        b"uk",
    ):
        assert secret not in clear, secret
    keys = cookie_keys(cookie)
    assert keys is not None
    assert row.id == keys.lookup
    assert row.day == START.date()  # the day only: the session ends on it at the latest
    assert row.logged_in is True


def test_a_session_opens_only_with_its_cookie(database: sessionmaker[Session]) -> None:
    store = SessionStore(database, FakeClock())
    cookie, _ = store.create()
    other, _ = store.create()
    store.update(cookie, logged_in)
    found = store.get(cookie)
    assert found is not None
    assert (found.source_row_id, found.reply_private) == (ROW_ID, REPLY_KEY)
    anonymous = store.get(other)
    assert anonymous is not None
    assert not anonymous.logged_in
    # Another cookie's row swapped in does not open: the seal key is the cookie's.
    with database() as session:
        mine = session.get(SessionRecord, cookie_keys(cookie).lookup)  # type: ignore[union-attr]
        theirs = session.get(SessionRecord, cookie_keys(other).lookup)  # type: ignore[union-attr]
        assert mine is not None
        assert theirs is not None
        theirs.sealed = mine.sealed
        session.commit()
    assert store.get(other) is None


def test_a_new_store_on_the_same_database_sees_the_session_and_its_lifetimes(
    tmp_path: Path,
) -> None:
    """A restarted process (a new engine, a new store) keeps everyone logged in, and still
    ends a session at its idle and absolute lifetimes."""
    clock = FakeClock()
    cookie, _ = SessionStore(migrated_database(tmp_path / "db"), clock).create()
    SessionStore(migrated_database(tmp_path / "db"), clock).update(cookie, logged_in)
    clock.advance(minutes=29)
    again = SessionStore(migrated_database(tmp_path / "db"), clock).get(cookie)
    assert again is not None
    assert again.source_row_id == ROW_ID
    clock.advance(minutes=29)
    restarted = SessionStore(migrated_database(tmp_path / "db"), clock)
    assert restarted.get(cookie) is not None
    clock.advance(minutes=30)  # idle
    assert restarted.get(cookie) is None
    assert len(restarted) == 0  # an expired session's row is deleted when it is met

    cookie, _ = restarted.create()
    for _ in range(4):
        clock.advance(minutes=29, seconds=59)
        assert SessionStore(migrated_database(tmp_path / "db"), clock).get(cookie) is not None
    clock.advance(seconds=4)  # two hours since it began
    assert SessionStore(migrated_database(tmp_path / "db"), clock).get(cookie) is None


def test_rotation_moves_the_session_to_a_new_cookie(database: sessionmaker[Session]) -> None:
    store = SessionStore(database, FakeClock())
    cookie, first = store.create()
    rotated = store.rotate(cookie, logged_in)
    assert rotated is not None
    new_cookie, _state = rotated
    assert new_cookie != cookie
    assert store.get(cookie) is None
    found = store.get(new_cookie)
    assert found is not None
    assert found.csrf_token == first.csrf_token
    assert found.source_row_id == ROW_ID
    assert len(store) == 1
    store.drop(new_cookie)
    assert len(store) == 0
    assert store.rotate(new_cookie, logged_in) is None


def test_concurrent_changes_from_several_processes_are_all_kept(tmp_path: Path) -> None:
    """Failed logins counted by racing requests in two processes (two engines): none is lost,
    and none goes beyond the budget."""
    clock = FakeClock()
    stores = [SessionStore(migrated_database(tmp_path / "db"), clock) for _ in range(2)]
    cookie, _ = stores[0].create()
    attempts = LoginAttempts(clock, limit=6, window=timedelta(minutes=10))
    refused: list[Throttled] = []

    def attempt(index: int) -> None:
        store = stores[index % 2]

        def update(change):
            return store.update(cookie, change)

        clock_mark = START + timedelta(microseconds=index)  # distinct marks
        local = LoginAttempts(lambda: clock_mark, limit=6, window=timedelta(minutes=10))
        try:
            local.reserve(update)
        except Throttled as error:
            refused.append(error)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    state = stores[1].get(cookie)
    assert state is not None
    assert len(state.failed_logins) == 6
    assert len(refused) == 4
    assert all(error.per_session for error in refused)
    with pytest.raises(Throttled):
        attempts.reserve(lambda change: stores[0].update(cookie, change))


def test_stale_rows_are_deleted_by_their_day(database: sessionmaker[Session]) -> None:
    clock = FakeClock()
    store = SessionStore(database, clock)
    store.create()
    clock.advance(days=1)
    store.create()  # the day before's session ended long ago
    assert len(store) == 1


def test_a_session_is_marked_as_seen_at_most_once_a_minute(
    database: sessionmaker[Session],
) -> None:
    """Reading a session writes its row only when its last mark is a minute old or more, and
    the idle lifetime runs from that mark."""
    clock = FakeClock()
    store = SessionStore(database, clock)
    cookie, _ = store.create()
    sealed = [row.sealed for row in rows(database)]
    clock.advance(seconds=59)
    found = store.get(cookie)
    assert found is not None
    assert found.last_seen == START
    assert [row.sealed for row in rows(database)] == sealed  # no write
    clock.advance(seconds=1)
    assert store.get(cookie) is not None
    assert [row.sealed for row in rows(database)] != sealed  # marked: a minute since
    clock.advance(seconds=30)
    assert store.get(cookie) is not None  # not marked again
    clock.advance(minutes=29, seconds=30)
    assert store.get(cookie) is None  # 30 minutes since the last mark, 29:30 since the request
