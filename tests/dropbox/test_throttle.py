"""The derivation budgets (dropbox/web/throttle.py): logins and new codenames apart, logins
first. Slots are held by threads here; nothing derives a key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from dropbox.db import DerivationCount
from dropbox.web.throttle import (
    DerivationBudgets,
    DerivationSlots,
    MinuteBudget,
    Throttled,
    slots_per_process,
)
from tests.dropbox.sitetools import START, FakeClock, migrated_database

Slot = Callable[[], AbstractContextManager[None]]


@pytest.fixture
def database(tmp_path: Path) -> sessionmaker[Session]:
    return migrated_database(tmp_path / "db")


def budgets(
    database: sessionmaker[Session], clock: FakeClock, **kwargs: int | float
) -> DerivationBudgets:
    options: dict[str, float] = {
        "login_per_minute": 30,
        "codename_per_minute": 20,
        "concurrent": 4,
        "codename_concurrent": 2,
        "wait_seconds": 0.2,
        **kwargs,
    }
    return DerivationBudgets(database, clock, **options)  # type: ignore[arg-type]


class Holder:
    """A thread that takes a slot, records when it got it, and holds it until released."""

    def __init__(self, slot: Slot, name: str, order: list[str]) -> None:
        self.got = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self._slot, self._name, self._order = slot, name, order
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self._slot():
                self._order.append(self._name)
                self.got.set()
                self.release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def done(self) -> None:
        self.release.set()
        self.thread.join(30)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for holder in made:
        holder.done()


def hold(made: list[Holder], slot: Slot, name: str, order: list[str]) -> Holder:
    holder = Holder(slot, name, order)
    made.append(holder)
    return holder


def test_new_codenames_use_up_their_own_budget_not_the_logins(
    database: sessionmaker[Session],
) -> None:
    clock = FakeClock()
    limits = budgets(database, clock, login_per_minute=2, codename_per_minute=3)
    for _ in range(3):
        with limits.codename_slot():
            pass
    with pytest.raises(Throttled) as refused, limits.codename_slot():
        pass
    assert not refused.value.per_session
    for _ in range(2):
        with limits.login_slot():
            pass
    with pytest.raises(Throttled), limits.login_slot():
        pass
    clock.advance(minutes=1)
    with limits.codename_slot(), limits.login_slot():
        pass


def test_codename_requests_never_take_the_last_slots(
    holders: list[Holder], database: sessionmaker[Session]
) -> None:
    limits = budgets(database, FakeClock(), concurrent=3, codename_concurrent=2, wait_seconds=0.3)
    order: list[str] = []
    first = hold(holders, limits.codename_slot, "codename 1", order)
    second = hold(holders, limits.codename_slot, "codename 2", order)
    assert first.got.wait(5)
    assert second.got.wait(5)
    started = time.monotonic()
    with pytest.raises(Throttled) as refused, limits.codename_slot():
        pass
    assert time.monotonic() - started >= 0.25  # it waited for a slot, then gave up
    assert refused.value.seconds == 60
    with limits.login_slot():  # the slot left is a login's
        pass


def test_a_waiting_login_is_served_before_any_waiting_codename_request(
    holders: list[Holder],
) -> None:
    slots = DerivationSlots(3, 2)

    def login() -> AbstractContextManager[None]:
        return slots.hold(login=True, wait_seconds=10)

    def codename() -> AbstractContextManager[None]:
        return slots.hold(login=False, wait_seconds=10)

    order: list[str] = []
    busy = [hold(holders, codename, "codename 1", order), hold(holders, login, "login 1", order)]
    assert all(h.got.wait(5) for h in busy)
    third = hold(holders, login, "login 2", order)  # the last slot
    assert third.got.wait(5)
    waiting_codename = hold(holders, codename, "codename 2", order)
    time.sleep(0.2)  # it waits first
    waiting_login = hold(holders, login, "login 3", order)
    time.sleep(0.2)
    assert not waiting_codename.got.is_set()
    assert not waiting_login.got.is_set()
    busy[0].done()  # a codename slot frees: the login that came later gets it
    assert waiting_login.got.wait(5)
    time.sleep(0.2)
    assert not waiting_codename.got.is_set()
    third.done()  # no login waits now: the codename request gets the next one
    assert waiting_codename.got.wait(5)
    assert order == ["codename 1", "login 1", "login 2", "login 3", "codename 2"]
    assert all(h.error is None for h in holders)


def test_a_login_that_gives_up_lets_codename_requests_go_on(holders: list[Holder]) -> None:
    slots = DerivationSlots(2, 1)
    order: list[str] = []
    full = [
        hold(holders, lambda: slots.hold(login=True, wait_seconds=5), "login 1", order),
        hold(holders, lambda: slots.hold(login=True, wait_seconds=5), "login 2", order),
    ]
    assert all(h.got.wait(5) for h in full)
    impatient = hold(holders, lambda: slots.hold(login=True, wait_seconds=0.2), "login 3", order)
    codename = hold(holders, lambda: slots.hold(login=False, wait_seconds=5), "codename", order)
    impatient.thread.join(5)
    assert isinstance(impatient.error, Throttled)
    full[0].done()
    assert codename.got.wait(5)


def test_slots_must_leave_one_to_logins() -> None:
    for total, codenames in ((2, 2), (3, 0), (1, 1)):
        with pytest.raises(ValueError, match="at least one slot"):
            DerivationSlots(total, codenames)


def test_the_minute_budget_is_one_for_every_process_sharing_the_database(tmp_path: Path) -> None:
    """Two engines on one database file stand for two processes; eight threads race."""
    clock = FakeClock(START + timedelta(seconds=20))
    first, second = (migrated_database(tmp_path / "db") for _ in range(2))
    stores = [MinuteBudget(db, clock, "login", 5) for db in (first, second)]
    results: list[bool] = []
    refusals: list[Throttled] = []

    def take(budget: MinuteBudget) -> None:
        try:
            budget.take()
            results.append(True)
        except Throttled as error:
            refusals.append(error)

    threads = [threading.Thread(target=take, args=(stores[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 5
    assert len(refusals) == 3
    assert {r.seconds for r in refusals} == {40}  # until the next minute of the clock
    # A codename budget is another count.
    MinuteBudget(first, clock, "codename", 1).take()
    clock.advance(minutes=1)
    stores[1].take()
    clock.advance(minutes=5)
    stores[0].take()
    with first() as session:
        rows = session.scalars(select(DerivationCount).where(DerivationCount.kind == "login"))
        # Old minutes are deleted as new ones begin: only counts, of the last two minutes.
        assert [(row.minute, row.count) for row in rows] == [(int(clock.now.timestamp()) // 60, 1)]


def test_a_take_that_meets_another_process_beginning_the_minute_still_counts(
    tmp_path: Path,
) -> None:
    """Process B's update finds no row for the minute; before B looks again, process A
    inserts it (A's first start). B must count in A's row, not report the budget used up."""
    clock = FakeClock()
    a_db, b_db = migrated_database(tmp_path / "db"), migrated_database(tmp_path / "db")
    a, b = MinuteBudget(a_db, clock, "login", 5), MinuteBudget(b_db, clock, "login", 5)
    interleaved: list[bool] = []

    @event.listens_for(b_db, "after_commit")
    def a_begins_the_minute(_session: Session) -> None:
        if not interleaved:
            interleaved.append(True)
            a.take()

    b.take()
    assert interleaved == [True]
    with a_db() as session:
        (row,) = session.scalars(select(DerivationCount))
        assert row.count == 2


def test_each_worker_runs_its_share_of_the_servers_derivation_slots() -> None:
    assert slots_per_process(4, 2, 1) == (4, 2)
    assert slots_per_process(4, 2, 2) == (2, 1)  # the server's total: 4, and 2 for codenames
    assert slots_per_process(4, 2, 4) == (2, 1)  # never fewer than one slot for logins alone
    assert slots_per_process(8, 6, 2) == (4, 3)
    for total, codename, processes in ((2, 1, 1), (3, 2, 8), (64, 63, 3)):
        share, codename_share = slots_per_process(total, codename, processes)
        DerivationSlots(share, codename_share)  # a valid split: logins keep at least one
