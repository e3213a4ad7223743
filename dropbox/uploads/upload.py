"""An upload as the store knows it, its errors, and the names of its files.

See :mod:`dropbox.uploads` for the layout, the locking and what the store never sees.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from dropbox.errors import DropboxError
from dropbox.storage import OutOfSpace
from dropbox.uploads.sidecar import key_hash, utc

#: How long an upload may take before it expires (docs/format.md section 8.3).
DEFAULT_TTL = timedelta(hours=24)
#: The most bytes read from a request body (or a .part file) in one piece.
PIECE = 64 * 1024

UPLOAD_ID = re.compile(r"\A[0-9a-f]{32}\Z")
PART_NAME = re.compile(r"\A([0-9a-f]{32})\.part\Z")
SIDECAR_NAME = re.compile(r"\A([0-9a-f]{32})\.json\Z")
TEMPORARY_NAME = re.compile(r"\A\.[0-9a-f]{32}\.json\.tmp\Z")
OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


class UploadError(DropboxError):
    """Root of the errors of the upload store."""


class UploadNotFound(UploadError):
    """No upload has this id (or the id is malformed)."""


class UploadBusy(UploadError):
    """Another request is appending to (or completing) this upload right now."""


class UploadStoreFull(UploadError, OutOfSpace):
    """The disk (or the quota) is full: nothing of the failed write was kept."""


class UploadConflict(UploadError):
    """A chosen upload id is taken by an upload that is not the one asked for."""


class UploadIncomplete(UploadError):
    """The upload has not received all its announced bytes yet."""


class OffsetMismatch(UploadError):
    """The caller expected another offset than the upload's current one."""

    def __init__(self, offset: int) -> None:
        super().__init__("the upload is at another offset")
        self.offset = offset


class StreamInterrupted(UploadError):
    """Reading the source stream failed; the bytes read before are kept (up to ``offset``)."""

    def __init__(self, offset: int) -> None:
        super().__init__("the stream broke off")
        self.offset = offset


class ByteSource(Protocol):
    """What :meth:`UploadStore.append` reads from (a WSGI input stream, a file)."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class Upload:
    id: str
    owner: str
    key: str
    length: int
    created: datetime
    expires: datetime
    offset: int

    @property
    def complete(self) -> bool:
        return self.offset == self.length

    def expired_at(self, now: datetime) -> bool:
        return utc(now) >= self.expires

    def belongs_to(self, owner: str) -> bool:
        """Whether ``owner`` owns this upload (compared in constant time)."""
        return hmac.compare_digest(self.owner.encode("utf-8"), owner.encode("utf-8"))

    def opens_with(self, secret: str) -> bool:
        """Whether ``secret`` is this upload's capability (compared in constant time)."""
        return hmac.compare_digest(self.key, key_hash(secret))


def check_upload_id(upload_id: str) -> bool:
    """True when upload_id is 32 lowercase hex digits, the only form an id can take."""
    return isinstance(upload_id, str) and UPLOAD_ID.match(upload_id) is not None


#: A capability a client chose: 32 bytes in base64url without padding, as the server's own.
CLIENT_SECRET: Final = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
_CHOSEN_ID_LABEL: Final = b"postern upload id v1\x00"


def chosen_upload_id(owner: str, secret: str) -> str:
    """The id of the upload whose capability the client chose: owner and secret, hashed."""
    material = _CHOSEN_ID_LABEL + owner.encode() + b"\x00" + secret.encode()
    return hashlib.sha256(material).hexdigest()[:32]


def lock_upload(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UploadBusy("the upload is in use") from None
