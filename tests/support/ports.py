"""Loopback ports: one that is free, and waiting until a process listens on one."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"


class PortNotOpen(RuntimeError):
    """Nothing listened on the port in time, or the process meant to listen exited first."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


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
