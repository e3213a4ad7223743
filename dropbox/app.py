"""The source interface's WSGI application: :func:`create_app`.

One app per process, made from the settings; everything it uses hangs off the app object
(``app.extensions["postern"]``, a :class:`dropbox.web.context.Services`): the instance loader,
the database engine and session factory, the blob store, the in-memory session store and the
login throttles. Nothing happens at import time.

Extension points, for the parts written separately and wired in here:

- **tus uploads** (``dropbox/tus.py``, ``dropbox/uploads.py``): register their blueprint in
  :func:`_register_extensions` (it carries its ``/api/uploads`` prefix). Its policy reaches
  the services with :func:`dropbox.web.context.services`, the logged-in source with
  :func:`dropbox.web.context.logged_in_source` (``sources.id`` is fit to keep as the upload's
  owner), the recipients with ``services().instance().keyring.manifest.recipient_keys`` and
  the uploads directory with ``services().instance().uploads_dir``. The generic CSRF check
  accepts the ``X-Postern-CSRF`` header and never reads a request body; tus must answer 412
  before 403, so wrap its blueprint in
  :func:`dropbox.web.security.csrf_checked_in_blueprint` and let the policy's ``authorize``
  call :func:`dropbox.web.context.check_csrf_token` (single views:
  :func:`dropbox.web.security.csrf_checked_in_view`).
- **completing a submission** (``POST /api/submissions``): register it the same way; it calls
  :func:`dropbox.submissions.add_submission`. On success the script can send the source to
  ``GET /submit/done`` (``pages.submitted``) for the confirmation page.
- **the plain form** (``dropbox/nojs.py``): pass its handler as ``submit_handler`` (or make
  it the default below). ``POST /submit`` (``pages.submit_post``) has already checked that a
  source is logged in and acknowledged their codename and that a keyring is installed, and has
  not touched the body: the handler streams the multipart body (``request.stream``), checks
  its first part with :func:`dropbox.web.context.csrf_token_matches`, records the envelopes
  with :func:`dropbox.submissions.add_submission` and renders ``submitted.html`` (or an
  error page with :func:`dropbox.web.security.render_error`).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final

from flask import Flask, request, url_for
from flask_babel import Babel, get_locale

from common.web import install_log_filters
from config import ServerSettings
from crypto.envelope import MAX_RECIPIENTS, MAX_RECORD, header_length, padded_size, payload_length
from dropbox import db
from dropbox.errors import DropboxError
from dropbox.instance import InstanceLoader
from dropbox.storage import LocalBlobStore
from dropbox.uploads import UploadStore
from dropbox.web import api, capacity, pages
from dropbox.web.context import (
    EXTENSION_KEY,
    Services,
    SubmitHandler,
    csrf_token,
    current_session,
    ensure_session,
    load_session,
    save_session_cookie,
)
from dropbox.web.formatting import format_size
from dropbox.web.security import (
    add_security_headers,
    csrf_protect,
    register_error_pages,
)
from dropbox.web.sessions import SessionStore
from dropbox.web.throttle import DerivationThrottle, LoginAttempts

PACKAGE_DIR: Final = Path(__file__).resolve().parent
#: Interface languages, with their names as their speakers write them.
LANGUAGES: Final = (
    ("en", "English"),
    ("ru", "Русский"),
    ("be", "Беларуская"),
    ("uk", "Українська"),
)
DEFAULT_LANGUAGE: Final = "en"
_LANGUAGE_CODES: Final = frozenset(code for code, _ in LANGUAGES)


def utc_now() -> datetime:
    return datetime.now(UTC)


class PosternFlask(Flask):
    """Flask that logs an unhandled exception without the request or the exception's text.

    Flask's own message names the path and method; an exception's text can hold anything.
    What is logged is the exception's type and where it was raised: enough to find the bug.
    """

    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
    ) -> None:
        kind, error, tb = exc_info
        name = kind.__name__ if kind is not None else "exception"
        frames = traceback.extract_tb(tb) if tb is not None else []
        where = " <- ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in reversed(frames))
        # Our own errors are written to be shown (one line, never a source's data): the
        # operator needs them, for example to learn that keyring.json no longer verifies.
        detail = f": {error}" if isinstance(error, DropboxError) else ""
        self.logger.error(
            "unhandled %s%s in a request at %s", name, detail, where or "an unknown place"
        )


def create_app(
    settings: ServerSettings,
    *,
    clock: Callable[[], datetime] | None = None,
    submit_handler: SubmitHandler | None = None,
    upload_slots: int = 112,
) -> Flask:
    """The source interface for the data directory ``settings.data_dir``.

    Reads the instance (failing with :class:`dropbox.errors.DropboxError` if the directory
    is not initialized), brings the database to the newest schema and builds the services.
    ``clock`` (UTC, aware) replaces the system clock for sessions, throttles and dates.
    ``upload_slots`` bounds the uploads streaming in at once (dropbox/web/capacity.py); the
    server passes ``dropbox.serve.UPLOAD_SLOTS``.
    """
    now = clock or utc_now
    instances = InstanceLoader(settings.data_dir)
    instance = instances.current()
    engine = db.make_engine(db.sqlite_url(settings.data_dir))
    db.upgrade(engine)
    blobs = LocalBlobStore(instance.blobs_dir)
    blobs.remove_stale_temporaries()

    app = PosternFlask("dropbox", root_path=str(PACKAGE_DIR))
    app.config.update(
        DEBUG=False,
        TESTING=False,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
        # Ordinary forms are tiny; streamed bodies are never parsed by werkzeug.
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        MAX_FORM_PARTS=16,
        # No flask.session: there is no SECRET_KEY, so nothing can be put in a cookie session.
        SECRET_KEY=None,
    )
    app.extensions[EXTENSION_KEY] = Services(
        settings=settings,
        clock=now,
        instances=instances,
        engine=engine,
        db=db.make_sessionmaker(engine),
        blobs=blobs,
        sessions=SessionStore(now),
        derivations=DerivationThrottle(
            now,
            per_minute=settings.login_derivations_per_minute,
            concurrent=settings.login_concurrent_derivations,
        ),
        login_attempts=LoginAttempts(
            now,
            limit=settings.login_failures_per_session,
            window=timedelta(minutes=settings.login_failure_window_minutes),
        ),
        # Extension point: the streaming plain-form handler (dropbox/nojs.py) goes here.
        submit_handler=submit_handler or api.plain_form_handler,
    )

    Babel(
        app,
        locale_selector=_select_language,
        default_locale=DEFAULT_LANGUAGE,
        default_translation_directories=str(PACKAGE_DIR / "translations"),
    )
    # Before anything else: a request refused for lack of a slot does no other work.
    capacity.install(app, capacity.UploadSlots(upload_slots))
    app.before_request(load_session)
    app.before_request(_remember_language)
    app.before_request(csrf_protect)
    app.after_request(save_session_cookie)
    app.after_request(add_security_headers)
    app.context_processor(_template_context)
    register_error_pages(app)
    app.register_blueprint(pages.blueprint)
    _register_extensions(app, settings, instance.uploads_dir)
    install_log_filters()
    return app


def _register_extensions(app: Flask, settings: ServerSettings, uploads_dir: Path) -> None:
    """The script path: tus uploads and ``POST /api/submissions`` (dropbox/web/api.py)."""
    largest = header_length(MAX_RECIPIENTS) + payload_length(
        padded_size(settings.max_resumable_file_bytes, MAX_RECORD)
    )
    api.register(app, UploadStore(uploads_dir), largest)


# -- language ----------------------------------------------------------------------------------


def _remember_language() -> None:
    """``?lang=xx`` chooses the language and keeps it in the server-side session."""
    code = request.args.get("lang")
    if code in _LANGUAGE_CODES:
        ensure_session().language = code


def _select_language() -> str:
    code = request.args.get("lang")
    if code in _LANGUAGE_CODES:
        return code
    state = current_session()
    if state is not None and state.language in _LANGUAGE_CODES:
        return state.language
    return DEFAULT_LANGUAGE


def _language_url(code: str) -> str:
    if request.method == "GET" and request.endpoint and request.endpoint != "static":
        return url_for(request.endpoint, **(request.view_args or {}), lang=code)
    return url_for("pages.index", lang=code)


def _template_context() -> dict[str, object]:
    state = current_session()
    return {
        "csrf_token": csrf_token,
        "languages": LANGUAGES,
        "language_url": _language_url,
        "current_language": str(get_locale() or DEFAULT_LANGUAGE),
        "logged_in": state is not None and state.logged_in,
        "format_size": format_size,
    }
