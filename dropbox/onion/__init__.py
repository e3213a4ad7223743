"""Tor onion services for the server, through tor's control protocol (stem).

This is the only package that imports stem. It connects to a tor that is already running
(a control socket or a loopback control port, with cookie authentication:
:mod:`dropbox.onion.control`) or launches a private tor process of its own
(:mod:`dropbox.onion.launch`), and publishes two ephemeral onion services
(:mod:`dropbox.onion.services`) from persistent keys (:mod:`dropbox.onion.keys`), through
the connection in :mod:`dropbox.onion.tor`.

Every failure is an :class:`OnionError` whose message says what to do about it.
"""

from dropbox.onion.control import SYSTEM_CONTROL_SOCKET, ControlAddress
from dropbox.onion.errors import (
    OnionError,
    PublicationTimeout,
    TorAuthenticationError,
    TorRefused,
    TorUnreachable,
)
from dropbox.onion.keys import (
    API_KEY_FILE,
    ONION_DIR,
    SOURCE_KEY_FILE,
    client_auth_key,
    client_auth_private_line,
    onion_dir,
    read_key,
)
from dropbox.onion.launch import LAUNCH_TIMEOUT
from dropbox.onion.services import TOR_DIR, ServerOnions, TorChoice
from dropbox.onion.tor import (
    DEFAULT_PUBLISH_TIMEOUT,
    MAX_STREAMS,
    VIRTUAL_PORT,
    OnionService,
    Tor,
)

__all__ = [
    "API_KEY_FILE",
    "DEFAULT_PUBLISH_TIMEOUT",
    "LAUNCH_TIMEOUT",
    "MAX_STREAMS",
    "ONION_DIR",
    "SOURCE_KEY_FILE",
    "SYSTEM_CONTROL_SOCKET",
    "TOR_DIR",
    "VIRTUAL_PORT",
    "ControlAddress",
    "OnionError",
    "OnionService",
    "PublicationTimeout",
    "ServerOnions",
    "Tor",
    "TorAuthenticationError",
    "TorChoice",
    "TorRefused",
    "TorUnreachable",
    "client_auth_key",
    "client_auth_private_line",
    "onion_dir",
    "read_key",
]
