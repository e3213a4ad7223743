"""Login throttling without IP addresses.

The server never sees a source's address (everyone arrives from the local Tor daemon), so
there are two budgets instead:

- a **global** one for Argon2id derivations (logins and new codenames): at most N started per
  minute and at most K running at once, because each holds the codename memory cost (64 MiB or
  more) for a fraction of a second; a request waits a few seconds for a free slot, then gives
  up;
- a **per-session** one for failed logins: 5 in 10 minutes by default. A client can start new
  sessions to get around it; the global budget is what bounds guessing overall, and 90-bit
  codenames make guessing hopeless anyway. The per-session budget mostly keeps a confused
  source from burning the global budget.

Both answer with :class:`Throttled`, which says how long to wait.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Final

from dropbox.errors import DropboxError
from dropbox.web.sessions import SourceSession

MINUTE: Final = timedelta(minutes=1)
#: How long a request waits for one of the K derivation slots before it gives up.
SLOT_WAIT_SECONDS: Final = 10.0

Clock = Callable[[], datetime]


class Throttled(DropboxError):
    """Over a budget; try again after ``retry_after``."""

    def __init__(self, retry_after: timedelta, *, per_session: bool) -> None:
        super().__init__(f"throttled for {retry_after}")
        self.retry_after = max(retry_after, timedelta(seconds=1))
        self.per_session = per_session

    @property
    def seconds(self) -> int:
        return math.ceil(self.retry_after.total_seconds())

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after.total_seconds() / 60))


class DerivationThrottle:
    """The global budget of Argon2id derivations. Thread-safe."""

    def __init__(
        self,
        clock: Clock,
        *,
        per_minute: int,
        concurrent: int,
        wait_seconds: float = SLOT_WAIT_SECONDS,
    ) -> None:
        self._clock = clock
        self._per_minute = per_minute
        self._slots = threading.BoundedSemaphore(concurrent)
        self._wait = wait_seconds
        self._lock = threading.Lock()
        self._started: deque[datetime] = deque()

    def _take_budget(self) -> None:
        now = self._clock()
        with self._lock:
            while self._started and self._started[0] <= now - MINUTE:
                self._started.popleft()
            if len(self._started) >= self._per_minute:
                raise Throttled(self._started[0] + MINUTE - now, per_session=False)
            self._started.append(now)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Run one derivation inside the budget, or raise :class:`Throttled`."""
        self._take_budget()
        if not self._slots.acquire(timeout=self._wait):
            raise Throttled(MINUTE, per_session=False)
        try:
            yield
        finally:
            self._slots.release()


class LoginAttempts:
    """The per-session budget of failed logins."""

    def __init__(self, clock: Clock, *, limit: int, window: timedelta) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window

    def reserve(self, session: SourceSession) -> datetime:
        """Count an attempt before it runs (concurrent attempts cannot overshoot the budget).

        Returns the attempt's mark, to pass to :meth:`succeeded` if the login works.
        """
        now = self._clock()
        with session.lock:
            attempts = session.login_attempts
            while attempts and attempts[0] <= now - self._window:
                attempts.popleft()
            if len(attempts) >= self._limit:
                raise Throttled(attempts[0] + self._window - now, per_session=True)
            attempts.append(now)
        return now

    def succeeded(self, session: SourceSession, mark: datetime) -> None:
        """A login that worked is not a failure: give its reservation back."""
        with session.lock, contextlib.suppress(ValueError):
            session.login_attempts.remove(mark)
