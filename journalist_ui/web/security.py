"""The station UI's request and response policy.

Applied to every request, before any view runs:

- the Host header must name this server on loopback (``127.0.0.1:<port>`` or
  ``localhost:<port>``), which defeats DNS rebinding: a hostile page whose name resolves to
  127.0.0.1 still sends its own name as Host; an ``Origin`` header, when present and not
  ``null``, must name it too;
- every state-changing request (not GET or HEAD) carries the browser session's CSRF token in
  the form field ``csrf_token`` (compared in constant time);

and to every response: the strict header set (no inline script or style, nothing cached, no
referrer, no framing, same-origin isolation, no type sniffing). Error pages never show an
exception's text, and the werkzeug and gunicorn access loggers are silenced.
"""

from __future__ import annotations

import hmac
from typing import Final

from flask import Flask, render_template, request
from flask_babel import gettext, lazy_gettext
from werkzeug.exceptions import BadRequest, Forbidden
from werkzeug.wrappers import Response

from common import web as common_web
from common.web import SAFE_METHODS, strict_headers

CSRF_FIELD: Final = "csrf_token"

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: For a decrypted image or text file shown in the browser: nothing may run or load, and the
#: document is sandboxed (a unique origin, no scripts, no forms, no navigation).
SANDBOX_POLICY: Final = "default-src 'none'; img-src 'self'; style-src 'none'; sandbox"

SECURITY_HEADERS: Final = strict_headers(
    CONTENT_SECURITY_POLICY,
    {
        "Pragma": "no-cache",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    },
)


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def check_host(port: int) -> None:
    """Refuse a request whose Host (or Origin) is not this loopback server."""
    hosts = allowed_hosts(port)
    if request.host not in hosts:
        raise BadRequest("unexpected Host")
    origin = request.headers.get("Origin")
    # Under Referrer-Policy no-referrer, browsers send "Origin: null" with form posts; the
    # CSRF token and the SameSite=Strict cookie still guard those.
    if origin not in (None, "null") and origin not in {f"http://{h}" for h in hosts}:
        raise Forbidden("cross-origin request")


def check_csrf(expected: str) -> None:
    """Refuse a state-changing request unless its form carries ``expected``."""
    if request.method in SAFE_METHODS:
        return
    token = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Forbidden("missing or wrong CSRF token")


def add_security_headers(response: Response) -> Response:
    """Set the strict headers; a view may only have set a stricter (sandbox) CSP itself."""
    for name, value in SECURITY_HEADERS.items():
        if name == "Content-Security-Policy" and response.headers.get(name) == SANDBOX_POLICY:
            continue
        response.headers[name] = value
    return response


#: Error pages, in the page's language (lazy: translated when the page is rendered).
_TEXTS: Final = {
    400: (lazy_gettext("Bad request"), lazy_gettext("The request could not be understood.")),
    403: (
        lazy_gettext("Refused"),
        lazy_gettext(
            "This request was refused. If you were filling in a form, reload the page and "
            "try again (forms expire when the station locks)."
        ),
    ),
    404: (
        lazy_gettext("Not found"),
        lazy_gettext("There is nothing at this address (it may have been deleted)."),
    ),
    405: (lazy_gettext("Not allowed"), lazy_gettext("This page cannot be used that way.")),
    413: (
        lazy_gettext("Too large"),
        lazy_gettext("What was sent is larger than this page accepts."),
    ),
}


def render_error(code: int, message: str | None = None) -> tuple[str, int]:
    title, text = _TEXTS.get(code, (None, None))
    if code >= 500:
        title = gettext("Station error")
        text = gettext("Something went wrong inside the station. Try again.")
    elif title is None:
        title = gettext("Error")
        text = gettext("Something went wrong; nothing was changed.")
    return (
        render_template("error.html", code=code, title=title, message=message or text),
        code,
    )


def register_error_pages(app: Flask) -> None:
    common_web.register_error_pages(app, render_error)
