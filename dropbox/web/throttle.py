"""Login throttling without IP addresses.

The server never sees a source's address (everyone arrives from the local Tor daemon), so
the budgets are not per client:

- **Argon2id derivations**, behind :class:`DerivationBudgets` (``login_slot()`` and
  ``codename_slot()``): each holds the codename memory cost (64 MiB or more) for a fraction
  of a second. Logins and new codenames have budgets of their own (N started per minute
  each), so a flood of requests for new codenames cannot use up what returning sources need
  to log in. Both share K slots of derivations running at once (the memory bound), and
  logins come first: new codenames may hold at most ``codename_concurrent`` of them (never
  the last ones), and a login waiting for a slot gets the next one before any codename
  request. A request waits a few seconds for a slot, then gives up.
- **failed logins per session** (:class:`LoginAttempts`): 5 in 10 minutes by default. A
  client can start new sessions to get around it; the login budget is what bounds guessing
  overall, and 90-bit codenames make guessing hopeless anyway. The per-session budget mostly
  keeps a confused source from burning the login budget.

Every budget answers with :class:`Throttled`, which says how long to wait. The derivation
budgets live in process memory for now; only :class:`DerivationBudgets`' two methods are
used by the views, so that their storage can change without touching them.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Final

from dropbox.errors import DropboxError
from dropbox.web.sessions import SourceSession

MINUTE: Final = timedelta(minutes=1)
#: How long a request waits for a derivation slot before it gives up.
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


class RateWindow:
    """At most ``per_minute`` starts within any minute of the clock. Thread-safe."""

    def __init__(self, clock: Clock, per_minute: int) -> None:
        self._clock = clock
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._started: deque[datetime] = deque()

    def take(self) -> None:
        """Count one start, or raise :class:`Throttled` until the oldest one is a minute old."""
        now = self._clock()
        with self._lock:
            while self._started and self._started[0] <= now - MINUTE:
                self._started.popleft()
            if len(self._started) >= self.per_minute:
                raise Throttled(self._started[0] + MINUTE - now, per_session=False)
            self._started.append(now)


class DerivationSlots:
    """K derivations at once, logins first. Thread-safe.

    A login takes any free slot. A codename request takes one only while fewer than
    ``codename_limit`` codename derivations run and no login is waiting: the last
    ``total - codename_limit`` slots are for logins alone, and a freed slot goes to a
    waiting login before any codename request.
    """

    def __init__(self, total: int, codename_limit: int) -> None:
        if not 1 <= codename_limit < total:
            raise ValueError("codename requests must leave at least one slot to logins")
        self._total = total
        self._codename_limit = codename_limit
        self._changed = threading.Condition()
        self._running = 0
        self._codenames = 0
        self._logins_waiting = 0

    def _free_for(self, login: bool) -> bool:
        if self._running >= self._total:
            return False
        return login or (self._logins_waiting == 0 and self._codenames < self._codename_limit)

    @contextlib.contextmanager
    def hold(self, *, login: bool, wait_seconds: float) -> Iterator[None]:
        """Hold a slot while the block runs; :class:`Throttled` after ``wait_seconds``."""
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            if login:
                self._logins_waiting += 1
            try:
                while not self._free_for(login):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Throttled(MINUTE, per_session=False)
                    self._changed.wait(left)
            finally:
                if login:
                    self._logins_waiting -= 1
                    # A login that gave up, or took its slot, may unblock codename requests.
                    self._changed.notify_all()
            self._running += 1
            if not login:
                self._codenames += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                if not login:
                    self._codenames -= 1
                self._changed.notify_all()


class DerivationBudgets:
    """The budgets of Argon2id derivations: logins and new codenames (see the module)."""

    def __init__(
        self,
        clock: Clock,
        *,
        login_per_minute: int,
        codename_per_minute: int,
        concurrent: int,
        codename_concurrent: int,
        wait_seconds: float = SLOT_WAIT_SECONDS,
    ) -> None:
        self.logins = RateWindow(clock, login_per_minute)
        self.codenames = RateWindow(clock, codename_per_minute)
        self._slots = DerivationSlots(concurrent, codename_concurrent)
        self._wait = wait_seconds

    @contextlib.contextmanager
    def login_slot(self) -> Iterator[None]:
        """Run one login's derivation inside the login budget, or raise :class:`Throttled`."""
        self.logins.take()
        with self._slots.hold(login=True, wait_seconds=self._wait):
            yield

    @contextlib.contextmanager
    def codename_slot(self) -> Iterator[None]:
        """Run one new codename's derivation inside its budget, or raise :class:`Throttled`."""
        self.codenames.take()
        with self._slots.hold(login=False, wait_seconds=self._wait):
            yield


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
