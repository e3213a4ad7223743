"""The errors of the tor adapter: every one is an :class:`OnionError`, a :class:`DropboxError`
whose message says what the operator can do about it."""

from __future__ import annotations

from dropbox.errors import DropboxError


class OnionError(DropboxError):
    """Tor could not do what the server needed; the message says what to do."""


class TorUnreachable(OnionError):
    """No tor answers where we looked, or tor is not installed."""


class TorAuthenticationError(OnionError):
    """Tor refused our authentication on its control port."""


class TorRefused(OnionError):
    """Tor refused a command (ADD_ONION, DEL_ONION, ...)."""


class PublicationTimeout(OnionError):
    """A descriptor was not published in time."""
