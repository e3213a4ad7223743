"""Serving the station UI on loopback with werkzeug's threaded server.

Only 127.0.0.1 is accepted as the address: the station UI is for the person at this
machine. A background thread locks idle sessions even when no request arrives; on exit
(Ctrl+C, SIGTERM) every session is locked.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime
from types import FrameType

from werkzeug.serving import make_server

from journalist_ui.errors import StationError
from journalist_ui.web.app import UISettings, create_app
from journalist_ui.web.context import STATE_KEY, StationState

LOOPBACK = "127.0.0.1"
#: How often idle sessions are looked for, in seconds.
REAPER_INTERVAL = 5.0


def check_host(host: str) -> str:
    if host != LOOPBACK:
        raise StationError(
            f"the station UI listens on {LOOPBACK} only, not on {host!r}: it must never be "
            "reachable from another machine"
        )
    return host


def serve(
    settings: UISettings,
    clock: Callable[[], datetime],
    *,
    host: str = LOOPBACK,
    ready: Callable[[str], None] = lambda _url: None,
) -> None:
    """Run the UI until interrupted; ``ready(url)`` is called once the port is bound."""
    check_host(host)
    app = create_app(settings, clock)
    state: StationState = app.extensions[STATE_KEY]
    try:
        server = make_server(host, settings.port, app, threaded=True)
    except OSError as exc:
        raise StationError(f"cannot listen on {host}:{settings.port}: {exc.strerror}") from None
    stop = threading.Event()

    def reap() -> None:
        while not stop.wait(REAPER_INTERVAL):
            state.sessions.expire()

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, terminate)
    reaper = threading.Thread(target=reap, name="idle-lock", daemon=True)
    reaper.start()
    try:
        ready(f"http://{host}:{server.server_port}/")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        state.sessions.lock_all()
        signal.signal(signal.SIGTERM, previous)
