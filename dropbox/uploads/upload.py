"""An upload as the store knows it, its errors, and the hash kept of its capability.

See :mod:`dropbox.uploads` for the layout, the locking and what the store never sees.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Protocol

from dropbox.errors import DropboxError
from dropbox.storage import OutOfSpace

#: How long an upload may take at least before it expires (docs/format.md section 8.3). The
#: store keeps days only, so an upload expires at 00:00 UTC of the first day that begins a
#: whole TTL after its creation: it lives at least the TTL and less than a day more.
DEFAULT_TTL = timedelta(hours=24)
#: The most bytes read from a request body (or the part data) in one piece.
PIECE = 64 * 1024
#: Longest owner id kept.
MAX_OWNER: Final = 256

UPLOAD_ID = re.compile(r"\A[0-9a-f]{32}\Z")


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


def utc(now: datetime) -> datetime:
    """An aware time in UTC, to the second."""
    if now.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)


def midnight(day: date) -> datetime:
    """00:00 UTC of ``day``: the time the store gives for a day it keeps."""
    return datetime.combine(day, time(), tzinfo=UTC)


def expiry_day(created: date, ttl: timedelta) -> date:
    """The day from whose start an upload created on ``created`` is expired (see DEFAULT_TTL)."""
    return created + timedelta(days=math.ceil(ttl / timedelta(days=1)) + 1)


def key_hash(secret: str) -> str:
    """What the store keeps of an upload's capability: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Upload:
    id: str
    owner: str
    key: str
    length: int
    #: 00:00 UTC of the day it was created, and of the day it is expired from.
    created: datetime
    expires: datetime
    offset: int
    #: The name of its part data in the part store.
    part: str = ""

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
