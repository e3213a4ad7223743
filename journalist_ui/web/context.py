"""What views reach through the request: the app's state, the browser session, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, cast

from flask import current_app, g
from werkzeug.exceptions import Forbidden

from journalist_ui.web.jobs import Jobs
from journalist_ui.web.sessions import BrowserSession, SessionTable

if TYPE_CHECKING:
    from journalist_ui.unlock import Unlocked
    from journalist_ui.web.app import UISettings

STATE_KEY = "postern_station"


@dataclass
class StationState:
    """Everything one station UI app holds in memory (created by create_app)."""

    settings: UISettings
    clock: Callable[[], datetime]
    sessions: SessionTable
    jobs: Jobs


def state() -> StationState:
    return cast(StationState, current_app.extensions[STATE_KEY])


def browser() -> BrowserSession:
    return cast(BrowserSession, g.browser)


def unlocked() -> Unlocked:
    current = browser().unlocked
    if current is None:
        raise Forbidden("locked")
    return cast("Unlocked", current)


def now() -> datetime:
    return state().clock()


def today() -> date:
    return now().date()


def notice(text: str, kind: str = "ok") -> None:
    """Show ``text`` on the next page (kind "ok" or "error")."""
    browser().notices.append((kind, text))
