"""The source interface's WSGI application: :func:`create_app`.

One app per process, made from the settings; everything it uses hangs off the app object
(``app.extensions["postern"]``, a :class:`dropbox.web.context.Services`): the instance loader,
the database engine and session factory, the blob store, the session store and the login
throttles (both in the database, shared by every app process). Nothing happens at import
time, and nothing is migrated when an app is made: the database is brought to the newest
schema once, before the processes start (dropbox/serve.py).

What it is made of:

- the pages (:mod:`dropbox.web.pages`), which all work without JavaScript;
- the script path (:mod:`dropbox.web.api`): tus uploads at ``/api/uploads``
  (:mod:`dropbox.tus`, :mod:`dropbox.uploads`) and ``POST /api/submissions``, which turns
  completed uploads into one submission. The generic CSRF check accepts the
  ``X-Postern-CSRF`` header and never reads a request body; tus must answer 412 before 403,
  so its blueprint is wrapped in :func:`dropbox.web.security.csrf_checked_in_blueprint` and
  its policy checks the token itself;
- the plain form: ``POST /submit`` (``pages.submit_post``) checks that a source is logged in
  and acknowledged their codename and that a keyring is installed, without touching the body,
  then calls the submit handler (by default
  :func:`dropbox.web.plain_form.plain_form_handler`), which streams the multipart body through
  :func:`dropbox.nojs.seal_form`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final

from flask import Flask, Request
from flask_babel import get_locale
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from common.web import install_log_filters
from config import ServerSettings
from crypto.envelope import MAX_RECIPIENTS, MAX_RECORD, header_length, padded_size, payload_length
from dropbox import request_log
from dropbox.errors import DropboxError
from dropbox.filetimes import blur

# Re-exported (``as``): deploy/i18n.sh and the tests read the interface languages from here.
from dropbox.languages import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE
from dropbox.languages import LANGUAGES as LANGUAGES
from dropbox.services import open_part_store, open_services, utc_now
from dropbox.sweep import Sweeper, sweep
from dropbox.uploads import UploadStore
from dropbox.web import api, brand, capacity, out_of_space, pages, plain_form
from dropbox.web.context import (
    EXTENSION_KEY,
    Services,
    SubmitHandler,
    csrf_token,
    current_session,
    load_session,
    save_session_cookie,
)
from dropbox.web.formatting import format_size
from dropbox.web.language import install as install_language
from dropbox.web.language import language_url, read_query
from dropbox.web.security import (
    add_security_headers,
    csrf_protect,
    register_error_pages,
)
from dropbox.web.sessions import SessionStore
from dropbox.web.throttle import DerivationBudgets, LoginAttempts, slots_per_process

PACKAGE_DIR: Final = Path(__file__).resolve().parent
SWEEPER_KEY: Final = "postern_sweeper"


class QueryNotUTF8(BadRequest):
    description = "The address's query string is not UTF-8."


class PosternRequest(Request):
    """werkzeug's request, whose query string is UTF-8 or a 400.

    werkzeug decodes the query string as UTF-8 when ``args`` is first read and lets the
    UnicodeDecodeError out: a request target with a byte such as 0xFF would be a 500.
    gunicorn refuses such targets today; the apps must not depend on it.
    """

    @property
    def args(self) -> MultiDict[str, str]:
        try:
            return super().args
        except UnicodeDecodeError:
            raise QueryNotUTF8() from None


class PosternFlask(Flask):
    """The Flask of both server apps: never in debug mode, and careful in what it logs.

    An unhandled exception is logged without the request or the exception's text: Flask's own
    message names the path and method, and an exception's text can hold anything. What is
    logged is the exception's type and where it was raised: enough to find the bug.
    """

    request_class = PosternRequest

    def __init__(
        self,
        import_name: str,
        *,
        root_path: str | None = None,
        static_folder: str | None = "static",
    ) -> None:
        super().__init__(import_name, root_path=root_path, static_folder=static_folder)
        self.config.update(
            DEBUG=False,
            TESTING=False,
            # Errors are answered by the app's error pages, never passed to the server.
            PROPAGATE_EXCEPTIONS=False,
            TRAP_HTTP_EXCEPTIONS=False,
            # No flask.session: without a SECRET_KEY nothing can be put in a cookie session.
            SECRET_KEY=None,
        )

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
    sweep_interval: timedelta | None = None,
    processes: int = 1,
) -> Flask:
    """The source interface for the data directory ``settings.data_dir``.

    Reads the instance (failing with :class:`dropbox.errors.DropboxError` if the directory
    is not initialized or its database not migrated) and builds the services.
    ``clock`` (UTC, aware) replaces the system clock for sessions, throttles and dates.
    ``upload_slots`` bounds the uploads streaming in at once (dropbox/web/capacity.py); the
    server passes ``dropbox.gunicorn_settings.UPLOAD_SLOTS``. ``processes`` is the number of worker
    processes serving the app: each runs its share of the concurrent Argon2id derivations
    the settings allow (dropbox/web/throttle.py).

    Orphan blobs and stale temporary files (dropbox/sweep.py) are reclaimed before the app
    is returned; with ``sweep_interval``, a :class:`dropbox.sweep.Sweeper` thread
    (``app.extensions["postern_sweeper"]``, stop it with ``.stop()``) sweeps again that often.
    """
    now = clock or utc_now
    base = open_services(settings, now)
    sweep(base.db, base.blobs)
    instance = base.instance()
    uploads = UploadStore(
        instance.uploads_dir, base.db, parts=open_part_store(settings, instance, base.engine)
    )
    uploads.expire(now())
    # Every start blurs the file times (dropbox/filetimes.py), as the daily job does.
    blur(settings.data_dir)

    app = PosternFlask("dropbox", root_path=str(PACKAGE_DIR))
    app.config.update(
        # Ordinary forms are tiny; streamed bodies are never parsed by werkzeug.
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        MAX_FORM_PARTS=16,
    )
    slots, codename_slots = slots_per_process(
        settings.login_concurrent_derivations,
        settings.codename_concurrent_derivations,
        processes,
    )
    app.extensions[EXTENSION_KEY] = Services(
        **base.as_fields(),
        sessions=SessionStore(base.db, now),
        derivations=DerivationBudgets(
            base.db,
            now,
            login_per_minute=settings.login_derivations_per_minute,
            codename_per_minute=settings.codename_derivations_per_minute,
            concurrent=slots,
            codename_concurrent=codename_slots,
        ),
        login_attempts=LoginAttempts(
            now,
            limit=settings.login_failures_per_session,
            window=timedelta(minutes=settings.login_failure_window_minutes),
        ),
        submit_handler=submit_handler or plain_form.plain_form_handler,
    )

    install_language(app, str(PACKAGE_DIR / "translations"))
    # Before anything else: a request refused for lack of a slot does no other work.
    capacity.install(app, capacity.UploadSlots(upload_slots))
    app.before_request(load_session)
    app.before_request(read_query)
    app.before_request(csrf_protect)
    app.after_request(save_session_cookie)
    app.after_request(add_security_headers)
    app.context_processor(_template_context)
    register_error_pages(app)
    out_of_space.install(app)
    plain_form.install(app)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(brand.blueprint)
    _register_script_path(app, settings, uploads)
    install_log_filters()
    held = request_log.install(app.extensions)
    _ = app.logger  # Flask attaches its handler, where request records are held, on first use
    if sweep_interval is not None:
        daily = (lambda: uploads.expire(now()), lambda: blur(settings.data_dir), held.flush)
        sweeper = Sweeper(base.db, base.blobs, sweep_interval, daily=daily)
        app.extensions[SWEEPER_KEY] = sweeper
        sweeper.start()
    return app


def _register_script_path(app: Flask, settings: ServerSettings, uploads: UploadStore) -> None:
    """The script path: tus uploads and ``POST /api/submissions`` (dropbox/web/api.py)."""
    largest = header_length(MAX_RECIPIENTS) + payload_length(
        padded_size(settings.max_resumable_file_bytes, MAX_RECORD)
    )
    api.register(app, uploads, largest)


# -- templates ---------------------------------------------------------------------------------


def _template_context() -> dict[str, object]:
    state = current_session()
    language = str(get_locale() or DEFAULT_LANGUAGE)
    branding = brand.current_brand()
    return {
        "csrf_token": csrf_token,
        "languages": LANGUAGES,
        "language_url": language_url,
        "current_language": language,
        "brand": branding,
        "brand_intro": branding.intro(language, DEFAULT_LANGUAGE),
        "logged_in": state is not None and state.logged_in,
        "format_size": format_size,
    }
