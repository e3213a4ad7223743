"""Reading a passphrase handed over on a file descriptor, or checking that one can be asked.

Scripts (the demo, the tests, an operator's automation) pass passphrases on a pipe with
``--passphrase-fd N``; people type them at a ``getpass`` prompt. Each program raises its own
error class, which the caller names, so that a failure here is reported like any other of
that program's failures.
"""

from __future__ import annotations

import os
from collections.abc import Callable

#: Longest line read from a file descriptor, in bytes: more is surely a mistake.
MAX_LINE_BYTES = 4096

ErrorFactory = Callable[[str], Exception]


def terminal_available() -> bool:
    """Whether ``getpass`` can prompt on a terminal (it uses /dev/tty, not stdin)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def read_line_from_fd(fd: int, error: ErrorFactory, *, what: str = "passphrase") -> str:
    """One line from ``fd`` (up to a newline or the end), without its newline.

    Reads byte blocks rather than through a buffered file object, so that several lines
    on one descriptor can be read one at a time by successive calls. Raises ``error(msg)``
    for an unreadable descriptor, an overlong or empty line, or bytes that are not UTF-8.
    """
    data = bytearray()
    try:
        while b"\n" not in data and len(data) <= MAX_LINE_BYTES:
            block = os.read(fd, 1)
            if not block:
                break
            data += block
    except OSError as exc:
        raise error(f"cannot read the {what} from file descriptor {fd}: {exc.strerror}") from None
    line = bytes(data).split(b"\n", 1)[0]
    if len(line) > MAX_LINE_BYTES:
        raise error(f"the {what} is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"the {what} is not valid UTF-8") from None
    if not text:
        raise error(f"file descriptor {fd} gave an empty {what}")
    return text
