"""A full disk, answered plainly: HTTP 507 with a page that says so, and ``Retry-After``.

Whatever fills up (the blob store, the upload store, the database: ENOSPC, EDQUOT, SQLite's
"database or disk is full", PostgreSQL's SQLSTATE 53100 ``disk_full``), the request that
needed the space gets this page instead of a generic 500, and only after everything it had
stored was removed again (the use cases see to that). Reading keeps working: pages, and the
replies of sources logged in (a session is read without being marked as seen). A new
session needs a database row, so a login or a new codename gets this page too. Once space
is freed, everything works again; nothing is remembered about the episode.

A database too busy to answer in time (a write lock held past SQLite's busy timeout, a
PostgreSQL lock or statement timeout, no free connection) is the same kind of moment, shorter:
503 with ``Retry-After`` (:data:`BUSY_RETRY_AFTER_SECONDS`), which the page's script waits
out before it asks again, as it does for the upload slots (dropbox/web/capacity.py).
"""

from __future__ import annotations

from typing import Final

from flask import Flask, current_app
from flask.typing import ResponseReturnValue

from dropbox.db import is_busy
from dropbox.storage import is_out_of_space
from dropbox.web.security import render_error

STATUS: Final = 507
#: When a source may try again: an operator has to free space first.
RETRY_AFTER_SECONDS: Final = 3600
#: When a source may try again after the database was busy: the moment passes by itself.
BUSY_RETRY_AFTER_SECONDS: Final = 15


def out_of_space_page(message: str | None = None) -> ResponseReturnValue:
    """The 507 page; ``message`` says what was not done (default: nothing was kept)."""
    body, status = render_error(STATUS, message)
    return body, status, {"Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close"}


def install(app: Flask) -> None:
    """Answer a full disk met anywhere in a view with the 507 page, and a busy database with
    503, not a 500."""

    def handle(error: Exception) -> ResponseReturnValue:
        if is_out_of_space(error):
            current_app.logger.error("a request failed: the disk is full")
            return out_of_space_page()
        if is_busy(error):
            body, status = render_error(503)
            return body, status, {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)}
        raise error  # not ours: Flask logs it and answers with the 500 page

    app.register_error_handler(Exception, handle)
