"""Getting a passphrase from the person at the station, or from a file descriptor.

Scripts (the demo, the tests) hand the passphrase over a pipe with ``--passphrase-fd N``;
people type it at a ``getpass`` prompt, which never echoes it. Nothing here stores it. This
is the only place in the station that asks for a passphrase.

One command may need several passphrases. With a file descriptor each is read as one line,
in the order the command's help gives; at a terminal each is asked for by name.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable

from common.secret_input import read_line_from_fd
from common.secret_input import terminal_available as terminal_available
from journalist_ui.errors import StationError

#: Shortest passphrase accepted for new keys.
MIN_LENGTH = 12

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


def prompt() -> Prompt:
    """The terminal prompt, or NoTerminalError when there is no terminal to ask on."""
    if not terminal_available():
        raise NoTerminalError()
    return getpass.getpass


def existing_source(fd: int | None) -> Prompt:
    """``ask(what)`` for the passphrase of existing keys: a line from ``fd``, or a prompt."""

    def ask(what: str) -> str:
        if fd is not None:
            return read_from_fd(fd)
        return ask_existing(prompt(), what)

    return ask


def new_source(fd: int | None) -> Prompt:
    """``ask_new(what)`` for a new passphrase: a line from ``fd``, or asked twice; checked."""

    def ask(what: str) -> str:
        if fd is not None:
            return check_new(read_from_fd(fd))
        return ask_new(prompt(), what)

    return ask
