"""Login throttling without IP addresses.

The server never sees a source's address (everyone arrives from the local Tor daemon), so
the budgets are not per client:

- **Argon2id derivations**, behind :class:`DerivationBudgets` (``login_slot()`` and
  ``codename_slot()``): each holds the codename memory cost (64 MiB or more) for a fraction
  of a second. Logins and new codenames have budgets of their own (N started per minute
  of the clock each, counted in the database by :class:`MinuteBudget`, so that every app
  process and machine shares them), so a flood of requests for new codenames cannot use up
  what returning sources need to log in. The K slots of derivations running at once (the
  memory bound) are enforced **per process**, in memory: a slot is held only while a
  derivation runs in that process, so there is nothing to share or to survive a restart.
  Logins come first:
  new codenames may hold at most ``codename_concurrent`` of them (never the last ones), and
  a login waiting for a slot gets the next one before any codename request. A request waits
  a few seconds for a slot, then gives up. Each of W worker processes enforces its share of
  the K slots (:func:`slots_per_process`), so the server's total stays about K.
- **failed logins per session** (:class:`LoginAttempts`): 5 in 10 minutes by default, kept
  in the sealed session (dropbox/web/sessions.py). A client can start new sessions to get
  around it; the login budget is what bounds guessing overall, and 90-bit codenames make
  guessing hopeless anyway. The per-session budget mostly keeps a confused source from
  burning the login budget.

Every budget answers with :class:`Throttled`, which says how long to wait.

A minute's count in the database is not tied to any source or session: it says only how many
logins or new codenames were tried in the current and the previous minute, which anyone
watching the onion's response times learns too. Older minutes are deleted as new ones begin.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dropbox.db import DerivationCount
from dropbox.errors import DropboxError
from dropbox.web.sessions import SourceSession

MINUTE: Final = timedelta(minutes=1)
#: Rounds of a take that keeps meeting other processes' first start of the minute.
_TAKE_TRIES: Final = 8
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


class MinuteBudget:
    """At most ``per_minute`` starts of ``kind`` within each minute of the clock, counted in
    the database (table ``derivation_counts``) so that every process shares the budget.

    Taking is one atomic ``UPDATE ... SET count = count + 1 WHERE count < limit``; the
    minute's first start inserts its row, and a concurrent first start that loses the race
    on the primary key takes its place with the update instead.
    """

    def __init__(self, db: sessionmaker[Session], clock: Clock, kind: str, per_minute: int) -> None:
        self._db = db
        self._clock = clock
        self.kind = kind
        self.per_minute = per_minute

    def take(self) -> None:
        """Count one start, or raise :class:`Throttled` until the next minute begins."""
        now = self._clock()
        seconds = now.astimezone(UTC).timestamp()
        minute = math.floor(seconds / 60)
        if self.per_minute <= 0 or not self._take(minute):
            wait = timedelta(seconds=(minute + 1) * 60 - seconds)
            raise Throttled(wait, per_session=False)

    def _take(self, minute: int) -> bool:
        row = (DerivationCount.kind == self.kind, DerivationCount.minute == minute)
        for _ in range(_TAKE_TRIES):
            with self._db() as db:
                taken = db.execute(
                    update(DerivationCount)
                    .where(*row, DerivationCount.count < self.per_minute)
                    .values(count=DerivationCount.count + 1)
                    .execution_options(synchronize_session=False)
                )
                db.commit()
                if getattr(taken, "rowcount", 0) == 1:
                    return True
                counted = db.get(DerivationCount, (self.kind, minute))
                if counted is not None:
                    if counted.count >= self.per_minute:
                        return False  # the minute's budget is used up
                    continue  # another process began the minute after the update: again
                try:
                    db.execute(
                        insert(DerivationCount).values(kind=self.kind, minute=minute, count=1)
                    )
                    # The minutes before the last one are no budget's any more.
                    db.execute(
                        delete(DerivationCount).where(
                            DerivationCount.kind == self.kind, DerivationCount.minute < minute - 1
                        )
                    )
                    db.commit()
                    return True
                except IntegrityError:
                    db.rollback()  # another process began the minute: count with it
        return False


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


def slots_per_process(total: int, codename: int, processes: int) -> tuple[int, int]:
    """One process's share of the server's derivation slots, as ``(slots, codename slots)``.

    The settings bound the derivations of the whole server (its memory and cores); each of
    ``processes`` worker processes enforces its share: at least two slots, and codename
    requests at least one and never all of them. With 4 and 2 over two workers, each worker
    runs 2 derivations at most, of which 1 a new codename's: 4 and 2 for the server.
    """
    share = max(2, total // processes)
    return share, max(1, min(codename // processes, share - 1))


class DerivationBudgets:
    """The budgets of Argon2id derivations: logins and new codenames (see the module)."""

    def __init__(
        self,
        db: sessionmaker[Session],
        clock: Clock,
        *,
        login_per_minute: int,
        codename_per_minute: int,
        concurrent: int,
        codename_concurrent: int,
        wait_seconds: float = SLOT_WAIT_SECONDS,
    ) -> None:
        self.logins = MinuteBudget(db, clock, "login", login_per_minute)
        self.codenames = MinuteBudget(db, clock, "codename", codename_per_minute)
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


#: Applies a change to the current session and stores it (dropbox.web.context.update_session).
SessionUpdate = Callable[[Callable[[SourceSession], SourceSession]], object]


class LoginAttempts:
    """The per-session budget of failed logins, kept in the sealed session."""

    def __init__(self, clock: Clock, *, limit: int, window: timedelta) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window

    def reserve(self, update_session: SessionUpdate) -> datetime:
        """Count an attempt before it runs (concurrent attempts cannot overshoot the budget:
        the session is changed by compare-and-swap, and a refusal stores nothing).

        Returns the attempt's mark, to pass to :meth:`succeeded` if the login works.
        """
        now = self._clock()

        def count(state: SourceSession) -> SourceSession:
            recent = tuple(t for t in state.failed_logins if t > now - self._window)
            if len(recent) >= self._limit:
                raise Throttled(recent[0] + self._window - now, per_session=True)
            return replace(state, failed_logins=(*recent, now))

        update_session(count)
        return now

    def succeeded(self, update_session: SessionUpdate, mark: datetime) -> None:
        """A login that worked is not a failure: give its reservation back."""

        def give_back(state: SourceSession) -> SourceSession:
            attempts = list(state.failed_logins)
            if mark in attempts:
                attempts.remove(mark)
            return replace(state, failed_logins=tuple(attempts))

        update_session(give_back)
