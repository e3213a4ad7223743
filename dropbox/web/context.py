"""What a request can reach: the app's services and the current source session.

Everything hangs off the app object (``app.extensions["postern"]``), made by
:func:`dropbox.app.create_app`; nothing here is a module-level singleton. The views (pages,
and the submission paths of :mod:`dropbox.web.api`) use these helpers:

- :func:`services` for the settings, database, blob store, instance and clock;
- :func:`current_session`, :func:`ensure_session`, :func:`update_session`,
  :func:`rotate_session`, :func:`end_session` for the server-side session (the cookie is
  written by :func:`save_session_cookie`). A session read by a request is an immutable
  snapshot; a change goes through :func:`update_session` (or :func:`rotate_session`), which
  stores it in the database for every process;
- :func:`logged_in_source` to learn which source is logged in;
- :func:`check_csrf_token` (raises 403) or :func:`csrf_token_matches` (a bool) for views that
  read the CSRF token themselves.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, cast

from flask import current_app, g, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from dropbox.services import ServerServices
from dropbox.web.sessions import SESSION_COOKIE, SessionStore, SourceSession
from dropbox.web.throttle import DerivationBudgets, LoginAttempts

EXTENSION_KEY: Final = "postern"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-Postern-CSRF"

#: Handles ``POST /submit`` once the source is known to be logged in and acknowledged.
SubmitHandler = Callable[[], ResponseReturnValue]


@dataclass(frozen=True)
class Services(ServerServices):
    """The source interface's dependencies, made once in :func:`dropbox.app.create_app`."""

    sessions: SessionStore
    derivations: DerivationBudgets
    login_attempts: LoginAttempts
    submit_handler: SubmitHandler


def services() -> Services:
    return cast(Services, current_app.extensions[EXTENSION_KEY])


# -- the session of this request ---------------------------------------------------------------


@dataclass
class _RequestSession:
    cookie: str | None
    state: SourceSession | None
    #: The request came with a cookie that names no live session: clear it.
    stale_cookie: bool = False
    #: The cookie changed (new or rotated session): send it.
    send_cookie: bool = False
    #: The session ended: clear the cookie.
    clear_cookie: bool = False


def _request_session() -> _RequestSession:
    current = g.get("postern_session")
    if current is None:
        current = _RequestSession(cookie=None, state=None)
        g.postern_session = current
    return cast(_RequestSession, current)


def load_session() -> None:
    """``before_request``: find the session named by the request's cookie, if any.

    Static files need no session: they come with a page, which read it (and marked it seen),
    and reading it would cost each of them a database write.
    """
    if request.endpoint == "static":
        g.postern_session = _RequestSession(cookie=None, state=None)
        return
    cookie = request.cookies.get(SESSION_COOKIE)
    state = services().sessions.get(cookie) if cookie else None
    g.postern_session = _RequestSession(
        cookie=cookie if state is not None else None,
        state=state,
        stale_cookie=cookie is not None and state is None,
    )


def current_session() -> SourceSession | None:
    return _request_session().state


def ensure_session() -> SourceSession:
    """The current session, made now if there is none (a cookie is sent with the response)."""
    current = _request_session()
    if current.state is None:
        current.cookie, current.state = services().sessions.create()
        current.send_cookie = True
        current.clear_cookie = False
    return current.state


SessionChange = Callable[[SourceSession], SourceSession]


def update_session(change: SessionChange) -> SourceSession:
    """Apply ``change`` to the session (made now if there is none) and store it.

    ``change`` may run more than once, on the newest content, if other requests of the session
    changed it meanwhile; if it raises, nothing is stored.
    """
    ensure_session()
    current = _request_session()
    assert current.cookie is not None  # noqa: S101 - ensure_session gave the request one
    changed = services().sessions.update(current.cookie, change)
    if changed is None:  # the session ended meanwhile (expired, logged out elsewhere)
        current.cookie, current.state = services().sessions.create()
        current.send_cookie = True
        current.clear_cookie = False
        changed = services().sessions.update(current.cookie, change)
    current.state = changed
    assert changed is not None  # noqa: S101 - a session made a moment ago
    return changed


def rotate_session(change: SessionChange) -> SourceSession:
    """Apply ``change`` and give the session a new cookie (when a source logs in: no
    session fixation). A session made in this request has a cookie no one else saw."""
    ensure_session()
    current = _request_session()
    if current.send_cookie:
        return update_session(change)
    assert current.cookie is not None  # noqa: S101 - ensure_session gave the request one
    rotated = services().sessions.rotate(current.cookie, change)
    if rotated is None:
        current.cookie, current.state = None, None
        return update_session(change)
    current.cookie, current.state = rotated
    current.send_cookie = True
    return current.state


def end_session() -> None:
    """Forget the session and everything in it; the cookie is cleared."""
    current = _request_session()
    if current.cookie is not None:
        services().sessions.drop(current.cookie)
    current.cookie, current.state = None, None
    current.send_cookie = False
    current.clear_cookie = True


def save_session_cookie(response: Response) -> Response:
    """``after_request``: send, or clear, the session cookie."""
    current = _request_session()
    if current.send_cookie and current.cookie is not None:
        response.set_cookie(
            SESSION_COOKIE,
            current.cookie,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=services().settings.secure_cookie,
        )
    elif current.clear_cookie or current.stale_cookie:
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=services().settings.secure_cookie,
        )
    return response


def csrf_token() -> str:
    """The session's CSRF token, for a form (makes the session if needed)."""
    return ensure_session().csrf_token


def logged_in_source() -> tuple[SourceSession, int] | None:
    """The session and ``sources.id`` of the logged-in source, or None."""
    state = current_session()
    if state is None or state.source_row_id is None:
        return None
    return state, state.source_row_id


# -- CSRF --------------------------------------------------------------------------------------


# An HTTPException, not a DropboxError: raised anywhere in a request, Flask answers it with the
# 403 error page, which is what every caller of check_csrf_token relies on.
class CSRFError(Forbidden):
    description = "The form was stale or did not come from this site."


def csrf_token_matches(token: str | None) -> bool:
    """Whether ``token`` is this session's CSRF token (compared in constant time)."""
    state = current_session()
    if state is None or not token:
        return False
    expected = state.csrf_token.encode("ascii")
    return hmac.compare_digest(expected, token.encode("utf-8", "replace"))


def check_csrf_token(token: str | None) -> None:
    """Raise :class:`CSRFError` (403) unless ``token`` is this session's CSRF token."""
    if not csrf_token_matches(token):
        raise CSRFError()
