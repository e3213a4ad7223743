"""Browser sessions of the station UI, held in the app's memory only.

A browser is known by a random cookie (256 bits, HttpOnly, SameSite=Strict). Each session
has a CSRF token and, once the journalist has unlocked, the :class:`~journalist_ui.unlock.
Unlocked` object (keys and the open store). Nothing about a session is written to disk.

Locking a session (the Lock button, idle time, or the process ending) removes it from the
table at once and calls ``Unlocked.lock()``, which drops the keys and closes the store, so
they and any decrypted text can be garbage-collected. Python gives no stronger guarantee
(immutable ``bytes``/``str`` cannot be wiped in place). An import running in the background
holds the ``Unlocked`` it started with (:meth:`SessionTable.hold`): if its session locks
meanwhile, ``lock()`` runs as soon as the import ends, so that the import never loses its
keys half-way (it would record the rest of the bundle as undecryptable).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

#: Sessions that never unlocked (a page opened, a form shown) kept at most; the oldest go.
MAX_ANONYMOUS = 64


class Lockable(Protocol):
    journalist: str

    def lock(self) -> None: ...


@dataclass
class BrowserSession:
    token: str
    csrf: str
    last_seen: datetime
    unlocked: Lockable | None = None
    #: One-line notices shown on the next page (set by a view, taken by the next render).
    notices: list[tuple[str, str]] = field(default_factory=list)
    #: The interface language chosen in this browser (journalist_ui/web/language.py); once
    #: unlocked, the journalist's stored choice replaces it.
    language: str | None = None


def _token() -> str:
    return secrets.token_urlsafe(32)


class SessionTable:
    """Every browser session of one app, keyed by cookie value; thread-safe."""

    def __init__(self, idle_timeout: timedelta, clock: Callable[[], datetime]) -> None:
        self._idle = idle_timeout
        self._clock = clock
        self._sessions: dict[str, BrowserSession] = {}
        self._lock = threading.Lock()
        #: Unlocked objects in use by background work (an import), by id, with a count;
        #: locking one of them waits until the work releases it.
        self._holds: dict[int, int] = {}
        self._deferred: dict[int, Lockable] = {}

    def get(self, token: str | None) -> BrowserSession:
        """The live session named by ``token``, or a new anonymous one.

        A session idle for longer than the timeout is locked first; its cookie then starts a
        new anonymous session.
        """
        now = self._clock()
        self.expire()
        with self._lock:
            current = self._sessions.get(token) if token else None
            if current is None:
                current = BrowserSession(_token(), _token(), now)
                self._sessions[current.token] = current
                self._trim_anonymous()
            current.last_seen = now
            return current

    def unlock(self, session: BrowserSession, unlocked: Lockable) -> BrowserSession:
        """Replace ``session`` by a new unlocked one (new cookie and CSRF token)."""
        fresh = BrowserSession(_token(), _token(), self._clock(), unlocked)
        fresh.language = session.language
        with self._lock:
            previous = self._sessions.pop(session.token, None)
            self._sessions[fresh.token] = fresh
        if previous is not None and previous.unlocked is not None:
            self._lock_or_defer(previous.unlocked)
        return fresh

    def lock(self, session: BrowserSession) -> None:
        with self._lock:
            self._sessions.pop(session.token, None)
        self._drop(session)

    def expire(self) -> int:
        """Lock every unlocked session idle for longer than the timeout; how many."""
        limit = self._clock() - self._idle
        with self._lock:
            stale = [s for s in self._sessions.values() if s.last_seen < limit]
            for s in stale:
                del self._sessions[s.token]
        count = sum(1 for s in stale if s.unlocked is not None)
        for s in stale:
            self._drop(s)
        return count

    def lock_all(self) -> None:
        with self._lock:
            every = list(self._sessions.values())
            self._sessions.clear()
        for s in every:
            self._drop(s)

    def hold(self, unlocked: Lockable) -> None:
        """Keep ``unlocked`` open for background work even if its session locks meanwhile."""
        with self._lock:
            self._holds[id(unlocked)] = self._holds.get(id(unlocked), 0) + 1

    def release(self, unlocked: Lockable) -> None:
        """End a :meth:`hold`; lock now if the session locked while it was held."""
        with self._lock:
            count = self._holds.pop(id(unlocked), 1) - 1
            if count:
                self._holds[id(unlocked)] = count
                return
            deferred = self._deferred.pop(id(unlocked), None)
        if deferred is not None:
            deferred.lock()

    def _lock_or_defer(self, unlocked: Lockable) -> None:
        with self._lock:
            if id(unlocked) in self._holds:
                self._deferred[id(unlocked)] = unlocked
                return
        unlocked.lock()

    def unlocked_count(self) -> int:
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.unlocked is not None)

    def _trim_anonymous(self) -> None:
        anonymous = [s for s in self._sessions.values() if s.unlocked is None]
        if len(anonymous) > MAX_ANONYMOUS:
            anonymous.sort(key=lambda s: s.last_seen)
            for s in anonymous[: len(anonymous) - MAX_ANONYMOUS]:
                del self._sessions[s.token]

    def _drop(self, session: BrowserSession) -> None:
        unlocked, session.unlocked = session.unlocked, None
        session.notices.clear()
        if unlocked is not None:
            self._lock_or_defer(unlocked)
