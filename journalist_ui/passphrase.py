"""Getting a passphrase from the person at the station, or from a file descriptor.

Scripts (the demo, the tests) hand the passphrase over a pipe with ``--passphrase-fd N``;
people type it at a ``getpass`` prompt, which never echoes it. Nothing here stores it.
"""

from __future__ import annotations

from collections.abc import Callable

from common.secret_input import MAX_LINE_BYTES, read_line_from_fd
from common.secret_input import terminal_available as terminal_available
from journalist_ui.errors import StationError

#: Shortest passphrase accepted for new keys.
MIN_LENGTH = 12
#: Longest passphrase read from a file descriptor, in bytes (more is surely a mistake).
MAX_BYTES = MAX_LINE_BYTES

Prompt = Callable[[str], str]


class PassphraseInputError(StationError):
    """No usable passphrase could be obtained."""


class NoTerminalError(PassphraseInputError):
    """There is no terminal to prompt on, and no file descriptor was named."""

    def __init__(self) -> None:
        super().__init__(
            "no terminal to ask for the passphrase: "
            "pass it on a file descriptor with --passphrase-fd N"
        )


def read_from_fd(fd: int) -> str:
    """Read one line from fd (up to a newline or the end) and drop the trailing newline."""
    return read_line_from_fd(fd, PassphraseInputError)


def check_new(passphrase: str) -> str:
    """Refuse passphrases too short to protect new keys."""
    if len(passphrase) < MIN_LENGTH:
        raise PassphraseInputError(
            f"the passphrase must be at least {MIN_LENGTH} characters long "
            f"(this one has {len(passphrase)})"
        )
    return passphrase


def ask_existing(prompt: Prompt, what: str) -> str:
    """Ask once for the passphrase of existing keys."""
    passphrase = prompt(f"Passphrase for {what}: ")
    if not passphrase:
        raise PassphraseInputError("no passphrase given")
    return passphrase


def ask_new(prompt: Prompt, what: str) -> str:
    """Ask twice for a new passphrase; both answers must match and be long enough."""
    first = check_new(prompt(f"New passphrase for {what} (at least {MIN_LENGTH} characters): "))
    if prompt("Repeat the passphrase: ") != first:
        raise PassphraseInputError("the two passphrases do not match")
    return first
