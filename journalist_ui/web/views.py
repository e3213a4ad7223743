"""Small helpers shared by the views: form parsing, the store session, ledger events."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from flask import request
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from journalist_ui import ledger
from journalist_ui.web.context import now, unlocked


@contextlib.contextmanager
def store_session() -> Iterator[Session]:
    """One store transaction; if it appended ledger events, HOME/ledger.head follows."""
    current = unlocked()
    with current.store.session() as session:
        session.info["ledger_events"] = 0
        yield session
        events = session.info["ledger_events"]
    if events:
        ledger.update_head(current.store, current.layout.ledger_head)


def form_ids(name: str) -> list[int]:
    """Every integer value of a form field (checkboxes of a bulk action)."""
    ids = []
    for value in request.form.getlist(name):
        if not value.isascii() or not value.isdigit() or len(value) > 12:
            raise BadRequest(f"bad {name}")
        ids.append(int(value))
    return ids


def record(
    session: Session,
    event: str,
    *,
    item_ref: str | None,
    sha256: str | None,
    detail: Mapping[str, str | int],
) -> None:
    """Append an event to the evidence ledger in the same transaction as the action."""
    session.info["ledger_events"] = session.info.get("ledger_events", 0) + 1
    ledger.record(
        session,
        event=event,
        journalist=unlocked().journalist,
        item_ref=item_ref,
        sha256=sha256,
        detail=detail,
        now=now(),
    )
