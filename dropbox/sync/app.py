"""The sync API's WSGI application: :func:`create_sync_app` (docs/format.md section 9).

The transfer machine reaches this app over its own onion service with client authorization,
on its own loopback port. Every request is signed by a transfer client of the installed
keyring and checked by a ``before_request`` hook (:func:`dropbox.sync.context.authenticate`)
before any view runs. Answers are JSON (envelopes and manifests are raw bytes); errors are
``{"error": "<code>", "message": "..."}`` and never carry a stack trace. Nothing about a
request is logged. Nothing happens at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from common.web import install_log_filters
from config import ServerSettings
from dropbox.app import PosternFlask
from dropbox.services import open_services, utc_now
from dropbox.sync import views
from dropbox.sync.auth import AuthError, NonceStore
from dropbox.sync.context import (
    SYNC_EXTENSION_KEY,
    SyncServices,
    authenticate,
    json_error,
    refuse_unverified,
)
from dropbox.web.security import add_security_headers

#: Short names of the HTTP errors the API answers with.
_HTTP_ERRORS: Final = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "too_large",
    416: "range_not_satisfiable",
    503: "unavailable",
}


def create_sync_app(
    settings: ServerSettings, *, clock: Callable[[], datetime] | None = None
) -> Flask:
    """The sync API for the data directory ``settings.data_dir``.

    Reads the instance (failing with :class:`dropbox.errors.DropboxError` if the directory is
    not initialized or its database not migrated). ``clock`` (UTC, aware)
    replaces the system clock for request timestamps, nonces and days.

    Unlike the source interface it leaves the blob store's temporary files alone: the source
    interface, in another process, may be writing them.
    """
    now = clock or utc_now
    base = open_services(settings, now)

    app = PosternFlask("dropbox.sync", static_folder=None)
    app.config.update(PROVIDE_AUTOMATIC_OPTIONS=False)
    nonces = NonceStore(base.db, now)
    app.extensions[SYNC_EXTENSION_KEY] = SyncServices(**base.as_fields(), nonces=nonces)
    app.before_request(authenticate)
    app.after_request(refuse_unverified)
    app.after_request(add_security_headers)
    app.register_error_handler(AuthError, _auth_refused)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(500, _server_error)
    app.register_blueprint(views.blueprint)
    install_log_filters()
    return app


# -- answers -----------------------------------------------------------------------------------


def _auth_refused(error: AuthError) -> ResponseReturnValue:
    return json_error(401, error.code, str(error), {"WWW-Authenticate": "Postern-Signature"})


def _http_error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    response = json_error(
        code, _HTTP_ERRORS.get(code, f"http_{code}"), error.description or error.name
    )
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return response


def _server_error(_error: Exception) -> ResponseReturnValue:
    return json_error(500, "server_error", "the server failed to handle the request")
