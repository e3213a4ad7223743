"""The two submission paths, wired to the app (docs/format.md sections 8.3 to 8.5).

- the script path: the tus blueprint (``/api/uploads``, :mod:`dropbox.tus`) with the app's
  :class:`AppUploadPolicy`, and ``POST /api/submissions``, which turns completed uploads of the
  logged-in source into one submission, once per key (:mod:`dropbox.completion`);
- the plain form: :func:`plain_form_handler`, the app's default submit handler, which streams
  ``POST /submit`` through :func:`dropbox.nojs.seal_form`.

Views stay thin: the rules live in :mod:`dropbox.completion` and the upload modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final, cast

from flask import Blueprint, Flask, abort, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from dropbox.completion import COMPLETION_KEY, CompletionError, complete_submission
from dropbox.errors import DropboxError
from dropbox.nojs import NoJsError, NoJsLimits, seal_form
from dropbox.submissions import NewItem, SubmissionError, add_submission
from dropbox.tus import FULL_RETRY_AFTER, create_tus_blueprint
from dropbox.uploads import UploadStore, check_upload_id
from dropbox.web.context import (
    CSRF_HEADER,
    csrf_token_matches,
    logged_in_source,
    services,
)
from dropbox.web.formatting import format_size
from dropbox.web.json_body import read_json_body
from dropbox.web.security import (
    csrf_checked_in_blueprint,
    csrf_checked_in_view,
    render_error,
)

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


# -- the plain form ----------------------------------------------------------------------------


def _plain_form_error(error: NoJsError) -> ResponseReturnValue:
    pages = {
        "csrf": (403, gettext("The form has expired. Reload the page and try again.")),
        "too_large": (
            413,
            gettext(
                "What you sent is larger than this form accepts (%(size)s). Nothing was stored. "
                "Send fewer or smaller files, or turn on JavaScript for large files.",
                size=format_size(services().settings.max_nojs_request_bytes),
            ),
        ),
        "message_too_long": (
            413,
            gettext(
                "The message is longer than %(count)d characters. Nothing was stored.",
                count=services().settings.max_message_chars,
            ),
        ),
        "too_many_files": (
            400,
            gettext(
                "At most %(count)d files can be sent at once. Nothing was stored.",
                count=services().settings.max_files_per_submission,
            ),
        ),
        "empty": (400, gettext("Write a message or choose a file. Nothing was sent.")),
        "malformed": (400, gettext("The form could not be read. Nothing was stored.")),
    }
    status, message = pages[error.code]
    return render_error(status, message)


def plain_form_handler() -> ResponseReturnValue:
    """``POST /submit``: stream the form through the sealer, then record the submission."""
    who = logged_in_source()
    keyring = services().instance().keyring
    if who is None or keyring is None:  # pages.submit_post checked both already
        return render_error(403)
    settings = services().settings
    limits = NoJsLimits(
        max_request_bytes=settings.max_nojs_request_bytes,
        max_message_chars=settings.max_message_chars,
        max_files=settings.max_files_per_submission,
        max_drain_bytes=settings.max_nojs_request_bytes,
    )
    try:
        result = seal_form(
            cast(BinaryIO, request.stream),
            request.content_type or "",
            request.content_length,
            check_csrf=csrf_token_matches,
            recipients=keyring.manifest.recipient_keys,
            store=services().blobs,
            limits=limits,
        )
    except NoJsError as error:
        return _plain_form_error(error)
    made: list[NewItem] = [(item.kind, item.blob_id, item.size) for item in result.items]
    with services().db() as db:
        try:
            add_submission(db, who[1], made, services().today())
        except SubmissionError:
            for _, blob_id, _ in made:
                services().blobs.delete(blob_id)
            return render_error(400)
    # Post/Redirect/Get: reloading the confirmation must not send the form again.
    return redirect(url_for("pages.submitted"), 303)


def register(app: Flask, uploads: UploadStore, max_upload_bytes: int) -> None:
    """Register the script path's endpoints on the app."""
    app.register_blueprint(
        csrf_checked_in_blueprint(create_tus_blueprint(uploads, AppUploadPolicy(max_upload_bytes)))
    )
    app.register_blueprint(create_api_blueprint(uploads))
