"""The security policy applied to every request and response of the source interface.

- the header set of docs/format.md section 8 on every response, error pages and static files
  included;
- a CSRF check on every state-changing request, before the view runs;
- simple error pages that never show a stack trace or an exception's text;
- no request logging (common.web drops the access loggers' records).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from flask import Blueprint, Flask, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from common import web as common_web
from common.web import SAFE_METHODS, strict_headers
from dropbox.web.context import CSRF_FIELD, CSRF_HEADER, CSRFError, check_csrf_token

SECURITY_HEADERS: Final = strict_headers(
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

#: Largest body of an ordinary (urlencoded) form: a codename, a button, a token.
FORM_MAX_BYTES: Final = 64 * 1024

_CSRF_IN_VIEW: Final = "_postern_csrf_in_view"

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


def csrf_checked_in_view(view: View) -> View:
    """Mark a view that checks the CSRF token itself (with :func:`check_csrf_token`).

    For views that must not have their body parsed before they run: a streamed multipart
    form (the token is its first part) or an upload. The generic check reads only the
    ``X-Postern-CSRF`` header or a small urlencoded form; it never parses multipart bodies.
    """
    setattr(view, _CSRF_IN_VIEW, True)
    return view


def csrf_checked_in_blueprint(blueprint: Blueprint) -> Blueprint:
    """Mark every view of a blueprint as checking the CSRF token itself.

    For the tus blueprint, whose protocol answers 412 for a missing ``Tus-Resumable`` header
    before it looks at the session and the token (docs/format.md section 8.3).
    """
    setattr(blueprint, _CSRF_IN_VIEW, True)
    return blueprint


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def csrf_protect() -> None:
    """``before_request``: refuse a state-changing request without the session's token."""
    if request.method in SAFE_METHODS or request.endpoint is None:
        return  # an unknown URL or method: routing answers 404 or 405, nothing changes
    view = current_app.view_functions.get(request.endpoint)
    if view is None or getattr(view, _CSRF_IN_VIEW, False):
        return
    blueprint = current_app.blueprints.get(request.blueprint or "")
    if blueprint is not None and getattr(blueprint, _CSRF_IN_VIEW, False):
        return
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        if request.mimetype != "application/x-www-form-urlencoded":
            raise CSRFError()
        length = request.content_length
        if length is None or length > FORM_MAX_BYTES:
            raise RequestEntityTooLarge()
        request.max_content_length = FORM_MAX_BYTES
        token = request.form.get(CSRF_FIELD)
    check_csrf_token(token)


# -- error pages -------------------------------------------------------------------------------


def _error_text(code: int) -> tuple[str, str]:
    """Title and explanation of an error page, in the source's language."""
    if code == 400:
        return gettext("Bad request"), gettext("The server could not understand that request.")
    if code == 403:
        return gettext("Not allowed"), gettext(
            "This request was refused. If you were filling in a form, it may have expired: "
            "go back, reload the page and try again."
        )
    if code == 404:
        return gettext("Page not found"), gettext("There is no page at this address.")
    if code == 405:
        return gettext("Not allowed"), gettext("This page cannot be used that way.")
    if code == 413:
        return gettext("Too large"), gettext(
            "What you sent is larger than this server accepts. Nothing of it was kept."
        )
    if code == 429:
        return gettext("Too many attempts"), gettext("Too many attempts. Wait a few minutes.")
    if code == 501:
        return gettext("Not available"), gettext("This is not available yet.")
    if code == 503:
        return gettext("Not available"), gettext("The service is not available right now.")
    if code == 507:
        return gettext("Out of space"), gettext(
            "The server is out of storage space. Nothing of what you sent was kept. "
            "Please try again later."
        )
    if code >= 500:
        return gettext("Server error"), gettext(
            "Something went wrong on the server. Nothing you sent was kept from this request. "
            "Try again later."
        )
    return gettext("Error"), gettext("The request could not be completed.")


def render_error(code: int, message: str | None = None) -> tuple[str, int]:
    title, text = _error_text(code)
    return render_template("error.html", code=code, title=title, message=message or text), code


def register_error_pages(app: Flask) -> None:
    common_web.register_error_pages(app, render_error)
