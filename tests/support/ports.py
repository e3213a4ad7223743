"""Loopback ports: one that is free, and waiting until a process listens on one."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Final

HOST = "127.0.0.1"


class PortNotOpen(RuntimeError):
    """Nothing listened on the port in time, or the process meant to listen exited first."""


#: Ports handed out lie below the kernel's ephemeral range (32768-60999 by default), so that no
#: outgoing connection (a test's client, tor, HAProxy's checks) can take one between the moment
#: it is picked and the moment the server under test binds it. Each pytest-xdist worker draws
#: from its own slice, so two workers never pick the same port either.
_PORTS_LOW: Final = 10_000
_PORTS_HIGH: Final = 32_000
_SLICES: Final = 8
#: The ports handed out lately in this process: callers often pick several before binding any.
_recent: deque[int] = deque(maxlen=256)


#: The first slice of this run's workers: a second pytest run beside this one (`make test`
#: runs its PostgreSQL pass beside the main one) sets it past the slices the first run uses.
PORT_SLICE_ENV: Final = "POSTERN_TEST_PORT_SLICE"


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    first = os.environ.get(PORT_SLICE_ENV, "0")
    index += int(first) if first.isdigit() else 0
    width = (_PORTS_HIGH - _PORTS_LOW) // _SLICES
    start = _PORTS_LOW + (index % _SLICES) * width
    return range(start, start + width)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and that no outgoing connection will take."""
    ports = _slice()
    # Start at a random place so that ports from earlier runs in TIME_WAIT are rarely met.
    offset = random.SystemRandom().randrange(len(ports))
    for step in range(len(ports)):
        port = ports[(offset + step) % len(ports)]
        if port not in _recent and _bindable(port):
            _recent.append(port)
            return port
    raise PortNotOpen(f"no free port between {ports.start} and {ports.stop - 1}")


def is_listening(port: int, host: str = HOST, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to host:port is accepted now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    *,
    timeout: float = 60.0,
    log: Path | Callable[[], str] | None = None,
    what: str = "the server",
) -> None:
    """Return once 127.0.0.1:port accepts connections.

    Raises :class:`PortNotOpen` if ``process`` exits first or ``timeout`` seconds pass; the
    message ends with ``log`` (a file, or a function returning text), the process's output.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise PortNotOpen(
                f"{what} exited with status {process.returncode} before listening on "
                f"port {port}{_tail(log)}"
            )
        if is_listening(port, timeout=1.0):
            return
        if time.monotonic() >= deadline:
            raise PortNotOpen(
                f"{what} did not listen on port {port} within {timeout:g} s{_tail(log)}"
            )
        time.sleep(0.05)


def _tail(log: Path | Callable[[], str] | None, limit: int = 4000) -> str:
    if log is None:
        return ""
    try:
        text = log.read_text("utf-8", "replace") if isinstance(log, Path) else log()
    except OSError as exc:
        text = f"(no output: {exc})"
    return ":\n" + text[-limit:]
