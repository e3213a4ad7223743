"""The configurable list of source statuses ("new", "in progress", ...), in order."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from journalist_ui.errors import StationError
from journalist_ui.store.models import Source, Status

MAX_STATUS_CHARS = 40


def statuses(session: Session) -> list[str]:
    return list(session.scalars(select(Status.name).order_by(Status.position, Status.name)))


def add_status(session: Session, name: str) -> str:
    """Add a status at the end of the list."""
    name = " ".join(name.split()).lower()
    if not name or len(name) > MAX_STATUS_CHARS or not name.isprintable():
        raise StationError(f"a status is 1 to {MAX_STATUS_CHARS} printable characters")
    if session.get(Status, name) is not None:
        raise StationError(f"the status {name!r} exists already")
    last = session.execute(select(func.max(Status.position))).scalar_one()
    session.add(Status(name=name, position=(last or 0) + 1))
    return name


def remove_status(session: Session, name: str) -> None:
    """Remove a status no source has (sources keep their status: move them first)."""
    status = session.get(Status, name)
    if status is None:
        raise StationError(f"no status {name!r}")
    used = session.execute(
        select(func.count(Source.id)).where(Source.status == name, Source.deleted.is_(False))
    ).scalar_one()
    if used:
        raise StationError(
            f"{used} source{'s have' if used != 1 else ' has'} the status {name!r}: "
            "give them another status first"
        )
    if session.execute(select(func.count()).select_from(Status)).scalar_one() == 1:
        raise StationError("the last status cannot be removed")
    session.delete(status)


def move_status(session: Session, name: str, step: int) -> None:
    """Move a status one place up (step -1) or down (step 1) in the list."""
    order = statuses(session)
    if name not in order:
        raise StationError(f"no status {name!r}")
    index = order.index(name)
    other = index + (1 if step > 0 else -1)
    if not 0 <= other < len(order):
        return
    order[index], order[other] = order[other], order[index]
    for position, status in enumerate(order, start=1):
        session.execute(update(Status).where(Status.name == status).values(position=position))


def status_counts(session: Session) -> list[tuple[str, int]]:
    """Every status in order with how many sources have it."""
    counts = dict(
        session.execute(
            select(Source.status, func.count(Source.id))
            .where(Source.deleted.is_(False))
            .group_by(Source.status)
        ).all()
    )
    return [(name, int(counts.get(name, 0))) for name in statuses(session)]
