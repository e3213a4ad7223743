"""The tus endpoint's Flask blueprint: :func:`create_tus_blueprint` and its :class:`UploadPolicy`.

The views only translate headers; the rules live in :mod:`dropbox.tus.protocol`. Nothing of a
request or an upload is logged here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from flask import Blueprint, Response, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date

from dropbox.tus.protocol import (
    OFFSET_OCTET_STREAM,
    TUS_EXTENSIONS,
    TUS_VERSION,
    URL_PREFIX,
    TusError,
    append_body,
    create_upload,
    find_upload,
    parse_decimal,
)
from dropbox.uploads import Upload, UploadStore

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class UploadPolicy(Protocol):
    """What the app decides for the upload endpoint."""

    @property
    def max_size(self) -> int:
        """The largest ``Upload-Length`` accepted (announced as ``Tus-Max-Size``)."""
        ...

    def authorize(self) -> str:
        """The owner id of the current request's source, asked at creation only.

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


def _error_response(error: TusError) -> Response:
    body = json.dumps({"error": error.code, "message": error.message})
    response = Response(body, status=error.status, mimetype="application/json")
    response.headers.update(error.headers)
    if request.method == "PATCH":
        # The body may be left unread (a full disk, a wrong offset): say that this connection
        # ends here, so that the client's next request opens a new one instead of meeting a
        # connection the server drops while it is still being fed the refused bytes.
        response.headers["Connection"] = "close"
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
        upload, reference = create_upload(
            store,
            policy.authorize(),
            upload_length=request.headers.get("Upload-Length"),
            defer_length=request.headers.get("Upload-Defer-Length"),
            recipients=len(policy.recipient_public_keys()),
            max_size=policy.max_size,
            now=policy.now(),
            capability=request.headers.get("Upload-Capability"),
        )
        headers = expiry_headers(upload)
        headers["Location"] = url_for(".upload", reference=reference)
        return Response(status=201, headers=headers)

    def status(reference: str) -> Response:
        upload = find_upload(store, reference, policy.now())
        headers = expiry_headers(upload)
        headers["Upload-Offset"] = str(upload.offset)
        headers["Upload-Length"] = str(upload.length)
        return Response(status=200, headers=headers)

    def patch(reference: str) -> Response:
        upload = find_upload(store, reference, policy.now())
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
            policy.on_complete(upload.id, upload.owner)
        headers = expiry_headers(upload)
        headers["Upload-Offset"] = str(new_offset)
        return Response(status=204, headers=headers)

    def terminate(reference: str) -> Response:
        upload = find_upload(store, reference, policy.now())
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

    @bp.route("/<path:reference>", methods=_METHODS, provide_automatic_options=False)
    def upload(reference: str) -> Response:
        return dispatch(
            {
                "OPTIONS": discover,
                "HEAD": lambda: status(reference),
                "PATCH": lambda: patch(reference),
                "DELETE": lambda: terminate(reference),
            }
        )

    return bp
