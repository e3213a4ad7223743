"""The transfer client's own error root and its kinds.

:class:`TransferError` is an expected failure of ``dropbox-transfer``: its message is one
clear line, fit to print as it is (text that came from the server is cleaned first).
"""

from __future__ import annotations


class TransferError(Exception):
    """An expected failure of a transfer; its message is one clear line."""


class UsageError(TransferError):
    """The command line cannot work as given (exit status 2)."""


class ServerRefused(TransferError):
    """The server answered with an error status."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class WireError(TransferError):
    """An envelope download failed: the connection, or an answer that is not what the sync
    API's envelope endpoint sends (docs/format.md section 9)."""


class Unreachable(WireError):
    """No connection to the server could be made (refused, unreachable, timed out, the
    SOCKS proxy failed); the message says which server and why."""


class AnswerBroken(WireError):
    """The connection broke (closed, reset, timed out) before the whole body arrived.

    The bytes that did arrive are in the file; the caller's ``wrote`` callback counted them.
    """
