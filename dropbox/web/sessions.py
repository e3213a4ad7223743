"""Server-side sessions, kept in memory only.

The browser holds a cookie ``postern_session`` with 32 random bytes (base64url, no padding)
and nothing else (docs/format.md section 8.1). The server keys its state by SHA-256 of those
bytes, so even this process's memory holds no cookie value it could replay. A session ends
2 hours after it began or 30 minutes after its last request, whichever comes first.

Why memory and not disk: a session holds, for a logged-in source, the decrypted replies. None
of that may ever reach the disk, not even in a swap-free tmpfs that a later seizure could
image. Keeping sessions in the process means the server runs **one** gunicorn worker process
(with many threads, see ``deploy/gunicorn.conf.py``): a second process would not see the
first one's sessions. Restarting the server logs every source out, which is acceptable.

A session never holds anything derived from the codename: it holds the source's database row
id, whether the codename was acknowledged, the decrypted replies shown to the source, the
CSRF token, the chosen language and the times of failed logins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from dropbox.sources import OpenedReply

SESSION_COOKIE: Final = "postern_session"
ABSOLUTE_LIFETIME: Final = timedelta(hours=2)
IDLE_LIFETIME: Final = timedelta(minutes=30)
#: More live sessions than this and the least recently used one is ended.
MAX_SESSIONS: Final = 50_000
_COOKIE_BYTES: Final = 32
_COOKIE_CHARS: Final = 43  # base64url of 32 bytes, without padding
_PURGE_EVERY: Final = timedelta(minutes=1)

Clock = Callable[[], datetime]


@dataclass(eq=False)
class SourceSession:
    """The server-side state of one browser session."""

    created: datetime
    last_seen: datetime
    csrf_token: str = field(repr=False)
    #: ``sources.id`` of the logged-in source, or None.
    source_row_id: int | None = None
    #: Whether the source confirmed having written down a codename shown in this session.
    codename_acknowledged: bool = False
    #: The source's replies, decrypted at login (kept in memory only).
    replies: list[OpenedReply] = field(default_factory=list, repr=False)
    language: str | None = None
    #: Times of recent failed (or still running) login attempts in this session.
    login_attempts: deque[datetime] = field(default_factory=deque, repr=False)
    #: Serializes changes made by concurrent requests of the same session.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def logged_in(self) -> bool:
        return self.source_row_id is not None

    @property
    def may_submit(self) -> bool:
        return self.logged_in and self.codename_acknowledged

    def log_in(self, source_row_id: int, *, acknowledged: bool, replies: list[OpenedReply]) -> None:
        with self.lock:
            self.source_row_id = source_row_id
            self.codename_acknowledged = acknowledged
            self.replies = list(replies)

    def forget_reply(self, reply_id: int) -> None:
        with self.lock:
            self.replies = [r for r in self.replies if r.reply_id != reply_id]


def _cookie_key(cookie: str) -> bytes | None:
    """SHA-256 of the cookie's 32 bytes, or None if it is not a cookie this server made."""
    if len(cookie) != _COOKIE_CHARS or not cookie.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(cookie + "=")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _COOKIE_BYTES or _encode(raw) != cookie:
        return None
    return hashlib.sha256(raw).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SessionStore:
    """Live sessions by SHA-256 of their cookie. Thread-safe; owned by one app."""

    def __init__(
        self,
        clock: Clock,
        *,
        absolute: timedelta = ABSOLUTE_LIFETIME,
        idle: timedelta = IDLE_LIFETIME,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._clock = clock
        self._absolute = absolute
        self._idle = idle
        self._max = max_sessions
        self._lock = threading.Lock()
        self._sessions: dict[bytes, SourceSession] = {}
        self._last_purge: datetime | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expired(self, state: SourceSession, now: datetime) -> bool:
        return now >= state.created + self._absolute or now >= state.last_seen + self._idle

    def _purge(self, now: datetime) -> None:
        if self._last_purge is not None and now < self._last_purge + _PURGE_EVERY:
            return
        self._last_purge = now
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]

    def _eviction_victim(self) -> bytes:
        """The least recently used anonymous session, else the least recently used one.

        Anonymous sessions go first, so that a flood of new sessions cannot push out sources
        who are logged in.
        """
        anonymous = [k for k, s in self._sessions.items() if not s.logged_in]
        candidates = anonymous or list(self._sessions)
        return min(candidates, key=lambda k: self._sessions[k].last_seen)

    def _new_cookie(self) -> tuple[str, bytes]:
        while True:
            cookie = _encode(secrets.token_bytes(_COOKIE_BYTES))
            key = _cookie_key(cookie)
            if key is not None and key not in self._sessions:
                return cookie, key

    def create(self) -> tuple[str, SourceSession]:
        """A new session; returns the cookie value to send and the state."""
        now = self._clock()
        state = SourceSession(created=now, last_seen=now, csrf_token=secrets.token_urlsafe(32))
        with self._lock:
            self._purge(now)
            if len(self._sessions) >= self._max:
                self._last_purge = None
                self._purge(now)
            while len(self._sessions) >= self._max:
                del self._sessions[self._eviction_victim()]
            cookie, key = self._new_cookie()
            self._sessions[key] = state
        return cookie, state

    def get(self, cookie: str) -> SourceSession | None:
        """The live session of a cookie, marked as seen now; None if unknown or expired."""
        key = _cookie_key(cookie)
        if key is None:
            return None
        now = self._clock()
        with self._lock:
            state = self._sessions.get(key)
            if state is None:
                return None
            if self._expired(state, now):
                del self._sessions[key]
                return None
            state.last_seen = now
            return state

    def rotate(self, cookie: str) -> str | None:
        """Move a session to a new cookie (after login); the old cookie stops working."""
        key = _cookie_key(cookie)
        if key is None:
            return None
        with self._lock:
            state = self._sessions.pop(key, None)
            if state is None:
                return None
            new_cookie, new_key = self._new_cookie()
            self._sessions[new_key] = state
        return new_cookie

    def drop(self, cookie: str) -> None:
        key = _cookie_key(cookie)
        if key is None:
            return
        with self._lock:
            state = self._sessions.pop(key, None)
        if state is not None:
            with state.lock:
                state.source_row_id = None
                state.replies = []
