"""Keep threads free for pages while slow uploads stream in.

Over Tor a plain-form upload or a tus ``PATCH`` can hold a worker thread for minutes or hours.
Without a cap, enough of them would take every thread and the landing page would wait in
gunicorn's queue. :class:`UploadSlots` admits at most ``limit`` body-streaming requests at
once (a margin below the worker's thread count); the next one is answered at once with 503
and ``Retry-After`` (the tus client retries; the plain form shows a page), never queued.
"""

from __future__ import annotations

import threading
from typing import Final

from flask import Flask, g, request
from flask.typing import ResponseReturnValue

from dropbox.front import STREAMING_REQUESTS
from dropbox.web.security import render_error

_HELD: Final = "_postern_upload_slot"
EXTENSION_KEY: Final = "postern_upload_slots"


class UploadSlots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one upload slot")
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    def try_acquire(self) -> bool:
        return self._free.acquire(blocking=False)

    def release(self) -> None:
        self._free.release()


def _is_streaming() -> bool:
    return any(
        request.method == method and request.path.startswith(prefix)
        for method, prefix in STREAMING_REQUESTS
    )


def install(app: Flask, slots: UploadSlots) -> None:
    """Admit streaming requests through ``slots``; release the slot when the request ends."""
    app.extensions[EXTENSION_KEY] = slots

    def admit() -> ResponseReturnValue | None:
        if not _is_streaming():
            return None
        if not slots.try_acquire():
            page, status = render_error(503)
            return page, status, {"Retry-After": "30"}
        setattr(g, _HELD, True)
        return None

    def release(_error: BaseException | None) -> None:
        if g.pop(_HELD, False):
            slots.release()

    app.before_request(admit)
    app.teardown_request(release)
