"""Log records of requests, held back and reported once a day, counted.

A log line is timed by whoever stores it (journald stamps every line to the microsecond), so
a line written while a request runs dates that request: a source's failed upload, a login
that hit a bug. The operator still needs to learn that something fails. So every record
logged inside a request (Flask's request context) goes to the app's :class:`RequestLog`
instead of the log: counted by logger, level and message, and written by :meth:`flush`, which
the server's daily job calls (dropbox/sweep.py), as one line per distinct message with its
count. Records logged outside requests (start, the sweep, the daily job) pass at once.

The messages themselves name no request and no source (dropbox/app.py logs an exception's
type and place only); the count and the day are all that is kept of when.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Final

from flask import current_app, has_request_context
from flask.logging import default_handler

#: Where an app keeps its RequestLog (``app.extensions``).
EXTENSION_KEY: Final = "postern_request_log"


class RequestLog:
    """The records held back from requests, until :meth:`flush`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[tuple[str, int, str]] = Counter()

    def hold(self, record: logging.LogRecord) -> None:
        with self._lock:
            self._held[(record.name, record.levelno, record.getMessage())] += 1

    def flush(self) -> int:
        """Log each distinct held message once, with its count; return how many lines."""
        with self._lock:
            held, self._held = self._held, Counter()
        for (name, level, message), count in sorted(held.items()):
            logging.getLogger(name).log(level, "%s (%d time(s) since the last daily report)",
                                        message, count)  # fmt: skip
        return len(held)


def _hold_request_records(record: logging.LogRecord) -> bool:
    """A handler filter: records of a request go to its app's RequestLog, others pass."""
    if not has_request_context():
        return True
    held = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(held, RequestLog):
        return True
    held.hold(record)
    return False


def install(extensions: dict[str, object]) -> RequestLog:
    """Give an app (its ``extensions``) a RequestLog and hold its requests' records there.

    The filter sits on Flask's default handler, the one that writes the ``dropbox`` loggers'
    records (app.logger and every module logger below it); it is stateless and added once.
    """
    log = RequestLog()
    extensions[EXTENSION_KEY] = log
    if _hold_request_records not in default_handler.filters:
        default_handler.addFilter(_hold_request_records)
    return log
