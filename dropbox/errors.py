"""The server's own error root.

:class:`DropboxError` is an expected failure of a server operation (a missing data directory,
a keyring that may not be installed, an I/O error). Its message is one clear line, fit to
print in the CLI as it is; it never carries secrets or a source's data.
"""

from __future__ import annotations

from collections.abc import Iterator


class DropboxError(Exception):
    """An expected failure of a server operation; its message is one clear line."""


class UsageError(DropboxError):
    """The ``dropbox`` command line cannot work as given; reported with exit status 2."""


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, the driver's error a SQLAlchemy error wraps (``.orig``), and the errors each
    was raised from or while handling, each once: everywhere the reason for a failure (a full
    disk, a busy database) may be found."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for following in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(following, BaseException):
                pending.append(following)
