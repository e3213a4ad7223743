"""Why a plain-form submission was refused: :class:`NoJsError` and its codes."""

from __future__ import annotations

from typing import Final, Literal

from dropbox.errors import DropboxError

ErrorCode = Literal["csrf", "too_large", "message_too_long", "too_many_files", "empty", "malformed"]

_DEFAULT_MESSAGES: Final[dict[ErrorCode, str]] = {
    "csrf": "The form has expired or did not come from this page. Reload the page and try again.",
    "too_large": "The submission is larger than this server accepts.",
    "message_too_long": "The message is longer than this server accepts.",
    "too_many_files": "The submission has more files than this server accepts.",
    "empty": "Write a message or choose at least one file.",
    "malformed": "The submission could not be read.",
}


class NoJsError(DropboxError):
    """A refused plain-form submission; nothing of it was kept.

    ``code`` says why (the view maps it to a status and a page); ``message`` is a fixed text
    that never contains anything the source sent.
    """

    def __init__(
        self, code: ErrorCode, message: str | None = None, *, unreadable: bool = False
    ) -> None:
        self.code: ErrorCode = code
        self.message: str = _DEFAULT_MESSAGES[code] if message is None else message
        #: The request body itself could not be read (its framing is broken).
        self.unreadable = unreadable
        super().__init__(f"{code}: {self.message}")
