"""The two submission paths, wired to the app (docs/format.md sections 8.3 to 8.5).

- the script path: the tus blueprint (``/api/uploads``, :mod:`dropbox.tus`) with the app's
  :class:`AppUploadPolicy`, and ``POST /api/submissions``, which turns completed uploads of the
  logged-in source into one submission;
- the plain form is in :mod:`dropbox.web.plain_form`.

Views stay thin: the rules live in :func:`complete_submission` and the upload modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from flask import Blueprint, Flask, abort, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from crypto.envelope import parse_header, sealed_to
from crypto.errors import FormatError
from dropbox.errors import DropboxError
from dropbox.storage import BlobStore
from dropbox.submissions import NewItem, SubmissionError, add_submission
from dropbox.tus import create_tus_blueprint
from dropbox.uploads import UploadError, UploadStore, check_upload_id
from dropbox.web.context import (
    CSRF_HEADER,
    csrf_token_matches,
    logged_in_source,
    services,
)
from dropbox.web.security import csrf_checked_in_blueprint

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


def _parse_items(body: object, max_files: int) -> list[tuple[str, str]]:
    """``{"items": [{"upload": id, "kind": "message"|"file"}, ...]}`` -> [(id, kind)]."""
    bad = ApiError(400, "bad_request", gettext("The request was not understood."))
    if not isinstance(body, dict) or set(body) != {"items"} or not isinstance(body["items"], list):
        raise bad
    items = body["items"]
    if not items:
        raise bad
    if len(items) > max_files:
        raise ApiError(
            400,
            "too_many_files",
            gettext("At most %(count)d files can be sent at once.", count=max_files),
        )
    parsed = []
    for entry in items:
        if not isinstance(entry, dict) or set(entry) != {"upload", "kind"}:
            raise bad
        upload_id, kind = entry["upload"], entry["kind"]
        if not isinstance(upload_id, str) or not check_upload_id(upload_id) or kind not in _KINDS:
            raise bad
        parsed.append((upload_id, str(kind)))
    if len({u for u, _ in parsed}) != len(parsed):
        raise bad
    return parsed


def complete_submission(
    uploads: UploadStore,
    blobs: BlobStore,
    owner: str,
    items: list[tuple[str, str]],
    recipients: Sequence[bytes],
) -> list[NewItem]:
    """Move the completed uploads into the blob store; return the submission's items.

    Every upload is checked before any is moved; if moving fails half-way, the blobs already
    made are deleted again, so either all of them become one submission or none.
    """
    for upload_id, _ in items:
        upload = uploads.get(upload_id)
        if upload is None or not upload.belongs_to(owner):
            raise ApiError(
                404, "unknown_upload", gettext("A file was not found. Please send it again.")
            )
        if not upload.complete:
            raise ApiError(
                409, "incomplete_upload", gettext("A file has not finished uploading yet.")
            )
        try:
            header = parse_header(uploads.read_prefix(upload_id, 58 + 96 * 32))
        except FormatError:
            raise ApiError(
                422, "bad_request", gettext("A file was not encrypted correctly.")
            ) from None
        if not sealed_to(header, recipients):
            raise ApiError(
                409,
                "stale_keyring",
                gettext(
                    "The team's keys changed while you were sending. Reload the page and "
                    "send again."
                ),
            )
    made: list[NewItem] = []
    try:
        for upload_id, kind in items:
            blob_id = uploads.complete_into(upload_id, blobs)
            made.append((kind, blob_id, blobs.size(blob_id)))
    except (UploadError, OSError):
        for _, blob_id, _ in made:
            blobs.delete(blob_id)
        raise ApiError(
            409, "unknown_upload", gettext("A file was not found. Please send it again.")
        ) from None
    return made


def create_api_blueprint(uploads: UploadStore) -> Blueprint:
    blueprint = Blueprint("api", __name__)

    @blueprint.post("/api/submissions")
    def submissions() -> ResponseReturnValue:
        who = logged_in_source()
        try:
            if who is None or not who[0].codename_acknowledged:
                raise ApiError(403, "not_logged_in", gettext("Please log in again."))
            keyring = services().instance().keyring
            if keyring is None:
                raise ApiError(503, "no_keyring", gettext("Submissions are not open yet."))
            if (request.content_length or 0) > _MAX_JSON or request.mimetype != "application/json":
                raise ApiError(400, "bad_request", gettext("The request was not understood."))
            body = request.get_json(silent=True)
            settings = services().settings
            items = _parse_items(body, settings.max_files_per_submission)
            made = complete_submission(
                uploads, services().blobs, str(who[1]), items, keyring.manifest.recipient_keys
            )
            with services().db() as db:
                try:
                    add_submission(db, who[1], made, services().today())
                except SubmissionError:
                    for _, blob_id, _ in made:
                        services().blobs.delete(blob_id)
                    raise ApiError(
                        400, "bad_request", gettext("The request was not understood.")
                    ) from None
        except ApiError as error:
            return jsonify(error=error.code, message=error.message), error.status
        return jsonify(ok=True, items=len(made), next=url_for("pages.submitted")), 201

    return blueprint


def register(app: Flask, uploads: UploadStore, max_upload_bytes: int) -> None:
    """Register the script path's endpoints on the app."""
    app.register_blueprint(
        csrf_checked_in_blueprint(create_tus_blueprint(uploads, AppUploadPolicy(max_upload_bytes)))
    )
    app.register_blueprint(create_api_blueprint(uploads))
