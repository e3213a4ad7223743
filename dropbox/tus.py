"""Resumable uploads of envelopes: tus 1.0.0 at ``/api/uploads`` (docs/format.md section 8.3).

Core protocol plus the ``creation``, ``termination`` and ``expiration`` extensions, carrying
ciphertext only. :func:`create_tus_blueprint` wires the HTTP side to an :class:`UploadStore`
and to an :class:`UploadPolicy` supplied by the app (who is asking, how large, to whom the
envelopes must be sealed, what time it is, what to do when an upload is complete). The views
only translate headers; the rules live in the plain functions below them.

Choices where section 8.3 leaves room (keep docs/format.md in step when changing them):

- A completed upload stays in the :class:`UploadStore` (``HEAD`` still answers, with
  ``Upload-Offset`` equal to ``Upload-Length``), so a client whose last ``PATCH`` response was
  lost over Tor can see that it is done. :meth:`UploadPolicy.on_complete` only reports it; the
  app moves it into the blob store with :meth:`UploadStore.complete_into` when it becomes part
  of a submission (section 8.4), and an upload that never does expires like any other.
- Expired, terminated, unknown and malformed uploads, and uploads of another owner, all answer
  404 (never 410): the server keeps no record of uploads it has deleted.
- Expiry is 24 hours after creation (the store's TTL) and does not move; expired uploads are
  deleted when touched and by :meth:`UploadStore.expire`, which every creation also runs.
- The envelope header is checked as soon as it is complete, and again at the start of every
  later ``PATCH``, so an upload whose keyring was replaced meanwhile is refused
  (``stale_keyring``) at its next request instead of at completion.
- ``PATCH`` needs ``Content-Length`` (411 for a chunked body), so that a body going past the
  length is refused before any byte of it is stored. A malformed or missing ``Upload-Offset``
  is 400; a well-formed one that is not the current offset is 409, as is a ``PATCH`` that finds
  another request still appending to the upload (``upload_busy``).
- A ``PATCH`` whose body ends early (the client went away) keeps what arrived and answers 400
  ``incomplete_body`` with the new ``Upload-Offset``, for whoever is still listening.
- ``X-HTTP-Method-Override`` (tus core) and ``creation-with-upload`` are not supported: a
  ``POST`` body is not read.

Nothing of a request or an upload is logged here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from flask import Blueprint, Response, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date

from crypto.envelope import (
    MAX_RECIPIENTS,
    PREFIX_LEN,
    header_length,
    parse_header,
    sealed_to,
    split_payload_length,
)
from crypto.errors import FormatError
from dropbox.uploads import (
    ByteSource,
    OffsetMismatch,
    StreamInterrupted,
    Upload,
    UploadBusy,
    UploadNotFound,
    UploadStore,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
URL_PREFIX = "/api/uploads"

#: The longest envelope header (section 3.1 with 32 recipients).
_MAX_HEADER = header_length(MAX_RECIPIENTS)
_DECIMAL = re.compile(r"\A[0-9]{1,20}\Z")
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class UploadPolicy(Protocol):
    """What the app decides for the upload endpoint."""

    @property
    def max_size(self) -> int:
        """The largest ``Upload-Length`` accepted (announced as ``Tus-Max-Size``)."""
        ...

    def authorize(self) -> str:
        """The owner id of the current request's source.

        Checks the session cookie and the ``X-Postern-CSRF`` header (section 8.1) and aborts
        with 403 (``flask.abort``, or any werkzeug ``HTTPException``) when either is wrong.
        The id is stored with the upload: it must be fit to be kept on the server.
        """
        ...

    def recipient_public_keys(self) -> Sequence[bytes]:
        """The installed keyring's recipients (X25519 public keys): envelopes name exactly these."""
        ...

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    def on_complete(self, upload_id: str, owner: str) -> None:
        """Called once, in the ``PATCH`` that stores the last byte of a checked envelope.

        The upload stays in the store until the app completes it into the blob store.
        """
        ...


class TusError(Exception):
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


def _bad_envelope() -> TusError:
    return TusError(422, "bad_envelope", "The upload is not a valid encrypted envelope.")


def _stale_keyring() -> TusError:
    return TusError(
        409,
        "stale_keyring",
        "The team's keys have changed. Please reload the page and submit again.",
    )


# -- rules (no Flask below this line until the blueprint) -------------------------------------


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
) -> Upload:
    """The creation extension: check the announced length and make the upload."""
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
    store.expire(now)
    return store.create(owner, length, now)


def find_upload(store: UploadStore, upload_id: str, owner: str, now: datetime) -> Upload:
    """The owner's live upload; 404 for anything else. Expired uploads are deleted here."""
    upload = store.get(upload_id)
    if upload is None or not upload.belongs_to(owner):
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


# -- HTTP -----------------------------------------------------------------------------------


def _error_response(error: TusError) -> Response:
    body = json.dumps({"error": error.code, "message": error.message})
    response = Response(body, status=error.status, mimetype="application/json")
    response.headers.update(error.headers)
    return response


def _http_error(error: HTTPException) -> Response:
    if error.response is not None:
        return error.response  # type: ignore[return-value]  # an app's own abort(Response)
    code = (error.name or "error").lower().replace(" ", "_")
    status = error.code or 500
    return _error_response(TusError(status, code, error.description or code))


def create_tus_blueprint(store: UploadStore, policy: UploadPolicy) -> Blueprint:
    """The tus endpoint at ``/api/uploads``: register it on the source interface's app."""
    bp = Blueprint("tus", __name__, url_prefix=URL_PREFIX)
    bp.register_error_handler(TusError, _error_response)
    bp.register_error_handler(HTTPException, _http_error)

    @bp.before_request
    def require_tus_version() -> Response | None:
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
            return _error_response(
                TusError(
                    412,
                    "tus_version",
                    "This server speaks tus 1.0.0 only.",
                    {"Tus-Version": TUS_VERSION},
                )
            )
        return None

    @bp.after_request
    def tus_headers(response: Response) -> Response:
        response.headers["Tus-Resumable"] = TUS_VERSION
        response.headers["Cache-Control"] = "no-store"
        return response

    def expiry_headers(upload: Upload) -> dict[str, str]:
        return {"Upload-Expires": http_date(upload.expires)}

    def discover() -> Response:
        response = Response(status=204)
        response.headers["Tus-Version"] = TUS_VERSION
        response.headers["Tus-Extension"] = TUS_EXTENSIONS
        response.headers["Tus-Max-Size"] = str(policy.max_size)
        return response

    def create() -> Response:
        upload = create_upload(
            store,
            policy.authorize(),
            upload_length=request.headers.get("Upload-Length"),
            defer_length=request.headers.get("Upload-Defer-Length"),
            recipients=len(policy.recipient_public_keys()),
            max_size=policy.max_size,
            now=policy.now(),
        )
        headers = expiry_headers(upload)
        headers["Location"] = url_for(".upload", upload_id=upload.id)
        return Response(status=201, headers=headers)

    def status(upload_id: str) -> Response:
        upload = find_upload(store, upload_id, policy.authorize(), policy.now())
        headers = expiry_headers(upload)
        headers["Upload-Offset"] = str(upload.offset)
        headers["Upload-Length"] = str(upload.length)
        return Response(status=200, headers=headers)

    def patch(upload_id: str) -> Response:
        owner = policy.authorize()
        upload = find_upload(store, upload_id, owner, policy.now())
        if request.mimetype != OFFSET_OCTET_STREAM:
            raise TusError(
                415, "unsupported_media_type", f"The body must be {OFFSET_OCTET_STREAM}."
            )
        offset = parse_decimal(request.headers.get("Upload-Offset"))
        if offset is None:
            raise TusError(400, "invalid_offset", "Upload-Offset is missing or not a number.")
        if "Transfer-Encoding" in request.headers:
            raise TusError(411, "length_required", "The request must have a Content-Length.")
        new_offset = append_body(
            store,
            upload,
            request.stream,
            offset=offset,
            # No Content-Length and no Transfer-Encoding: an empty body (RFC 9112 section 6.3).
            body_length=request.content_length or 0,
            recipients=policy.recipient_public_keys(),
        )
        if offset < upload.length and new_offset == upload.length:
            policy.on_complete(upload.id, owner)
        headers = expiry_headers(upload)
        headers["Upload-Offset"] = str(new_offset)
        return Response(status=204, headers=headers)

    def terminate(upload_id: str) -> Response:
        upload = find_upload(store, upload_id, policy.authorize(), policy.now())
        store.delete(upload.id)
        return Response(status=204)

    def dispatch(handlers: Mapping[str, Callable[[], Response]]) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            raise TusError(
                405,
                "method_not_allowed",
                "This method is not used here.",
                {"Allow": ", ".join(handlers)},
            )
        return handler()

    @bp.route("", methods=_METHODS, provide_automatic_options=False)
    def uploads() -> Response:
        return dispatch({"OPTIONS": discover, "POST": create})

    @bp.route("/<path:upload_id>", methods=_METHODS, provide_automatic_options=False)
    def upload(upload_id: str) -> Response:
        return dispatch(
            {
                "OPTIONS": discover,
                "HEAD": lambda: status(upload_id),
                "PATCH": lambda: patch(upload_id),
                "DELETE": lambda: terminate(upload_id),
            }
        )

    return bp
