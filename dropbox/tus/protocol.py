"""The tus rules of ``/api/uploads``, without Flask: the headers' values in, uploads out.

Every refusal is a :class:`TusError` carrying its HTTP status, a short code, a message for the
source and any extra headers; :mod:`dropbox.tus.blueprint` only translates between HTTP and
these functions. The choices they make are listed in :mod:`dropbox.tus`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from crypto.envelope import (
    MAX_RECIPIENTS,
    PREFIX_LEN,
    header_length,
    parse_header,
    sealed_to,
    split_payload_length,
)
from crypto.errors import FormatError
from dropbox.errors import DropboxError
from dropbox.uploads import (
    CLIENT_SECRET,
    ByteSource,
    OffsetMismatch,
    StreamInterrupted,
    Upload,
    UploadBusy,
    UploadConflict,
    UploadNotFound,
    UploadStore,
    UploadStoreFull,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
URL_PREFIX = "/api/uploads"

#: The longest envelope header (section 3.1 with 32 recipients).
_MAX_HEADER = header_length(MAX_RECIPIENTS)
_DECIMAL = re.compile(r"\A[0-9]{1,20}\Z")
#: An upload's URL names it and carries its capability: ``<id>.<secret>`` (section 8.3).
_UPLOAD_REF = re.compile(r"\A([0-9a-f]{32})\.([A-Za-z0-9_-]{43})\Z")
#: Seconds a client should wait after a full disk before trying again.
FULL_RETRY_AFTER = 300


class TusError(DropboxError):
    """A refusal: an HTTP status, a short code, a message for the source, extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _not_found() -> TusError:
    return TusError(404, "not_found", "There is no such upload. Please start the upload again.")


def _full() -> TusError:
    return TusError(
        507,
        "insufficient_storage",
        "The server's disk is full. Nothing was lost: the upload continues when there is room.",
        {"Retry-After": str(FULL_RETRY_AFTER)},
    )


def _bad_envelope() -> TusError:
    return TusError(422, "bad_envelope", "The upload is not a valid encrypted envelope.")


def _stale_keyring() -> TusError:
    return TusError(
        409,
        "stale_keyring",
        "The team's keys have changed. Please reload the page and submit again.",
    )


# -- rules ------------------------------------------------------------------------------------


def valid_envelope_length(length: int, recipients: int) -> bool:
    """Whether ``length`` is ``header_length(R) + T`` with T a valid payload length (3.4)."""
    if not 1 <= recipients <= MAX_RECIPIENTS:
        return False
    return split_payload_length(length - header_length(recipients)) is not None


def parse_decimal(value: str | None) -> int | None:
    """A tus integer header: plain decimal digits; None when absent or malformed."""
    if value is None or not _DECIMAL.match(value):
        return None
    return int(value)


def check_envelope_prefix(prefix: bytes, total_length: int, recipients: Sequence[bytes]) -> int:
    """Check what the first bytes of an upload show; return where its header ends.

    Until the 10-byte prefix is there, the header end is unknown and :data:`PREFIX_LEN` is
    returned. Once the whole header is there it is parsed, the total length is checked against
    it (section 3.1, rule 6) and its key ids must be exactly ``recipients``. Raises
    :class:`TusError` (422 ``bad_envelope`` or 409 ``stale_keyring``).
    """
    if len(prefix) < PREFIX_LEN:
        return PREFIX_LEN
    count = prefix[PREFIX_LEN - 1]
    if not 1 <= count <= MAX_RECIPIENTS:
        raise _bad_envelope()
    end = header_length(count)
    if len(prefix) < end:
        return end
    try:
        header = parse_header(prefix[:end])
        header.check_total_length(total_length)
    except FormatError:
        raise _bad_envelope() from None
    if not sealed_to(header, recipients):
        raise _stale_keyring()
    return end


def create_upload(
    store: UploadStore,
    owner: str,
    *,
    upload_length: str | None,
    defer_length: str | None,
    recipients: int,
    max_size: int,
    now: datetime,
    capability: str | None = None,
) -> tuple[Upload, str]:
    """The creation extension: check the announced length, make the upload.

    Returns the upload and its reference ``<id>.<capability>``, the last part of its URL:
    from here on, knowing the reference is what authorizes a request to the upload. A client
    may choose the capability (``Upload-Capability``, docs/format.md 8.3): creating again with
    the same one gives the same upload, so a creation whose answer was lost can be asked
    again without leaving an upload that nobody can resume.
    """
    if capability is not None and not CLIENT_SECRET.match(capability):
        raise TusError(400, "bad_capability", "Upload-Capability is not 43 base64url characters.")
    if defer_length is not None:
        raise TusError(400, "deferred_length", "Uploads must announce their length.")
    length = parse_decimal(upload_length)
    if length is None:
        raise TusError(400, "invalid_length", "Upload-Length is missing or not a number.")
    if length > max_size:
        raise TusError(413, "too_large", "The file is larger than this server accepts.")
    if recipients < 1:
        raise TusError(503, "no_keyring", "This server cannot accept uploads right now.")
    if not valid_envelope_length(length, recipients):
        raise TusError(
            400,
            "invalid_length",
            "Upload-Length is not the length of an envelope for the team's current keys. "
            "Please reload the page and submit again.",
        )
    store.expire_once_a_day(now)
    try:
        upload, secret = store.create_with_key(owner, length, now, capability)
    except UploadStoreFull:
        raise _full() from None
    except UploadConflict:
        raise TusError(409, "capability_taken", "Choose another Upload-Capability.") from None
    return upload, f"{upload.id}.{secret}"


def find_upload(store: UploadStore, reference: str, now: datetime) -> Upload:
    """The live upload that ``reference`` (``<id>.<capability>``) opens; 404 for anything else.

    The capability is all a request needs: no session, no CSRF token. So an upload outlives
    the source's web session and a restart of the server, until it expires. Expired uploads
    are deleted here.
    """
    match = _UPLOAD_REF.match(reference)
    if match is None:
        raise _not_found()
    upload = store.get(match[1])
    if upload is None or not upload.opens_with(match[2]):
        raise _not_found()
    if upload.expired_at(now):
        store.delete(upload.id)
        raise _not_found()
    return upload


def _checked(store: UploadStore, upload: Upload, offset: int, recipients: Sequence[bytes]) -> int:
    """check_envelope_prefix over the stored bytes; the upload is deleted when it fails."""
    try:
        prefix = store.read_prefix(upload.id, min(offset, _MAX_HEADER))
        return check_envelope_prefix(prefix, upload.length, recipients)
    except TusError:
        store.delete(upload.id)
        raise
    except UploadNotFound:
        raise _not_found() from None


def append_body(
    store: UploadStore,
    upload: Upload,
    body: ByteSource,
    *,
    offset: int,
    body_length: int,
    recipients: Sequence[bytes],
) -> int:
    """The core ``PATCH``: store ``body_length`` bytes at ``offset``; return the new offset.

    The body is appended in up to three steps, stopping at the end of the envelope prefix and
    at the end of the header, so that the header is checked the moment it is complete and
    before any payload byte is stored.
    """
    if offset != upload.offset:
        raise TusError(409, "offset_mismatch", "Upload-Offset is not the upload's offset.")
    end = offset + body_length
    if end > upload.length:
        raise TusError(400, "beyond_length", "The body goes past the upload's length.")
    header_end = _checked(store, upload, offset, recipients)
    while offset < end:
        start = offset
        stop = min(end, header_end) if offset < header_end else end
        interrupted = False
        try:
            offset = store.append(upload.id, body, stop - offset, expected_offset=offset)
        except StreamInterrupted as error:
            offset, interrupted = error.offset, True
        except OffsetMismatch:
            raise TusError(409, "offset_mismatch", "The upload moved on meanwhile.") from None
        except UploadBusy:
            raise TusError(
                409, "upload_busy", "Another request is still sending to this upload."
            ) from None
        except UploadNotFound:
            raise _not_found() from None
        except UploadStoreFull:
            raise _full() from None
        if start < header_end <= offset:
            header_end = _checked(store, upload, offset, recipients)
        if interrupted or offset < stop:
            raise TusError(
                400,
                "incomplete_body",
                "The request ended before its body did; continue from Upload-Offset.",
                {"Upload-Offset": str(offset)},
            )
    return offset
