"""Server-side sessions, kept in the database, sealed under a key only the cookie gives.

The browser holds a cookie ``postern_session`` with 32 random bytes and nothing else
(docs/format.md section 8.1). The server derives two keys from it per request
(:mod:`dropbox.web.session_seal`): the row's lookup key and the key that seals the row's
content. The row holds in clear only the last day the session can live (to delete stale rows)
and whether a source is logged in (so that a flood of new sessions evicts anonymous ones
first); everything else is sealed: the source's row id, whether the codename was acknowledged,
the CSRF token, the source's reply private key, the times of failed logins and
the exact times that end the session.

Why the database: every app process, and a restarted one, must see the same sessions
(DESIGN.md section 6). Why sealed: a seized database must not give a source's replies or tie
a session to a source. The reply private key is what opens the replies; they are opened per
request and never stored decrypted. A session ends 2 hours after it began or 30 minutes after
its last request, whichever comes first.

Reading a session marks it as seen, which is a database write; a request that finds the
session marked less than a minute ago (:data:`MARK_EVERY`) leaves it as it is. A source's
page, its script's tus creation and its completion come seconds apart, and on SQLite every
write is serialized and synced: marking each of them made the session the costliest part
of a request (bench/scale.py, docs/operations.md section 23). So the idle lifetime runs from
the last mark: a session ends between 29 and 30 minutes after its last request.

Concurrent requests of one session change it by compare-and-swap on the sealed bytes (every
seal has a fresh nonce, so equal bytes mean an unchanged row): :meth:`SessionStore.update`
re-reads and tries again when another request changed it meanwhile. No process lock, so any
number of processes and machines can share the table.

A session never holds the codename or anything that gives it back: the reply private key is
derived from the codename one way.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from dropbox.db import SessionRecord
from dropbox.errors import DropboxError
from dropbox.storage import is_out_of_space
from dropbox.web.session_seal import CookieKeys, cookie_keys, new_cookie, seal, unseal

SESSION_COOKIE: Final = "postern_session"
ABSOLUTE_LIFETIME: Final = timedelta(hours=2)
IDLE_LIFETIME: Final = timedelta(minutes=30)
#: More live sessions than this and anonymous ones are evicted first, then the oldest.
MAX_SESSIONS: Final = 50_000
#: Rows evicted at once when the table is full, so that a flood does not evict on every request.
_EVICT_BATCH: Final = 64
#: How many times a change is tried again when other requests of the session changed it first.
_RETRIES: Final = 32
_FORMAT: Final = 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PURGE_EVERY: Final = timedelta(minutes=1)
#: A session read sooner than this after its last mark is not marked again (a write saved).
MARK_EVERY: Final = timedelta(minutes=1)

Clock = Callable[[], datetime]


class SessionBusy(DropboxError):
    """A session could not be changed: other requests of it kept changing it first."""


@dataclass(frozen=True)
class SourceSession:
    """The content of one browser session, as this request read it (immutable)."""

    created: datetime
    last_seen: datetime
    csrf_token: str = field(repr=False)
    #: ``sources.id`` of the logged-in source, or None.
    source_row_id: int | None = field(default=None, repr=False)
    #: Whether the source confirmed having written down a codename shown in this session.
    codename_acknowledged: bool = False
    #: The logged-in source's X25519 reply private key: it opens their replies per request.
    reply_private: bytes | None = field(default=None, repr=False)
    #: Times of recent failed (or still running) login attempts in this session.
    failed_logins: tuple[datetime, ...] = field(default=(), repr=False)

    @property
    def logged_in(self) -> bool:
        return self.source_row_id is not None

    @property
    def may_submit(self) -> bool:
        return self.logged_in and self.codename_acknowledged

    def logged_in_as(
        self, source_row_id: int, *, acknowledged: bool, reply_private: bytes
    ) -> SourceSession:
        return replace(
            self,
            source_row_id=source_row_id,
            codename_acknowledged=acknowledged,
            reply_private=reply_private,
        )

    def to_bytes(self) -> bytes:
        """The content as sealed (docs/format.md section 8.1)."""
        reply_key = self.reply_private
        document = {
            "v": _FORMAT,
            "created": _micros(self.created),
            "seen": _micros(self.last_seen),
            "csrf": self.csrf_token,
            "source": self.source_row_id,
            "ack": self.codename_acknowledged,
            "reply_key": None if reply_key is None else base64.b64encode(reply_key).decode(),
            "failed": [_micros(t) for t in self.failed_logins],
        }
        return json.dumps(document, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, content: bytes) -> SourceSession | None:
        """The content sealed by :meth:`to_bytes`, or None if it is not of this format."""
        try:
            doc = json.loads(content)
            if doc["v"] != _FORMAT:
                return None
            key = doc["reply_key"]
            return cls(
                created=_time(doc["created"]),
                last_seen=_time(doc["seen"]),
                csrf_token=str(doc["csrf"]),
                source_row_id=None if doc["source"] is None else int(doc["source"]),
                codename_acknowledged=bool(doc["ack"]),
                reply_private=None if key is None else base64.b64decode(key, validate=True),
                failed_logins=tuple(_time(t) for t in doc["failed"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error, OverflowError):
            return None


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _time(micros: object) -> datetime:
    if not isinstance(micros, int):
        raise TypeError("a time is an integer")
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class _Loaded:
    keys: CookieKeys
    sealed: bytes
    state: SourceSession
    day: date


class SessionStore:
    """Live sessions in the database table ``source_sessions``. Thread- and process-safe."""

    def __init__(
        self,
        db: sessionmaker[Session],
        clock: Clock,
        *,
        absolute: timedelta = ABSOLUTE_LIFETIME,
        idle: timedelta = IDLE_LIFETIME,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._absolute = absolute
        self._idle = idle
        self._max = max_sessions
        # Only when this process last deleted stale rows: a hint, not state (any process can).
        self._last_purge: datetime | None = None

    def __len__(self) -> int:
        with self._db() as db:
            return int(db.scalar(select(func.count()).select_from(SessionRecord)) or 0)

    def _expired(self, state: SourceSession, now: datetime) -> bool:
        return now >= state.created + self._absolute or now >= state.last_seen + self._idle

    def _last_day(self, state: SourceSession) -> date:
        return (state.created + self._absolute).astimezone(UTC).date()

    # -- reading and writing one row -----------------------------------------------------------

    def _load(self, db: Session, cookie: str, now: datetime) -> _Loaded | None:
        """The live session of a cookie; an expired one is deleted on the way."""
        keys = cookie_keys(cookie)
        if keys is None:
            return None
        row = db.get(SessionRecord, keys.lookup)
        if row is None:
            return None
        content = unseal(keys, row.sealed)
        state = None if content is None else SourceSession.from_bytes(content)
        if state is None or self._expired(state, now):
            db.execute(delete(SessionRecord).where(SessionRecord.id == keys.lookup))
            db.commit()
            return None
        return _Loaded(keys, row.sealed, state, row.day)

    def _swap(self, db: Session, loaded: _Loaded, new: SourceSession) -> bool:
        """Replace the row's content if no other request changed it since it was read."""
        result = db.execute(
            update(SessionRecord)
            .where(SessionRecord.id == loaded.keys.lookup, SessionRecord.sealed == loaded.sealed)
            .values(sealed=seal(loaded.keys, new.to_bytes()), logged_in=new.logged_in)
            .execution_options(synchronize_session=False)
        )
        db.commit()
        return bool(getattr(result, "rowcount", 0) == 1)

    # -- the operations ------------------------------------------------------------------------

    def create(self) -> tuple[str, SourceSession]:
        """A new session; returns the cookie value to send and the state."""
        now = self._clock()
        state = SourceSession(created=now, last_seen=now, csrf_token=secrets.token_urlsafe(32))
        cookie = new_cookie()
        keys = cookie_keys(cookie)
        assert keys is not None  # noqa: S101 - new_cookie makes well-formed cookies
        with self._db() as db:
            self._make_room(db, now)
            db.add(
                SessionRecord(
                    id=keys.lookup,
                    sealed=seal(keys, state.to_bytes()),
                    day=self._last_day(state),
                    logged_in=False,
                )
            )
            db.commit()
        return cookie, state

    def get(self, cookie: str) -> SourceSession | None:
        """The live session of a cookie, marked as seen now (unless it was less than
        :data:`MARK_EVERY` ago); None if unknown or expired."""
        now = self._clock()
        with self._db() as db:
            loaded = self._load(db, cookie, now)
            if loaded is None:
                return None
            if now < loaded.state.last_seen + MARK_EVERY:
                return loaded.state
            seen = replace(loaded.state, last_seen=now)
            try:
                # If another request changed the row meanwhile, it marked it as seen too.
                self._swap(db, loaded, seen)
            except Exception as error:
                if not is_out_of_space(error):
                    raise
                # A full disk: the session is read, not marked (its idle time runs from its
                # last mark), so that a source already logged in still reads their replies.
                db.rollback()
            return seen

    def update(
        self, cookie: str, change: Callable[[SourceSession], SourceSession]
    ) -> SourceSession | None:
        """Apply ``change`` to the session's newest content and store the result.

        ``change`` may run more than once (when another request of the session wrote first)
        and may raise, which stores nothing. None if the session is gone.
        """
        for _ in range(_RETRIES):
            with self._db() as db:
                loaded = self._load(db, cookie, self._clock())
                if loaded is None:
                    return None
                new = change(loaded.state)
                if self._swap(db, loaded, new):
                    return new
        raise SessionBusy("the session was changed by other requests too often")

    def rotate(
        self, cookie: str, change: Callable[[SourceSession], SourceSession]
    ) -> tuple[str, SourceSession] | None:
        """Move a session to a new cookie (at login), applying ``change``; the old cookie
        stops working. None if the session is gone."""
        for _ in range(_RETRIES):
            with self._db() as db:
                loaded = self._load(db, cookie, self._clock())
                if loaded is None:
                    return None
                new = change(loaded.state)
                fresh = new_cookie()
                keys = cookie_keys(fresh)
                assert keys is not None  # noqa: S101 - new_cookie makes well-formed cookies
                old = db.execute(
                    delete(SessionRecord)
                    .where(
                        SessionRecord.id == loaded.keys.lookup,
                        SessionRecord.sealed == loaded.sealed,
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(old, "rowcount", 0) != 1:
                    db.rollback()
                    continue
                db.add(
                    SessionRecord(
                        id=keys.lookup,
                        sealed=seal(keys, new.to_bytes()),
                        day=loaded.day,
                        logged_in=new.logged_in,
                    )
                )
                db.commit()
                return fresh, new
        raise SessionBusy("the session was changed by other requests too often")

    def drop(self, cookie: str) -> None:
        """End the session: its row is deleted (and overwritten, on SQLite)."""
        keys = cookie_keys(cookie)
        if keys is None:
            return
        with self._db() as db:
            db.execute(delete(SessionRecord).where(SessionRecord.id == keys.lookup))
            db.commit()

    # -- room ------------------------------------------------------------------------------------

    def _make_room(self, db: Session, now: datetime) -> None:
        """Delete rows whose last day is over; if the table is full, evict a batch of rows,
        anonymous ones first and older days first."""
        today = now.astimezone(UTC).date()
        if self._last_purge is None or now >= self._last_purge + _PURGE_EVERY:
            self._last_purge = now
            db.execute(delete(SessionRecord).where(SessionRecord.day < today))
            db.commit()
        count = db.scalar(select(func.count()).select_from(SessionRecord)) or 0
        if count < self._max:
            return
        db.execute(delete(SessionRecord).where(SessionRecord.day < today))
        victims = select(SessionRecord.id).order_by(
            SessionRecord.logged_in, SessionRecord.day, SessionRecord.id
        )
        excess = count - self._max + 1
        doomed = list(db.scalars(victims.limit(max(excess, min(_EVICT_BATCH, self._max // 8)))))
        db.execute(delete(SessionRecord).where(SessionRecord.id.in_(doomed)))
        db.commit()
