"""Getting a passphrase from the person at the station, or from a file descriptor.

Scripts (the demo, the tests) hand the passphrase over a pipe with ``--passphrase-fd N``;
people type it at a ``getpass`` prompt, which never echoes it. Nothing here stores it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from journalist_ui.errors import StationError

#: Shortest passphrase accepted for new keys.
MIN_LENGTH = 12
#: Longest passphrase read from a file descriptor, in bytes (more is surely a mistake).
MAX_BYTES = 4096

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


def terminal_available() -> bool:
    """Whether ``getpass`` can prompt on a terminal (it uses /dev/tty, not stdin)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def read_from_fd(fd: int) -> str:
    """Read one line from fd (up to a newline or the end) and drop the trailing newline."""
    data = bytearray()
    try:
        while b"\n" not in data and len(data) <= MAX_BYTES:
            block = os.read(fd, 512)
            if not block:
                break
            data += block
    except OSError as exc:
        raise PassphraseInputError(
            f"cannot read the passphrase from file descriptor {fd}: {exc.strerror}"
        ) from None
    line = bytes(data).split(b"\n", 1)[0]
    if len(line) > MAX_BYTES:
        raise PassphraseInputError(f"the passphrase is longer than {MAX_BYTES} bytes")
    try:
        passphrase = line.decode("utf-8")
    except UnicodeDecodeError:
        raise PassphraseInputError("the passphrase is not valid UTF-8") from None
    if not passphrase:
        raise PassphraseInputError(f"file descriptor {fd} gave an empty passphrase")
    return passphrase


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
