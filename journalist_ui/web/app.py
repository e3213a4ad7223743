"""The station UI's Flask application: :func:`create_app` and its per-request policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from common.web import SAFE_METHODS, install_log_filters
from journalist_ui.web import (
    auth,
    imports,
    items,
    language,
    ledger,
    outgoing,
    rewrap,
    search,
    security,
    sources,
)
from journalist_ui.web.context import STATE_KEY, StationState
from journalist_ui.web.jobs import Jobs
from journalist_ui.web.sessions import SessionTable

COOKIE_NAME = "postern_station"
#: The compiled catalogues of the station's languages (deploy/i18n.sh).
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
#: Endpoints that work while the station is locked.
PUBLIC_ENDPOINTS = frozenset(
    {"auth.unlock", "auth.unlock_post", "auth.lock", "auth.locked", "language.choose", "static"}
)
#: Largest request body: forms only (a reply, a pasted OpenPGP key); files never come in.
MAX_FORM_BYTES = 1024 * 1024


@dataclass(frozen=True)
class UISettings:
    """How one station UI runs."""

    home: Path
    port: int = 8090
    #: A session with no request for this long is locked (keys and store dropped).
    idle_timeout: timedelta = timedelta(minutes=10)
    #: Sources per page of the source list.
    page_size: int = 100


def create_app(settings: UISettings, clock: Callable[[], datetime]) -> Flask:
    """The station UI for the station home ``settings.home``.

    ``clock`` returns the current time (timezone-aware UTC); every date and ledger hour comes
    from it. Sessions, unlocked keys and running imports live in the returned app only.
    """
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(MAX_CONTENT_LENGTH=MAX_FORM_BYTES, MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES)
    state = StationState(
        settings=settings,
        clock=clock,
        sessions=SessionTable(settings.idle_timeout, clock),
        jobs=Jobs(),
    )
    app.extensions[STATE_KEY] = state
    install_log_filters()
    security.register_error_pages(app)

    for module in (auth, sources, items, search, imports, outgoing, ledger, rewrap):
        app.register_blueprint(module.blueprint)

    @app.before_request
    def _policy() -> ResponseReturnValue | None:
        security.check_host(settings.port)
        browser = state.sessions.get(request.cookies.get(COOKIE_NAME))
        g.browser = browser
        security.check_csrf(browser.csrf)
        if browser.unlocked is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if request.method in SAFE_METHODS:
                return redirect(url_for("auth.unlock"))
            raise Forbidden("locked")
        return None

    # After _policy: the language choice in a URL goes to the browser session it found.
    language.install(app, str(TRANSLATIONS))

    @app.after_request
    def _headers(response: Response) -> Response:
        browser = g.get("browser")
        if browser is not None and request.cookies.get(COOKIE_NAME) != browser.token:
            response.set_cookie(
                COOKIE_NAME, browser.token, httponly=True, samesite="Strict", path="/"
            )
        return security.add_security_headers(response)

    @app.context_processor
    def _template_globals() -> dict[str, object]:
        browser = g.get("browser")
        notices: list[tuple[str, str]] = []
        if browser is not None:
            notices, browser.notices = list(browser.notices), []
        unlocked = browser.unlocked if browser is not None else None
        return {
            "csrf_token": browser.csrf if browser is not None else "",
            "journalist": unlocked.journalist if unlocked is not None else None,
            "notices": notices,
            **language.language_context(),
        }

    return app
