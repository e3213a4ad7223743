"""Where a tor's control port is, and an authenticated control connection to it (stem).

Postern only uses cookie authentication: the control socket (Debian's ``/run/tor/control``)
or a control port on the loopback, guarded by a cookie file only this machine can read.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import stem
import stem.connection
import stem.control

from dropbox.onion.errors import OnionError, TorAuthenticationError, TorUnreachable

#: Where Debian's tor package puts its control socket.
SYSTEM_CONTROL_SOCKET: Final = Path("/run/tor/control")
#: A Unix socket path longer than this does not fit in sockaddr_un.
MAX_SOCKET_PATH: Final = 100


@dataclass(frozen=True)
class ControlAddress:
    """A tor control socket (``path``) or a control port on the loopback (``port``)."""

    path: Path | None = None
    port: int | None = None
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if (self.path is None) == (self.port is None):
            raise OnionError("a tor control address is either a socket path or a port")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise OnionError(f"tor control port {self.port} is not a TCP port (1 to 65535)")
        if self.port is not None and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise OnionError(
                f"tor's control port must be on the loopback, not {self.host!r}: cookie "
                "authentication only makes sense on this machine"
            )

    @classmethod
    def parse(cls, spec: str) -> ControlAddress:
        """``/run/tor/control`` (a socket), ``9051`` or ``127.0.0.1:9051`` (a port)."""
        if spec.startswith("/"):
            return cls(path=Path(spec))
        host, _, port = spec.rpartition(":")
        if not port.isdigit():
            raise OnionError(
                f"tor control address {spec!r} is neither a socket path (starting with /) "
                "nor a port (9051 or 127.0.0.1:9051)"
            )
        return cls(port=int(port), host=host or "127.0.0.1")

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"{self.host}:{self.port}"


def _probe(address: ControlAddress) -> None:
    """Fail early, with the system's reason, where nothing listens (stem would leak a socket)."""
    try:
        if address.path is not None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(10)
                probe.connect(str(address.path))
        else:
            assert address.port is not None  # noqa: S101 - ControlAddress guarantees it
            socket.create_connection((address.host, address.port), timeout=10).close()
    except OSError as exc:
        raise stem.SocketError(exc.strerror or str(exc)) from None


def connect(address: ControlAddress) -> stem.control.Controller:
    """An authenticated control connection to the tor at ``address`` (cookie authentication)."""
    # stem traces every command it sends, ADD_ONION's private key included: never below
    # warnings, whatever the process's logging says.
    logging.getLogger("stem").setLevel(logging.WARNING)
    try:
        if address.path is not None:
            if len(str(address.path)) > MAX_SOCKET_PATH:
                raise OnionError(f"the tor control socket path {address.path} is too long")
            _probe(address)
            controller = stem.control.Controller.from_socket_file(str(address.path))
        else:
            _probe(address)
            controller = stem.control.Controller.from_port(address.host, address.port)
    except stem.SocketError as exc:
        hint = (
            "is tor running (systemctl status postern-tor), and may this user open the socket "
            "(group debian-tor)?"
            if address.path is not None
            else "is tor running with this ControlPort?"
        )
        raise TorUnreachable(f"cannot reach tor's control {'socket' if address.path else 'port'} "
                             f"{address} ({exc}): {hint}") from None  # fmt: skip
    try:
        controller.authenticate()
    except stem.connection.MissingPassword:
        controller.close()
        raise TorAuthenticationError(
            f"tor at {address} asks for a control password; Postern uses cookie "
            "authentication: set CookieAuthentication 1 in the torrc (deploy/torrc)"
        ) from None
    except stem.connection.UnreadableCookieFile as exc:
        controller.close()
        raise TorAuthenticationError(
            f"cannot read tor's authentication cookie {exc.cookie_path} for {address}: "
            "add this user to tor's group and set CookieAuthFileGroupReadable 1"
        ) from None
    except stem.connection.AuthenticationFailure as exc:
        controller.close()
        raise TorAuthenticationError(
            f"tor at {address} refused authentication ({exc}); Postern uses cookie "
            "authentication (CookieAuthentication 1)"
        ) from None
    except stem.SocketError as exc:
        controller.close()
        raise TorUnreachable(f"tor at {address} closed the connection ({exc})") from None
    return controller
