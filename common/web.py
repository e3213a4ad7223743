"""The strict response policy that the source interface, the sync API and the station share.

The header set, the dropping of access-log records and the error-page handlers exist once,
here, so that a fix to one reaches every web interface. Each interface supplies its own
Content-Security-Policy and its own error page (the source interface translates its pages).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final

from flask import Flask, current_app
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: Loggers whose records would describe requests (URL, time, client); never emitted.
ACCESS_LOGGERS: Final = ("werkzeug", "gunicorn.access")

#: Renders the error page for an HTTP status: (body, status).
ErrorRenderer = Callable[[int], tuple[str, int]]


def strict_headers(csp: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The header set every response carries: nothing cached, no referrer, no framing,
    same-origin isolation, no type sniffing, and the interface's own ``csp``."""
    headers = {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
    }
    headers.update(extra or {})
    return headers


class DropAccessLogs(logging.Filter):
    """Drops every record of the access loggers, whatever handler would write it."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return not any(name == n or name.startswith(n + ".") for n in ACCESS_LOGGERS)


def install_log_filters() -> None:
    """Put :class:`DropAccessLogs` on the access loggers (once; idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropAccessLogs) for f in logger.filters):
            logger.addFilter(DropAccessLogs())


def register_error_pages(app: Flask, render: ErrorRenderer) -> None:
    """Answer every HTTP error and every unhandled exception with ``render``'s page.

    The page never shows an exception's text. 405 keeps its Allow header and 429 its
    Retry-After, which clients need to act on the refusal.
    """

    def http_error(error: HTTPException) -> ResponseReturnValue:
        code = error.code or 500
        response = current_app.make_response(render(code if 400 <= code < 600 else 500))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        if error.response is not None and "Retry-After" in error.response.headers:
            response.headers["Retry-After"] = error.response.headers["Retry-After"]
        return response

    def server_error(_error: Exception) -> ResponseReturnValue:
        return render(500)

    app.register_error_handler(HTTPException, http_error)
    # Unhandled exceptions arrive here after Flask logged them.
    app.register_error_handler(500, server_error)
