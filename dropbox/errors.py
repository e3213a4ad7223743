"""The server's own error root.

:class:`DropboxError` is an expected failure of a server operation (a missing data directory,
a keyring that may not be installed, an I/O error). Its message is one clear line, fit to
print in the CLI as it is; it never carries secrets or a source's data.
"""

from __future__ import annotations


class DropboxError(Exception):
    """An expected failure of a server operation; its message is one clear line."""


class UsageError(DropboxError):
    """The ``dropbox`` command line cannot work as given; reported with exit status 2."""
