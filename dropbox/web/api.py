"""The two submission paths, wired to the app (docs/format.md sections 8.3 to 8.5).

- the script path: the tus blueprint (``/api/uploads``, :mod:`dropbox.tus`) with the app's
  :class:`AppUploadPolicy`, and ``POST /api/submissions``, which turns completed uploads of the
  logged-in source into one submission, once per key (:mod:`dropbox.completion`);
- the plain form is in :mod:`dropbox.web.plain_form`.

Views stay thin: the rules live in :mod:`dropbox.completion` and the upload modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from flask import Blueprint, Flask, abort, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from dropbox.completion import COMPLETION_KEY, CompletionError, complete_submission
from dropbox.errors import DropboxError
from dropbox.tus import FULL_RETRY_AFTER, create_tus_blueprint
from dropbox.uploads import UploadStore, check_upload_id
from dropbox.web.context import (
    CSRF_HEADER,
    csrf_token_matches,
    logged_in_source,
    services,
)
from dropbox.web.json_body import read_json_body
from dropbox.web.security import csrf_checked_in_blueprint, csrf_checked_in_view

#: Largest JSON body of ``POST /api/submissions``.
_MAX_JSON: Final = 16 * 1024
_KINDS: Final = frozenset({"message", "file"})


class AppUploadPolicy:
    """The app's answers for the tus blueprint."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size

    @property
    def max_size(self) -> int:
        return self._max_size

    def authorize(self) -> str:
        who = logged_in_source()
        if who is None or not who[0].codename_acknowledged:
            abort(403)
        if not csrf_token_matches(request.headers.get(CSRF_HEADER)):
            abort(403)
        return str(who[1])

    def recipient_public_keys(self) -> Sequence[bytes]:
        keyring = services().instance().keyring
        return [] if keyring is None else keyring.manifest.recipient_keys

    def now(self) -> datetime:
        return services().clock()

    def on_complete(self, upload_id: str, owner: str) -> None:
        """Nothing to do: the upload waits in the store for ``POST /api/submissions``."""


@dataclass(frozen=True)
class ApiError(DropboxError):
    status: int
    code: str
    message: str


def _bad_request() -> ApiError:
    return ApiError(400, "bad_request", gettext("The request was not understood."))


def _parse_body(body: object, max_files: int) -> tuple[str, list[tuple[str, str]]]:
    """``{"key": k, "items": [{"upload": id, "kind": "message"|"file"}, ...]}``."""
    if (
        not isinstance(body, dict)
        or set(body) != {"key", "items"}
        or not isinstance(body["key"], str)
        or not COMPLETION_KEY.match(body["key"])
        or not isinstance(body["items"], list)
    ):
        raise _bad_request()
    items = body["items"]
    if not items:
        raise _bad_request()
    if len(items) > max_files:
        raise ApiError(
            400,
            "too_many_files",
            gettext("At most %(count)d files can be sent at once.", count=max_files),
        )
    parsed = []
    for entry in items:
        if not isinstance(entry, dict) or set(entry) != {"upload", "kind"}:
            raise _bad_request()
        upload_id, kind = entry["upload"], entry["kind"]
        if not isinstance(upload_id, str) or not check_upload_id(upload_id) or kind not in _KINDS:
            raise _bad_request()
        parsed.append((upload_id, str(kind)))
    if len({u for u, _ in parsed}) != len(parsed):
        raise _bad_request()
    return body["key"], parsed


def _completion_error(code: str) -> ApiError:
    if code == "unknown_upload":
        return ApiError(404, code, gettext("A file was not found. Please send it again."))
    if code == "incomplete_upload":
        return ApiError(409, code, gettext("A file has not finished uploading yet."))
    if code == "upload_busy":
        return ApiError(
            409, code, gettext("A file is still being received. Please try again in a moment.")
        )
    if code == "bad_envelope":
        return ApiError(422, "bad_request", gettext("A file was not encrypted correctly."))
    if code == "stale_keyring":
        return ApiError(
            409,
            code,
            gettext(
                "The team's keys changed while you were sending. Reload the page and send again."
            ),
        )
    if code == "insufficient_storage":
        return ApiError(
            507,
            code,
            gettext(
                "The server's disk is full. What you sent so far is kept: keep this page "
                "open, it tries again by itself."
            ),
        )
    return _bad_request()


def create_api_blueprint(uploads: UploadStore) -> Blueprint:
    blueprint = Blueprint("api", __name__)

    @blueprint.post("/api/submissions")
    @csrf_checked_in_view
    def submissions() -> ResponseReturnValue:
        who = logged_in_source()
        try:
            # Not logged in first: a session that ended (or a server restart) also makes the
            # token wrong, and the page must learn that logging in again is the way on.
            if who is None or not who[0].codename_acknowledged:
                raise ApiError(403, "not_logged_in", gettext("Please log in again."))
            if not csrf_token_matches(request.headers.get(CSRF_HEADER)):
                raise ApiError(
                    403, "csrf", gettext("The form has expired. Reload the page and try again.")
                )
            keyring = services().instance().keyring
            if keyring is None:
                raise ApiError(503, "no_keyring", gettext("Submissions are not open yet."))
            if (request.content_length or 0) > _MAX_JSON or request.mimetype != "application/json":
                raise _bad_request()
            body = read_json_body(request.stream, max_bytes=_MAX_JSON)
            key, items = _parse_body(body, services().settings.max_files_per_submission)
            try:
                done = complete_submission(
                    uploads=uploads,
                    blobs=services().blobs,
                    db=services().db,
                    source_row_id=who[1],
                    key=key,
                    items=items,
                    recipients=keyring.manifest.recipient_keys,
                    today=services().today(),
                )
            except CompletionError as error:
                raise _completion_error(error.code) from None
        except ApiError as error:
            response = jsonify(error=error.code, message=error.message)
            if error.status == 507:
                response.headers["Retry-After"] = str(FULL_RETRY_AFTER)
            return response, error.status
        # A retry of a completed key gets the same answer, as 200: nothing new was made.
        answer = jsonify(ok=True, items=len(items), next=url_for("pages.submitted"))
        return answer, 201 if done.created else 200

    return blueprint


def register(app: Flask, uploads: UploadStore, max_upload_bytes: int) -> None:
    """Register the script path's endpoints on the app."""
    app.register_blueprint(
        csrf_checked_in_blueprint(create_tus_blueprint(uploads, AppUploadPolicy(max_upload_bytes)))
    )
    app.register_blueprint(create_api_blueprint(uploads))
